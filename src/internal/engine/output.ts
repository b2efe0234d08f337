import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Bytes from "../../Bytes.ts"
import { ConnectionClosed, OutboundOverflow, PacketEncodeError, type SendError } from "../../Errors.ts"
import type * as Frame from "../../Frame.ts"
import { isExitEffect } from "../inline.ts"
import { CurrentSlot, type Host, isTagged, running, type Slot, type Spec, type Step, SUSPENDED } from "./slot.ts"

/**
 * What an engine writes, and in which order: replies into its writer, `send` in order with the
 * message it is sent from (or between replies, for a broadcast), `close` after a message's reply,
 * and the public `push` / `end` of a `Pipeline.Engine` without a host of its own.
 */
export abstract class EngineOutput {
  /** The first error not recovered. */
  error: unknown = undefined
  /** Why it stopped: an error, or a close after a reply. Nothing is handled after it. */
  stopped: "failed" | "closed" | undefined = undefined
  readonly writer: Bytes.Writer
  readonly framer: Frame.Framer
  /** A close requested by the handler of this message: replies after it are not written. */
  protected closeAt: number | undefined = undefined
  protected readonly encode: (value: unknown) => unknown
  protected readonly encodeInto: ((writer: Bytes.Writer, value: unknown) => void) | undefined
  /** Message-oriented framer: every reply is handed to the host on its own, never coalesced. */
  protected readonly messages: boolean
  protected interrupted = false
  /** Messages sent from outside any message, coalesced into one write per tick. */
  private outside: Bytes.Writer | undefined = undefined
  private outsideScheduled = false
  /** Sends from outside that wait for a reply in progress to finish. */
  private deferred: Bytes.Writer | undefined = undefined
  /** Its reply is in progress: `deferred` waits for it. */
  protected openSlot: Slot | undefined = undefined
  /** The message running inline now has sent part of its reply. */
  protected inlineSent = false

  /** A message whose handler goes on in a fiber after sending part of its reply inline: its reply is in progress. */
  protected openIfSent(slot: Slot): void {
    if (!this.inlineSent) return
    this.inlineSent = false
    slot.open = true
    if (this.isHead(slot)) this.openSlot = slot
  }

  constructor(spec: Spec, readonly host: Host) {
    this.framer = spec.framer
    this.messages = spec.framer.messages === true
    this.writer = new Bytes.Writer()
    this.encode = spec.codec.encodeUnsafe
    this.encodeInto = spec.codec.encodeIntoUnsafe
  }

  /** Feeds one chunk: the replies it owes, or `SUSPENDED`. The chunk must stay unchanged until then. */
  abstract pushChunk(chunk: Uint8Array): Step
  /** The input has ended: a partial frame is `Truncated`; handlers still running finish. */
  abstract finishInput(): Step
  /** Whether `slot` may write its sends now (no message before it is still unanswered). */
  protected abstract isHead(slot: Slot): boolean
  /** A handler asked to close after the reply to message `seq`. */
  protected abstract closeAfter(seq: number): void

  get closed(): boolean {
    return this.stopped === "closed"
  }

  // --- as a public `Pipeline.Engine` -------------------------------------------------------------

  /** Bytes written while a public `push` waits for its handlers: what the Effect it returned yields. */
  private collected: Array<Uint8Array> | undefined = undefined
  private resumeWaiter: ((bytes: Uint8Array) => void) | undefined = undefined

  /**
   * `pushChunk` for a caller without a host of its own: the replies to the chunk, or an Effect that
   * yields them once the handlers that went on in a fiber are done.
   */
  push(chunk: Uint8Array): Uint8Array | Effect.Effect<Uint8Array> {
    this.collectWrites()
    return this.collectedStep(this.pushChunk(chunk))
  }

  /** `finishInput`, the same way. */
  end(): Uint8Array | Effect.Effect<Uint8Array> {
    this.collectWrites()
    return this.collectedStep(this.finishInput())
  }

  /** Replies a message-oriented framer writes one by one go to the host as they are. */
  private collectWrites(): void {
    if (!this.messages) this.collected = []
  }

  private collectedStep(step: Step): Uint8Array | Effect.Effect<Uint8Array> {
    if (step === SUSPENDED) {
      return Effect.callback<Uint8Array>((resume) => {
        const ready = this.resumedBytes
        this.resumedBytes = undefined
        if (ready !== undefined) resume(Effect.succeed(ready))
        else this.resumeWaiter = (bytes) => resume(Effect.succeed(bytes))
      })
    }
    const collected = this.collected
    this.collected = undefined
    if (collected === undefined || collected.length === 0) return step.take()
    collected.push(step.take())
    return Bytes.concat(collected)
  }

  /** Writes what `writer` holds to the host, or into what a public `push` will yield, and rewinds it. */
  protected writeOut(writer: Bytes.Writer): void {
    if (this.collected !== undefined) this.collected.push(writer.takeCopy())
    else this.host.write(writer)
  }

