import type * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Bytes from "../../Bytes.ts"
import type { FrameError } from "../../Errors.ts"
import { isExitEffect } from "../inline.ts"
import { causeToError, EngineCore, type Host, Slot, type Spec, type Step, SUSPENDED } from "./core.ts"

/**
 * Up to `limit` messages of one connection at once, each in its slot. With ordered replies, a slot's
 * reply (and the sends it made) waits until every message before it is answered, and a message holds
 * its slot until its reply is written, so what waits is bounded by `limit`. Without order, each reply
 * goes out as soon as it is ready. At the limit, the read's remaining frames wait (`SUSPENDED`: the
 * session stops reading) until a slot frees.
 */
export class ConcurrentEngine extends EngineCore {
  /** Messages read whose reply is not yet written, by sequence number. */
  private readonly table = new Map<number, Slot>()
  /** Ordered: the oldest message not yet answered. */
  private nextEmit = 0
  /** Dispatch stopped at the limit with frames left in the read. */
  private blocked = false
  private inPush = false
  /** An error that ends the engine once the messages before it are answered. */
  private failing: unknown = undefined
  /** `finishInput` returned `SUSPENDED`: `resumed` follows once every message is answered. */
  private finishing = false
  /** The last reply to a frame error runs in a fiber. */
  private lastSlot: Slot | undefined = undefined

  constructor(spec: Spec, host: Host, private readonly limit: number, private readonly ordered: boolean) {
    super(spec, host)
  }

  get inFlight(): number {
    return this.table.size
  }

  protected slots(): Iterable<Slot> {
    return this.lastSlot === undefined ? this.table.values() : [...this.table.values(), this.lastSlot]
  }

  protected isHead(slot: Slot): boolean {
    return !this.ordered || slot.seq === this.nextEmit
  }

  protected closeAfter(seq: number): void {
    this.closeAt = seq
    // Handlers already running for later messages are interrupted; their replies are dropped.
    for (const slot of [...this.table.values()]) if (slot.seq > seq) this.discard(slot)
  }

  private discard(slot: Slot): void {
    slot.discarded = true
    if (slot.cancelWait !== undefined) this.poolWaits--
    slot.cancelWait?.()
    slot.cancelWait = undefined
    slot.fiber?.interruptUnsafe()
    this.table.delete(slot.seq)
    this.replyDone(slot)
  }

  pushChunk(chunk: Uint8Array): Step {
    this.decoder.feed(chunk)
    return this.dispatch()
  }

  finishInput(): Step {
    if (this.stopped !== undefined) return this.writer
    const error = this.decoder.end()
    if (error !== undefined) this.failWhenIdle(error)
    if (this.table.size === 0 && this.stopIfIdle()) return SUSPENDED
    if (this.table.size === 0 || this.stopped !== undefined) return this.writer
    this.finishing = true
    this.flushWriter()
    return SUSPENDED
  }

  /** A frame in progress ran out of time: once the messages before it are answered, the last reply. */
  abortFrame(error: FrameError): Step {
    if (this.stopped !== undefined) return this.writer
    this.decoder.error = error
    this.failWhenIdle(error)
    if (this.table.size === 0 && this.stopIfIdle()) return SUSPENDED
    return this.writer
  }

  /** Starts the read's messages, up to the limit. */
  private dispatch(): Step {
    const decoder = this.decoder
    this.inPush = true
    try {
      while (this.stopped === undefined && this.failing === undefined && this.closeAt === undefined) {
        if (this.table.size >= this.limit || this.poolWaits > 0) {
          this.blocked = true
          this.flushWriter()
          return SUSPENDED
        }
        const view = this.nextFrame()
        if (view === undefined) {
          const error = this.defect ?? decoder.error
          if (error !== undefined) {
            this.failWhenIdle(error)
            if (this.table.size === 0 && this.stopIfIdle()) return SUSPENDED
          }
          break
        }
        this.framesIn++
        // The handler may outlive the read buffer: it gets bytes of its own.
        const frame = Bytes.copy(view)
        const seq = this.nextSeq++
        let message: unknown
        try {
          message = this.decodeFrame(frame)
        } catch (error) {
          const slot = new Slot(this, seq, undefined, true, false)
          this.table.set(seq, slot)
          this.complete(slot, Exit.fail(error))
          continue
        }
        const slot = new Slot(this, seq, message, true, this.many)
        this.table.set(seq, slot)
        const result = this.startExit(message, seq, slot)
        if (isExitEffect(result as Effect.Effect<unknown>)) this.complete(slot, result as Exit.Exit<unknown, unknown>)
        else {
          const exit = this.launch(slot, result as Effect.Effect<unknown>)
          if (exit !== undefined) this.complete(slot, exit)
        }
      }
    } finally {
      this.inPush = false
    }
    this.blocked = false
    return this.writer
  }

