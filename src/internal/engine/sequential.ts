import type * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type { FrameError } from "../../Errors.ts"
import { isExitEffect } from "../inline.ts"
import { causeToError, EngineCore, Slot, type Step, SUSPENDED, THREW } from "./core.ts"

/**
 * Messages one at a time, in a loop over the frames of each read. A handler that answers without a
 * fiber (a plain function, an `Exit`, an Effect that only computes) never leaves the caller's stack,
 * and the replies to one read are returned together, for one write. The first handler that needs a
 * fiber gets one: the replies before it are written, the push returns `SUSPENDED` (the session stops
 * reading), and when the fiber is done the loop goes on from the next frame of the same read.
 */
export class SequentialEngine extends EngineCore {
  /** The message whose handler runs in a fiber now. */
  private current: Slot | undefined = undefined
  /** The input has ended: once the loop is done, `finishInput` is. */
  private inputEnded = false

  get inFlight(): number {
    return this.current === undefined ? 0 : 1
  }

  protected slots(): Iterable<Slot> {
    return this.current === undefined ? [] : [this.current]
  }

  protected isHead(_slot: Slot): boolean {
    return true
  }

  protected closeAfter(seq: number): void {
    this.closeAt = seq
  }

  pushChunk(chunk: Uint8Array): Step {
    this.decoder.feed(chunk)
    return this.handleFrames()
  }

  finishInput(): Step {
    this.inputEnded = true
    if (this.stopped !== undefined) return this.writer
    const error = this.decoder.end()
    if (error !== undefined && this.frameFailed(error) === SUSPENDED) return SUSPENDED
    return this.writer
  }

  /** A frame in progress ran out of time: the last reply, then the engine stops. */
  abortFrame(error: FrameError): Step {
    if (this.stopped !== undefined || this.current !== undefined) return this.writer
    this.decoder.error = error
    if (this.frameFailed(error) === SUSPENDED) return SUSPENDED
    return this.writer
  }

  /** Handles the frames left in the current read, until one suspends or the engine stops. */
  private handleFrames(): Step {
    const decoder = this.decoder
    while (this.stopped === undefined) {
      const frame = this.nextFrame()
      if (frame === undefined) {
        if (this.defect !== undefined) this.fail(this.defect)
        else if (decoder.error !== undefined && this.frameFailed(decoder.error) === SUSPENDED) return SUSPENDED
        break
      }
      this.framesIn++
      const seq = this.nextSeq++
      let message: unknown
      try {
        message = this.decodeFrame(frame)
      } catch (error) {
        if (this.failed(error, undefined, seq) === SUSPENDED) return SUSPENDED
        continue
      }
      const result = this.start(message, seq, undefined)
      if (result === THREW) {
        if (this.failed(this.thrown, message, seq) === SUSPENDED) return SUSPENDED
      } else if (this.isSync) {
        this.emit(result, this.many, message)
        this.reached(seq)
      } else if (isExitEffect(result as Effect.Effect<unknown>)) {
        if (this.settle(result as Exit.Exit<unknown, unknown>, message, seq, this.many) === SUSPENDED) return SUSPENDED
      } else if (this.suspend(new Slot(this, seq, message, true, this.many), result as Effect.Effect<unknown>)) {
        return SUSPENDED
      }
    }
    return this.writer
  }

  /** A handler's outcome: its replies, or its failure recovered or recorded. */
  private settle(exit: Exit.Exit<unknown, unknown>, request: unknown, seq: number, many: boolean): Step | undefined {
    if (Exit.isSuccess(exit)) {
      this.emit(exit.value, many, request)
      this.reached(seq)
      return undefined
    }
    return this.failed(causeToError(exit.cause), request, seq)
  }

  /** A message failed: its recovery answers in its place, or the engine stops. */
  private failed(error: unknown, request: unknown, seq: number): Step | undefined {
    const recovered = this.recovery(error, request, seq, undefined)
    if (recovered === undefined) {
      this.fail(error)
      return undefined
    }
    if (isExitEffect(recovered)) {
      if (Exit.isSuccess(recovered)) this.emit(recovered.value, false, request)
      else this.fail(causeToError(recovered.cause))
      this.reached(seq)
      return undefined
    }
    return this.suspend(new Slot(this, seq, request, false, false), recovered) ? SUSPENDED : undefined
  }

  /** A frame error: the last reply (if the pipeline has one), then the engine stops. */
  private frameFailed(error: FrameError): Step | undefined {
    const last = this.lastWords(error)
    if (last !== undefined) {
      if (!isExitEffect(last)) {
        const slot = new Slot(this, -1, undefined, false, false)
        this.lastError = error
        if (this.suspend(slot, last)) return SUSPENDED
      } else if (Exit.isSuccess(last)) {
        this.emit(last.value, false, undefined)
      }
    }
    this.fail(error)
    return undefined
  }

  /** The frame error a last reply running in a fiber is the answer to. */
  private lastError: FrameError | undefined = undefined

  /** The reply to message `seq` is out: a close asked for after it takes effect. */
  private reached(seq: number): void {
    if (this.closeAt === seq && this.stopped === undefined) this.stopped = "closed"
  }

  /**
   * Runs a handler's Effect in a fiber: the replies before it are written first (its own sends follow
   * them). Returns whether it is still running (false: it finished at once and was settled).
   */
  private suspend(slot: Slot, effect: Effect.Effect<unknown, unknown, unknown>): boolean {
    this.flushWriter()
    this.current = slot
    const exit = this.launch(slot, effect)
    if (exit === undefined) return true
    this.current = undefined
    this.finishSlot(slot, exit)
    return this.current !== undefined
  }

  protected slotDone(slot: Slot, exit: Exit.Exit<unknown, unknown>): void {
    this.current = undefined
    this.finishSlot(slot, exit)
    if (this.current !== undefined) return // its recovery went on in a fiber
    if ((this.inputEnded ? this.finishInput() : this.handleFrames()) === SUSPENDED) return
    this.flushWriter()
    if (this.stopped !== undefined) this.notifyStopped()
    else this.notifyResumed()
  }

  /** Settles a slot's outcome (its reply, its recovery, or the end of a last reply). */
  private finishSlot(slot: Slot, raw: Exit.Exit<unknown, unknown>): void {
    const exit = this.outcome(slot, raw, this.timeoutMillis)
    if (slot.seq === -1) {
      // The last reply to a frame error.
      if (Exit.isSuccess(exit)) this.emit(exit.value, false, undefined)
      this.replyDone(slot)
      this.fail(this.lastError)
      return
    }
    if (slot.recoverable) this.settle(exit, slot.request, slot.seq, slot.many)
    else if (Exit.isSuccess(exit)) {
      this.emit(exit.value, false, slot.request)
      this.reached(slot.seq)
    } else {
      this.fail(causeToError(exit.cause))
    }
    this.replyDone(slot)
  }
}