  /** Writes the replies in the engine's writer, if there are any. */
  protected flushWriter(): void {
    if (this.writer.length > 0) this.writeOut(this.writer)
  }

  protected notifyResumed(): void {
    if (!this.settleWaiter()) this.host.resumed()
  }

  protected notifyStopped(): void {
    if (!this.settleWaiter()) this.host.stopped()
  }

  private settleWaiter(): boolean {
    const collected = this.collected
    if (collected === undefined) return false
    this.collected = undefined
    const bytes = Bytes.concat(collected)
    const waiter = this.resumeWaiter
    this.resumeWaiter = undefined
    if (waiter !== undefined) waiter(bytes)
    else this.resumedBytes = bytes
    return true
  }

  /** What a suspended public `push` yields, when it was done before its Effect ran. */
  private resumedBytes: Uint8Array | undefined = undefined

  // --- frames --------------------------------------------------------------------------------------

  /** Encodes one message as a frame into `writer`; throws the codec's or framer's typed error. */
  encodeFrame(writer: Bytes.Writer, value: unknown): void {
    const mark = this.framer.begin(writer)
    try {
      if (this.encodeInto !== undefined) this.encodeInto(writer, value)
      else writer.write(this.encode(value) as Uint8Array)
      this.framer.end(writer, mark)
    } catch (error) {
      writer.length = mark
      throw isTagged(error) ? error : new PacketEncodeError({ codec: "encoder", cause: error })
    }
  }

  // --- send and close ------------------------------------------------------------------------------

  /** `session.send` / `sendWait`: in order with the replies of the message it is sent from, if any. */
  send(message: unknown, wait: boolean): Effect.Effect<void, SendError> {
    return Effect.suspend(() => {
      if (running.engine !== undefined) {
        // A handler's fiber may be resumed synchronously from inside another message's inline run
        // (a reply from another connection completes what it waits for): its own slot comes first.
        const slot = this.slotOfCurrentFiber()
        if (slot !== undefined) return this.sendFromSlot(slot, message, wait)
        return running.engine === this ? this.sendInline(message, wait) : this.sendOutside(message, wait)
      }
      return Effect.withFiber((fiber) => {
        const slot = fiber.getRef(CurrentSlot)
        return slot !== undefined && slot.engine === this && !slot.settled
          ? this.sendFromSlot(slot, message, wait)
          : this.sendOutside(message, wait)
      })
    })
  }

  /** A send from outside any message, now, without an Effect (a client's request): its failure. */
  sendNow(message: unknown): SendError | undefined {
    const sent = this.sendOutside(message, false)
    if (!isExitEffect(sent) || Exit.isSuccess(sent)) return undefined
    const error = Cause.findErrorOption(sent.cause)
    return error._tag === "Some" ? error.value : undefined
  }

