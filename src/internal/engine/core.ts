import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import { type FrameError, HandlerError, HandlerTimeout, PacketDecodeError } from "../../Errors.ts"
import { COPY_MAX, FrameDecoder } from "../decoder.ts"
import { specOf } from "../handler.ts"
import { isExitEffect, runInline } from "../inline.ts"
import { EngineOutput } from "./output.ts"
import {
  CurrentSlot,
  type Host,
  isTagged,
  type LastReply,
  type Recover,
  running,
  type Slot,
  type Spec,
  type Step
} from "./slot.ts"

export * from "./slot.ts"

/** What `start` returns when the handler threw (`thrown` holds the error). */
export const THREW: unique symbol = Symbol.for("sluice/Engine/threw")

/**
 * The state and the steps shared by the sequential and the concurrent engine: decoding, replies,
 * recovery, running handlers in fibers (and the task pool), per-message time-outs. What is written
 * and in which order is `EngineOutput`'s.
 */
export abstract class EngineCore extends EngineOutput {
  /** Frames decoded. */
  framesIn = 0
  readonly decoder: FrameDecoder
  protected nextSeq = 0
  protected readonly decode: (bytes: Uint8Array) => unknown
  protected readonly decodeWithParsed: ((bytes: Uint8Array, parsed: unknown) => unknown) | undefined
  protected readonly run: (message: unknown, context: unknown) => unknown
  protected readonly isSync: boolean
  protected readonly many: boolean
  protected readonly recover: Recover | undefined
  protected readonly lastReply: LastReply | undefined

  constructor(spec: Spec, host: Host) {
    super(spec, host)
    this.decoder = new FrameDecoder(spec.framer, COPY_MAX)
    this.decode = spec.codec.decodeUnsafe
    this.decodeWithParsed = spec.codec.decodeFrameUnsafe
    const handler = specOf(spec.handler)
    this.run = handler.run
    this.isSync = handler.kind === "sync"
    this.many = handler.many
    this.recover = spec.recover
    this.lastReply = spec.lastReply
  }

  /** A frame in progress ran out of time: the pipeline's last reply (if any), then the engine stops. */
  abstract abortFrame(error: FrameError): Step
  /** Messages read whose reply is not yet written. */
  abstract get inFlight(): number
  /** The slots whose handlers run in a fiber. */
  protected abstract slots(): Iterable<Slot>
  /** A slot's fiber is done. */
  protected abstract slotDone(slot: Slot, exit: Exit.Exit<unknown, unknown>): void

  get buffered(): number {
    return this.decoder.buffered
  }

  /** Decodes a frame; what the codec throws that is not a typed error is wrapped. */
  protected decodeFrame(frame: Uint8Array): unknown {
    try {
      // A codec that takes what the framer parsed gets it: the frame is parsed once.
      const withParsed = this.decodeWithParsed
      return withParsed === undefined ? this.decode(frame) : withParsed(frame, this.decoder.value)
    } catch (error) {
      throw isTagged(error) ? error : new PacketDecodeError({ codec: "decoder", cause: error, length: frame.length })
    }
  }

  /** Writes replies into the engine's writer; an encoding failure is recovered, or recorded. */
  protected emit(result: unknown, many: boolean, request: unknown): void {
    if (many) {
      for (const value of result as Iterable<unknown>) {
        if (!this.emitOne(value, request)) return
      }
    } else {
      this.emitOne(result, request)
    }
  }

  private emitOne(value: unknown, request: unknown): boolean {
    const writer = this.writer
    try {
      this.encodeFrame(writer, value)
      if (this.messages) this.writeOut(writer)
      return true
    } catch (error) {
      // An encoding failure may be recovered with a reply of its own, which must encode at once.
      const recovered = this.recover?.(error, request, this.host.handlerContext)
      if (recovered !== undefined && isExitEffect(recovered) && Exit.isSuccess(recovered)) {
        try {
          this.encodeFrame(writer, recovered.value)
          if (this.messages) this.writeOut(writer)
          return true
        } catch {
          // fall through: the first error is the one reported
        }
      }
      this.fail(error)
      return false
    }
  }

  /**
   * A framer that broke its contract (`FramerDefect`): the engine stops reading, and the session ends
   * with a `Defect` once the replies before it are out.
   */
  defect: unknown = undefined

  /** The next frame of the read; a framer defect is recorded and ends the read. */
  protected nextFrame(): Uint8Array | undefined {
    try {
      return this.decoder.next()
    } catch (defect) {
      this.defect ??= defect
      return undefined
    }
  }

  /** An error nothing recovered: the engine stops. */
  protected fail(error: unknown): void {
    if (this.error !== undefined) return
    this.error = error
    this.stopped = "failed"
  }

  // --- running handlers ----------------------------------------------------------------------------

  /**
   * Runs a message's handler as far as it goes without a fiber: its reply (sync), its `Exit`, or the
   * Effect a fiber must run. A throw becomes a `HandlerError`.
   */
  protected start(message: unknown, seq: number, slot: Slot | undefined): unknown {
    running.engine = this
    running.seq = seq
    running.slot = slot
    this.inlineSent = false
    try {
      const result = this.run(message, this.host.handlerContext)
      // A sync handler's reply as it is: no Exit is allocated on the hot path.
      return this.isSync ? result : runInline(result as Effect.Effect<unknown>)
    } catch (cause) {
      this.thrown = new HandlerError({ cause })
      return THREW
    } finally {
      running.engine = undefined
    }
  }

  /** `start` returned `THREW`: the handler threw this. */
  protected thrown: HandlerError | undefined = undefined