  protected slotDone(slot: Slot, exit: Exit.Exit<unknown, unknown>): void {
    if (slot === this.lastSlot) {
      this.lastSlot = undefined
      const outcome = this.outcome(slot, exit, this.timeoutMillis)
      if (Exit.isSuccess(outcome)) this.emit(outcome.value, false, undefined)
      this.replyDone(slot)
      this.fail(this.failing)
    } else {
      this.complete(slot, exit)
    }
    this.afterAsync()
  }

  /** A message's outcome: recovered if it failed, then released in its turn. */
  private complete(slot: Slot, raw: Exit.Exit<unknown, unknown>): void {
    if (slot.discarded || this.stopped !== undefined) return
    let exit = this.outcome(slot, raw, this.timeoutMillis)
    if (Exit.isFailure(exit) && slot.recoverable) {
      const recovered = this.recovery(causeToError(exit.cause), slot.request, slot.seq, slot)
      if (recovered !== undefined) {
        if (!isExitEffect(recovered)) {
          // The recovery runs in the message's place, in a fiber of its own.
          const again = new Slot(this, slot.seq, slot.request, false, false)
          again.out = slot.out
          again.open = slot.open
          this.table.set(slot.seq, again)
          const done = this.launch(again, recovered)
          if (done !== undefined) this.complete(again, done)
          return
        }
        exit = recovered
        slot.many = false
      }
    }
    slot.exit = exit
    if (!this.ordered) this.release(slot)
    else {
      for (let head = this.table.get(this.nextEmit); head?.exit !== undefined; head = this.table.get(this.nextEmit)) {
        this.release(head)
        this.nextEmit++
        if (this.stopped !== undefined) return
      }
      // The new oldest message: the sends it made meanwhile go out now, and it may write directly.
      const head = this.table.get(this.nextEmit)
      if (head !== undefined) {
        if (head.out !== undefined && head.out.length > 0) {
          this.writer.write(head.out.take())
          this.openSlot = head
        }
        const waiter = head.headWaiter
        head.headWaiter = undefined
        waiter?.()
      }
    }
    if (this.failing !== undefined && this.table.size === 0) this.stopIfIdle()
  }

  /** Writes a message's sends and reply, and ends the engine if it failed or was the last. */
  private release(slot: Slot): void {
    this.table.delete(slot.seq)
    const exit = slot.exit!
    if (slot.out !== undefined && slot.out.length > 0) this.writer.write(slot.out.take())
    if (Exit.isSuccess(exit)) this.emit(exit.value, slot.many, slot.request)
    else if (this.ordered) this.fail(causeToError(exit.cause))
    else this.failWhenIdle(causeToError(exit.cause))
    this.replyDone(slot)
    // A close after message n takes effect once n and every message before it are answered (without
    // order, those may finish after n).
    if (this.closeAt !== undefined && this.stopped === undefined && !this.waitsBefore(this.closeAt)) {
      this.stopped = "closed"
    }
    if (this.stopped !== undefined) {
      for (const other of [...this.table.values()]) this.discard(other)
    }
  }

  /** Whether a message up to `seq` is still unanswered. */
  private waitsBefore(seq: number): boolean {
    for (const key of this.table.keys()) if (key <= seq) return true
    return false
  }

  /** A terminal error: no message is started after it; those running finish first. */
  private failWhenIdle(error: unknown): void {
    if (this.stopped !== undefined || this.failing !== undefined) return
    this.failing = error
  }

  /**
   * Every message is answered and an error waits: the last reply to a frame error (if any), then the
   * engine stops. Returns true when that reply runs in a fiber.
   */
  private stopIfIdle(): boolean {
    const error = this.failing
    if (error === undefined || this.stopped !== undefined) return false
    if (error === this.decoder.error) {
      const last = this.lastWords(error as FrameError)
      if (last !== undefined && !isExitEffect(last)) {
        const slot = new Slot(this, -1, undefined, false, false)
        this.lastSlot = slot
        const exit = this.launch(slot, last)
        if (exit === undefined) {
          this.flushWriter()
          return true
        }
        this.lastSlot = undefined
        if (Exit.isSuccess(exit)) this.emit(exit.value, false, undefined)
      } else if (last !== undefined && Exit.isSuccess(last)) {
        this.emit(last.value, false, undefined)
      }
    }
    this.fail(error)
    return false
  }

  protected override poolGranted(): void {
    this.afterAsync()
  }

  /** After a fiber's outcome: go on with the read if dispatch waited, write, and tell the session. */
  private afterAsync(): void {
    if (this.inPush) return
    if (
      this.blocked && this.stopped === undefined && this.failing === undefined && this.table.size < this.limit &&
      this.poolWaits === 0
    ) {
      if (this.dispatch() === SUSPENDED) return
      this.flushWriter()
      if (this.stopped !== undefined) this.notifyStopped()
      else this.notifyResumed()
      return
    }
    this.flushWriter()
    if (this.stopped !== undefined) {
      this.notifyStopped()
    } else if (!this.blocked && this.table.size === 0 && this.lastSlot === undefined) {
      // Idle: an input that ended, or a session that finishes, may go on.
      this.finishing = false
      this.notifyResumed()
    }
  }
}