  /** `close`: after the reply to the message it is called from, if any. */
  get close(): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (running.engine !== undefined) {
        // As in `send`: a fiber of this engine's resumed inside another message's inline run.
        const slot = this.slotOfCurrentFiber()
        if (slot !== undefined) this.closeFrom(slot.seq)
        else if (running.engine === this) this.closeFrom(running.seq)
        else this.host.closeRequested()
        return Effect.void
      }
      return Effect.withFiber((fiber) => {
        const slot = fiber.getRef(CurrentSlot)
        if (slot !== undefined && slot.engine === this && !slot.settled) this.closeFrom(slot.seq)
        else this.host.closeRequested()
        return Effect.void
      })
    })
  }

  /** The slot of this engine whose handler runs in the current fiber, while it is unsettled. */
  private slotOfCurrentFiber(): Slot | undefined {
    const fiber = Fiber.getCurrent()
    if (fiber === undefined) return undefined
    const slot = fiber.getRef(CurrentSlot)
    return slot !== undefined && slot.engine === this && !slot.settled ? slot : undefined
  }

  private closeFrom(seq: number): void {
    if (seq < 0) return // the last reply to a frame error: the connection closes anyway
    if (this.closeAt === undefined || seq < this.closeAt) this.closeAfter(seq)
  }

  private refuse(extra: number): SendError | undefined {
    const host = this.host
    if (!host.canWrite()) {
      return new ConnectionClosed({ remoteAddress: host.remote, reason: "the session has ended" })
    }
    const queued = host.outboundBytes() + this.writer.length + (this.outside?.length ?? 0) +
      (this.deferred?.length ?? 0) + extra
    if (queued > host.maxOutboundBytes) {
      return new OutboundOverflow({
        sessionId: host.sessionId,
        remoteAddress: host.remote,
        queuedBytes: queued,
        limit: host.maxOutboundBytes
      })
    }
    return undefined
  }

  /** From the handler that runs synchronously now: into the reply buffer, after the replies before it. */
  private sendInline(message: unknown, wait: boolean): Effect.Effect<void, SendError> {
    const slot = running.slot
    if (slot !== undefined && !this.isHead(slot)) return this.sendFromSlot(slot, message, wait)
    const refused = this.refuse(0)
    if (refused !== undefined) return Exit.fail(refused)
    try {
      this.encodeFrame(this.writer, message)
    } catch (error) {
      return Exit.fail(error as SendError)
    }
    // Part of this message's reply: should its handler go on in a fiber, its reply is in progress.
    this.inlineSent = true
    if (this.messages) this.writeOut(this.writer)
    // Waiting makes the handler go on in a fiber: the engine writes what it holds first.
    return wait && this.host.outboundBytes() + this.writer.length > this.host.highWaterMark
      ? this.host.lowWater
      : Exit.void
  }

  /** From a handler in a fiber: written now when no message before it is unanswered, else held. */
  private sendFromSlot(slot: Slot, message: unknown, wait: boolean): Effect.Effect<void, SendError> {
    const refused = this.refuse(slot.out?.length ?? 0)
    if (refused !== undefined) return Exit.fail(refused)
    if (!this.isHead(slot)) {
      const out = slot.out ??= new Bytes.Writer({ initialCapacity: 256 })
      try {
        this.encodeFrame(out, message)
      } catch (error) {
        return Exit.fail(error as SendError)
      }
      slot.open = true
      return wait && out.length > this.host.highWaterMark ? this.whenHead(slot) : Exit.void
    }
    const out = this.sendWriter()
    try {
      this.encodeFrame(out, message)
    } catch (error) {
      return Exit.fail(error as SendError)
    }
    // Sends from outside made earlier go first: from now on they wait for this reply.
    this.flushOutside()
    slot.open = true
    this.openSlot = slot
    this.writeOut(out)
    return wait && this.host.outboundBytes() > this.host.highWaterMark ? this.host.lowWater : Exit.void
  }

  /** A broadcast: between replies, never inside one in progress. */
  private sendOutside(message: unknown, wait: boolean): Effect.Effect<void, SendError> {
    if (wait && this.host.outboundBytes() > this.host.highWaterMark) {
      return Effect.andThen(this.host.lowWater, () => this.sendOutside(message, false))
    }
    const refused = this.refuse(0)
    if (refused !== undefined) return Exit.fail(refused)
    const inProgress = this.openSlot !== undefined && !this.openSlot.settled
    const out = inProgress ? (this.deferred ??= new Bytes.Writer({ initialCapacity: 256 })) : this.outsideWriter()
    try {
      this.encodeFrame(out, message)
    } catch (error) {
      return Exit.fail(error as SendError)
    }
    if (inProgress) return Exit.void
    if (this.messages) this.flushOutside()
    else if (!this.outsideScheduled) {
      // Messages sent in the same tick (many fibers broadcasting) go out in one write.
      this.outsideScheduled = true
      queueMicrotask(this.flushOutsideTask)
    }
    return Exit.void
  }

  /** Waits until `slot` is the oldest message unanswered (its held sends are then written). */
  protected whenHead(slot: Slot): Effect.Effect<void> {
    return Effect.callback<void>((resume) => {
      if (this.isHead(slot) || slot.settled) return resume(Effect.void)
      slot.headWaiter = () => resume(Effect.void)
    })
  }

  private sendBuffer: Bytes.Writer | undefined = undefined
  private sendWriter(): Bytes.Writer {
    return this.sendBuffer ??= new Bytes.Writer({ initialCapacity: 256 })
  }
  private outsideWriter(): Bytes.Writer {
    return this.outside ??= new Bytes.Writer({ initialCapacity: 256 })
  }

  private readonly flushOutsideTask = (): void => {
    this.outsideScheduled = false
    this.flushOutside()
  }

  /** Writes the broadcasts waiting for the next tick. */
  protected flushOutside(): void {
    const out = this.outside
    if (out === undefined || out.length === 0 || !this.host.canWrite()) return
    this.writeOut(out)
  }

  /** A reply is done: the broadcasts that waited for it go out. */
  protected replyDone(slot: Slot): void {
    slot.settled = true
    if (this.openSlot === slot) this.openSlot = undefined
    const waiter = slot.headWaiter
    slot.headWaiter = undefined
    waiter?.()
    const deferred = this.deferred
    if (this.openSlot === undefined && deferred !== undefined && deferred.length > 0) {
      this.writer.write(deferred.take())
    }
  }

  /** Flushes what every engine owes before the connection ends: broadcasts, then held sends. */
  flushSends(): void {
    this.flushOutside()
    const deferred = this.deferred
    if (deferred !== undefined && deferred.length > 0 && this.host.canWrite()) this.writeOut(deferred)
  }
}
