import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as Bytes from "../../Bytes.ts"
import type * as Codec from "../../Codec.ts"
import {
  ConnectionClosed,
  type FrameError,
  HandlerError,
  HandlerTimeout,
  OutboundOverflow,
  PacketDecodeError,
  PacketEncodeError,
  type SendError
} from "../../Errors.ts"
import type * as Frame from "../../Frame.ts"
import type * as Handler from "../../Handler.ts"
import { COPY_MAX, FrameDecoder } from "../decoder.ts"
import { specOf } from "../handler.ts"
import { isExitEffect, runInline } from "../inline.ts"
import type { TaskPool } from "../pool.ts"

/** Turns an error into a reply Effect, or `undefined` when no recovery covers it. */
export type Recover = (
  error: unknown,
  request: unknown,
  context: unknown
) => Effect.Effect<unknown, unknown, unknown> | undefined

/** The last reply to a frame error, written before the connection closes. */
export type LastReply = (error: FrameError, context: unknown) => Effect.Effect<unknown, unknown, unknown>

/** What the engine needs of a pipeline. */
export interface Spec {
  readonly framer: Frame.Framer
  readonly codec: Codec.Codec.Any
  readonly handler: Handler.Handler.Any
  readonly recover: Recover | undefined
  readonly lastReply: LastReply | undefined
}

/**
 * The session (or stream) an engine runs for. The engine never does I/O: it hands bytes to `write`,
 * and tells its host when a suspended push is done and when it has stopped.
 */
export interface Host {
  /** The handlers' second argument: the session, or a stream's context. */
  readonly handlerContext: unknown
  /** The services handlers run with. */
  readonly context: Context.Context<unknown>
  /** Writes bytes to the peer now. `writer` is the buffer they are a view of (it detaches if kept). */
  write(bytes: Uint8Array, writer: Bytes.Writer): void
  /** A push (or `finishInput`) that returned `SUSPENDED` is done; every reply it owed is written. */
  resumed(): void
  /**
   * The engine stopped (an error it could not recover from, or a close after a reply) outside a
   * push, after its last reply was written. Inside a push, the caller reads `stopped` itself.
   */
  stopped(): void
  /** `close` from outside any message. */
  closeRequested(): void
  /** Outbound bytes not yet handed to the OS. */
  outboundBytes(): number
  /** Done once the outbound bytes are at most the low-water mark. */
  readonly lowWater: Effect.Effect<void>
  readonly highWaterMark: number
  readonly maxOutboundBytes: number
  /** Whether messages can still be written (the connection has not been closed). */
  canWrite(): boolean
  /** The connection's id and remote address, for errors. */
  readonly sessionId: string
  readonly remote: string
  /** The time in milliseconds, from Effect's `Clock` (the sweeper's). */
  now(): number
  /** The server's task pool, if it has one: handlers that run in a fiber take a slot of it. */
  readonly pool: TaskPool | undefined
}

/** `pushChunk` and `finishInput`: the handlers went on in a fiber; `Host.resumed` follows. */
export const SUSPENDED: unique symbol = Symbol.for("sluice/Engine/suspended")
export type Step = Uint8Array | typeof SUSPENDED

/** One message whose handler runs in a fiber (every message, under `concurrent(n)`). */
export class Slot {
  fiber: Fiber.Fiber<unknown, unknown> | undefined = undefined
  /** When its handler started in a fiber; 0 while it has not. */
  startedAt = 0
  timedOut = false
  /** Its reply has been written (or dropped): later sends from its fibers are broadcasts. */
  settled = false
  /** Interrupted because the session closed after an earlier message: its reply is dropped. */
  discarded = false
  /** It has written part of its reply (a send): sends from elsewhere wait until it is done. */
  open = false
  /** Sends made while messages before it are not yet answered (ordered concurrency). */
  out: Bytes.Writer | undefined = undefined
  /** Its outcome, waiting for its turn (ordered concurrency). */
  exit: Exit.Exit<unknown, unknown> | undefined = undefined
  many: boolean
  /** Cancels its wait for a slot of the task pool. */
  cancelWait: (() => void) | undefined = undefined
  /** Resumes a `sendWait` that waits for this slot to become the oldest unanswered message. */
  headWaiter: (() => void) | undefined = undefined
  constructor(
    readonly engine: EngineCore,
    readonly seq: number,
    readonly request: unknown,
    /** False for a recovery or a last reply: its failure is final. */
    readonly recoverable: boolean,
    many: boolean
  ) {
    this.many = many
  }
}