  /** `start`'s outcome as an `Exit` (for the concurrent engine, which keeps outcomes in slots). */
  protected startExit(message: unknown, seq: number, slot: Slot): Exit.Exit<unknown, unknown> | Effect.Effect<unknown> {
    const result = this.start(message, seq, slot)
    if (result === THREW) return Exit.fail(this.thrown)
    return this.isSync ? Exit.succeed(result) : result as Exit.Exit<unknown, unknown> | Effect.Effect<unknown>
  }

  /**
   * A failed message: its recovery, run as far as it goes without a fiber (an `Exit`, or an Effect
   * for a fiber), or `undefined` when none covers the error (which is then recorded).
   */
  protected recovery(
    error: unknown,
    request: unknown,
    seq: number,
    slot: Slot | undefined
  ): Exit.Exit<unknown, unknown> | Effect.Effect<unknown, unknown, unknown> | undefined {
    if (this.recover === undefined) return undefined
    running.engine = this
    running.seq = seq
    running.slot = slot
    try {
      const recovered = this.recover(error, request, this.host.handlerContext)
      return recovered === undefined ? undefined : runInline(recovered)
    } catch (cause) {
      return Exit.fail(new HandlerError({ cause }))
    } finally {
      running.engine = undefined
    }
  }

  /** The last reply to a frame error, run as far as it goes without a fiber, if there is one. */
  protected lastWords(error: FrameError): Exit.Exit<unknown, unknown> | Effect.Effect<unknown> | undefined {
    if (this.lastReply === undefined) return undefined
    running.engine = this
    running.seq = -1
    running.slot = undefined
    try {
      return runInline(this.lastReply(error, this.host.handlerContext)) as Exit.Exit<unknown, unknown>
    } catch (cause) {
      return Exit.die(cause)
    } finally {
      running.engine = undefined
    }
  }

  /**
   * Runs a slot's Effect in a fiber, once the task pool (if any) has room. Returns the Exit when the
   * fiber finished at once; otherwise `slotDone` follows.
   */
  protected launch(
    slot: Slot,
    effect: Effect.Effect<unknown, unknown, unknown>
  ): Exit.Exit<unknown, unknown> | undefined {
    this.openIfSent(slot)
    const pool = this.host.pool
    if (pool !== undefined && !pool.tryAcquire()) {
      this.poolWaits++
      slot.cancelWait = pool.wait(() => {
        slot.cancelWait = undefined
        this.poolWaits--
        if (this.interrupted) {
          pool.release()
          return
        }
        const exit = this.fork(slot, effect)
        if (exit !== undefined) this.slotDone(slot, exit)
        else this.poolGranted()
      })
      return undefined
    }
    return this.fork(slot, effect)
  }

  /** Messages waiting for a slot of the task pool: the connection reads no more meanwhile. */
  protected poolWaits = 0

  /** A message that waited for the task pool got its slot. */
  protected poolGranted(): void {}

  private fork(slot: Slot, effect: Effect.Effect<unknown, unknown, unknown>): Exit.Exit<unknown, unknown> | undefined {
    const pool = this.host.pool
    const fiber = Effect.runForkWith(Context.add(this.host.context, CurrentSlot, slot))(effect)
    const exit = fiber.pollUnsafe()
    if (exit !== undefined) {
      pool?.release()
      return exit
    }
    slot.fiber = fiber
    slot.startedAt = this.host.now()
    fiber.addObserver((exit) => {
      slot.fiber = undefined
      pool?.release()
      if (!this.interrupted) this.slotDone(slot, exit)
    })
    return undefined
  }

  /** A slot's outcome, a time-out included: an interrupted fiber that timed out failed with `HandlerTimeout`. */
  protected outcome(slot: Slot, exit: Exit.Exit<unknown, unknown>, limitMillis: number): Exit.Exit<unknown, unknown> {
    return slot.timedOut && Exit.isFailure(exit) && Cause.hasInterrupts(exit.cause)
      ? Exit.fail(new HandlerTimeout({ timeoutMillis: limitMillis }))
      : exit
  }

  /** The per-message time-out: a handler that has run in its fiber for `limitMillis` is interrupted. */
  sweep(now: number, limitMillis: number): void {
    if (!Number.isFinite(limitMillis)) return
    this.timeoutMillis = limitMillis
    for (const slot of this.slots()) {
      if (slot.fiber !== undefined && !slot.timedOut && now - slot.startedAt >= limitMillis) {
        slot.timedOut = true
        slot.fiber.interruptUnsafe()
      }
    }
  }

  /** The limit the last sweep applied, for the `HandlerTimeout` it reports. */
  protected timeoutMillis = 0

  /** Whether a handler runs in a fiber now. */
  get hasFibers(): boolean {
    for (const slot of this.slots()) if (slot.fiber !== undefined) return true
    return false
  }

  /** Interrupts every handler still running and forgets the pool slots it waited for. */
  interrupt(): Effect.Effect<void> {
    return Effect.suspend(() => {
      this.interrupted = true
      const fibers: Array<Fiber.Fiber<unknown, unknown>> = []
      for (const slot of this.slots()) {
        if (slot.cancelWait !== undefined) this.poolWaits--
        slot.cancelWait?.()
        slot.cancelWait = undefined
        if (slot.fiber !== undefined) fibers.push(slot.fiber)
      }
      if (fibers.length === 0) return Effect.void
      for (const fiber of fibers) fiber.interruptUnsafe()
      return Effect.asVoid(Effect.forEach(fibers, (fiber) =>
        Effect.exit(Effect.callback<void>((resume) => {
          fiber.addObserver(() => resume(Effect.void))
        }))))
    })
  }
}