/** The slot of the message whose handler runs in the current fiber, if any. */
export const CurrentSlot: Context.Reference<Slot | undefined> = Context.Reference<Slot | undefined>(
  "sluice/Engine/CurrentSlot",
  { defaultValue: () => undefined }
)

/**
 * The message whose handler (or recovery) runs synchronously right now, on any engine: JavaScript
 * runs one thing at a time, so a `send` or `close` evaluated meanwhile comes from it (or, when its
 * engine is another one, is a broadcast from it).
 */
export const running: { engine: EngineCore | undefined; seq: number; slot: Slot | undefined } = {
  engine: undefined,
  seq: 0,
  slot: undefined
}

/**
 * The state and the steps shared by the sequential and the concurrent engine: decoding, encoding a
 * frame, replies, recovery, `send` and `close` in order, per-message time-outs.
 */
export abstract class EngineCore {
  /** The first error not recovered. */
  error: unknown = undefined
  /** Why it stopped: an error, or a close after a reply. Nothing is handled after it. */
  stopped: "failed" | "closed" | undefined = undefined
  /** Frames decoded. */
  framesIn = 0
  readonly decoder: FrameDecoder
  readonly writer: Bytes.Writer
  readonly framer: Frame.Framer
  /** A close requested by the handler of this message: replies after it are not written. */
  protected closeAt: number | undefined = undefined
  protected nextSeq = 0
  protected readonly decode: (bytes: Uint8Array) => unknown
  protected readonly encode: (value: unknown) => unknown
  protected readonly encodeInto: ((writer: Bytes.Writer, value: unknown) => void) | undefined
  protected readonly run: (message: unknown, context: unknown) => unknown
  protected readonly isSync: boolean
  protected readonly many: boolean
  protected readonly recover: Recover | undefined
  protected readonly lastReply: LastReply | undefined
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

  constructor(spec: Spec, readonly host: Host) {
    this.framer = spec.framer
    this.messages = spec.framer.messages === true
    this.decoder = new FrameDecoder(spec.framer, COPY_MAX)
    this.writer = new Bytes.Writer()
    this.decode = spec.codec.decodeUnsafe
    this.encode = spec.codec.encodeUnsafe
    this.encodeInto = spec.codec.encodeIntoUnsafe
    const handler = specOf(spec.handler)
    this.run = handler.run
    this.isSync = handler.kind === "sync"
    this.many = handler.many
    this.recover = spec.recover
    this.lastReply = spec.lastReply
  }

  /** Feeds one chunk: the replies it owes, or `SUSPENDED`. The chunk must stay unchanged until then. */
  abstract pushChunk(chunk: Uint8Array): Step
  /** The input has ended: a partial frame is `Truncated`; handlers still running finish. */
  abstract finishInput(): Step
  /** Messages read whose reply is not yet written. */
  abstract get inFlight(): number
  /** The slots whose handlers run in a fiber. */
  protected abstract slots(): Iterable<Slot>
  /** A slot's fiber is done. */
  protected abstract slotDone(slot: Slot, exit: Exit.Exit<unknown, unknown>): void
  /** Whether `slot` may write its sends now (no message before it is still unanswered). */
  protected abstract isHead(slot: Slot): boolean
  /** A handler asked to close after the reply to message `seq`. */
  protected abstract closeAfter(seq: number): void

  get buffered(): number {
    return this.decoder.buffered
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
    if (collected === undefined || collected.length === 0) return step
    collected.push(step)
    return Bytes.concat(collected)
  }

  /** Writes to the host, or into what a public `push` will yield. */
  protected writeOut(bytes: Uint8Array, writer: Bytes.Writer): void {
    if (this.collected !== undefined) this.collected.push(bytes.slice())
    else this.host.write(bytes, writer)
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

  get closed(): boolean {
    return this.stopped === "closed"
  }

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

  /** Decodes a frame; what the codec throws that is not a typed error is wrapped. */
  protected decodeFrame(frame: Uint8Array): unknown {
    try {
      return this.decode(frame)
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
      if (this.messages) this.writeOut(writer.take(), writer)
      return true
    } catch (error) {
      // An encoding failure may be recovered with a reply of its own, which must encode at once.
      const recovered = this.recover?.(error, request, this.host.handlerContext)
      if (recovered !== undefined && isExitEffect(recovered) && Exit.isSuccess(recovered)) {
        try {
          this.encodeFrame(writer, recovered.value)
          if (this.messages) this.writeOut(writer.take(), writer)
          return true
        } catch {
          // fall through: the first error is the one reported
        }
      }
      this.fail(error)
      return false
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
    try {
      const result = this.run(message, this.host.handlerContext)
      return this.isSync ? Exit.succeed(result) : runInline(result as Effect.Effect<unknown>)
    } catch (cause) {
      return Exit.fail(new HandlerError({ cause }))
    } finally {
      running.engine = undefined
    }
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
    const pool = this.host.pool
    if (pool !== undefined && !pool.tryAcquire()) {
      slot.cancelWait = pool.wait(() => {
        slot.cancelWait = undefined
        if (this.interrupted) {
          pool.release()
          return
        }
        const exit = this.fork(slot, effect)
        if (exit !== undefined) this.slotDone(slot, exit)
      })
      return undefined
    }
    return this.fork(slot, effect)
  }

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

  // --- send and close ------------------------------------------------------------------------------

  /** `session.send` / `sendWait`: in order with the replies of the message it is sent from, if any. */
  send(message: unknown, wait: boolean): Effect.Effect<void, SendError> {
    return Effect.suspend(() => {
      if (running.engine === this) return this.sendInline(message, wait)
      if (running.engine !== undefined) return this.sendOutside(message, wait)
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
      if (running.engine === this) {
        this.closeFrom(running.seq)
        return Effect.void
      }
      if (running.engine !== undefined) {
        this.host.closeRequested()
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

  private closeFrom(seq: number): void {
    if (seq < 0) return // the last reply to a frame error: the connection closes anyway
    if (this.closeAt === undefined || seq < this.closeAt) this.closeAfter(seq)
  }

  private refuse(extra: number): SendError | undefined {
    const host = this.host
    if (!host.canWrite() || this.interrupted) {
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
    if (this.messages) this.writeOut(this.writer.take(), this.writer)
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
    this.writeOut(out.take(), out)
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
    this.writeOut(out.take(), out)
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
    if (deferred !== undefined && deferred.length > 0 && this.host.canWrite()) this.writeOut(deferred.take(), deferred)
  }
}

/** Whether a thrown value is a typed error (a tagged one), as codecs and framers must throw. */
export const isTagged = (error: unknown): boolean =>
  typeof error === "object" && error !== null && typeof (error as { _tag?: unknown })._tag === "string"

/** The error a failed handler reports: its typed failure, or a `HandlerError` for a defect. */
export const causeToError = (cause: Cause.Cause<unknown>): unknown => {
  const failure = Cause.findErrorOption(cause)
  if (failure._tag === "Some") return failure.value
  return new HandlerError({ cause: Cause.squash(cause) })
}
