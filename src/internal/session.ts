import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as Runtime from "effect/Runtime"
import * as Scope from "effect/Scope"
import * as Bytes from "../Bytes.ts"
import {
  ConnectionClosed,
  HandlerTimeout,
  IdleTimeout,
  OutboundOverflow,
  type TransportError,
  WriteTimeout
} from "../Errors.ts"
import * as Metrics from "../Metrics.ts"
import type * as Pipeline from "../Pipeline.ts"
import type * as Session from "../Session.ts"
import type * as Transport from "../Transport.ts"
import { formatAddress } from "../Transport.ts"
import { Engine } from "./engine.ts"

let nextId = 0

const PAUSED_HANDLER = 1
const PAUSED_OUTBOUND = 2
const PAUSED_CLOSING = 4

export const defaults = {
  readIdleTimeout: Duration.minutes(5),
  writeTimeout: Duration.seconds(30),
  handlerTimeout: Duration.seconds(30),
  highWaterMark: 1024 * 1024,
  lowWaterMark: 256 * 1024,
  maxOutboundBytes: 16 * 1024 * 1024,
  closeTimeout: Duration.seconds(5)
}

const millisOf = (input: Duration.DurationInput | undefined, fallback: Duration.Duration): number => {
  const duration = input === undefined ? fallback : Duration.decode(input)
  return Duration.isFinite(duration) ? Duration.toMillis(duration) : Infinity
}

export interface Limits {
  readonly readIdleMillis: number
  readonly writeMillis: number
  readonly handlerMillis: number
  readonly highWaterMark: number
  readonly lowWaterMark: number
  readonly maxOutboundBytes: number
  readonly closeMillis: number
}

export const limitsOf = (options: Session.Options): Limits => {
  const highWaterMark = options.highWaterMark ?? defaults.highWaterMark
  const handler = options.handlerTimeout === undefined
    ? defaults.handlerTimeout
    : Duration.decode(options.handlerTimeout)
  return {
    readIdleMillis: millisOf(options.readIdleTimeout, defaults.readIdleTimeout),
    writeMillis: millisOf(options.writeTimeout, defaults.writeTimeout),
    handlerMillis: Duration.isFinite(handler) ? Duration.toMillis(handler) : Infinity,
    highWaterMark,
    lowWaterMark: Math.min(options.lowWaterMark ?? defaults.lowWaterMark, highWaterMark),
    maxOutboundBytes: Math.max(options.maxOutboundBytes ?? defaults.maxOutboundBytes, highWaterMark),
    closeMillis: millisOf(options.closeTimeout, defaults.closeTimeout)
  }
}

/**
 * One connection at run time. Reads are handled synchronously in the transport's callback; a
 * handler that suspends pauses reading until it completes. Lifetime and hooks are run by `run`.
 */
export class SessionImpl<Out, S> implements Session.Session<Out, S> {
  readonly id: string
  state: S = undefined as S
  bytesIn = 0
  bytesOut = 0
  drains = 0
  /** Why the session ends, once it does. */
  reason: Session.CloseReason | undefined = undefined
  // deno-lint-ignore no-explicit-any
  engine: Engine<any> | undefined = undefined

  private paused = 0
  private backlog: Array<Uint8Array> = []
  private pending: Fiber.RuntimeFiber<Uint8Array, never> | undefined = undefined
  private peerEnded = false
  /** Set by `closeConnection`: input is read and dropped from then on. */
  private closing = false
  private transportClosed = false
  /** Messages sent with `send`, made on first use (most sessions never push). */
  private pushWriter: Bytes.Writer | undefined = undefined
  private get sendWriter(): Bytes.Writer {
    return this.pushWriter ??= new Bytes.Writer({ initialCapacity: 256 })
  }
  private readonly remote: string
  private readonly ended: Deferred.Deferred<Session.CloseReason>
  readonly closed: Deferred.Deferred<void>
  // deno-lint-ignore no-explicit-any
  private runFork!: <A, E>(effect: Effect.Effect<A, E, any>) => Fiber.RuntimeFiber<A, E>

  constructor(
    readonly connection: Transport.Connection,
    readonly limits: Limits,
    prefix: string
  ) {
    this.id = `${prefix}-${++nextId}`
    this.remote = formatAddress(connection.remoteAddress)
    this.ended = Deferred.unsafeMake(undefined as never)
    this.closed = Deferred.unsafeMake(undefined as never)
  }

  get remoteAddress(): Transport.Address {
    return this.connection.remoteAddress
  }

  get localAddress(): Transport.Address {
    return this.connection.localAddress
  }

  get queuedBytes(): number {
    return this.connection.queuedBytes
  }

  get isOpen(): boolean {
    return this.reason === undefined
  }

  /** Waits until the session ends, and says why. */
  get awaitEnd(): Effect.Effect<Session.CloseReason> {
    return Deferred.await(this.ended)
  }

  // --- start ---------------------------------------------------------------------------------------

  start<R>(pipeline: Pipeline.Pipeline.Any, runtime: Runtime.Runtime<R>): void {
    // deno-lint-ignore no-explicit-any
    this.runFork = Runtime.runFork(runtime as Runtime.Runtime<any>)
    this.engine = new Engine(pipeline, {
      context: this,
      runtime,
      onReply: (bytes) => this.write(bytes),
      onFailure: (error) => this.end({ _tag: "Failed", error })
    })
    this.connection.start({
      onData: (chunk) => this.onData(chunk),
      onDrain: () => this.onDrain(),
      onEnd: () => this.onPeerEnd(),
      onClose: (error) => this.onTransportClose(error)
    })
  }

  // --- reading -------------------------------------------------------------------------------------

  private onData(chunk: Uint8Array): void {
    this.bytesIn += chunk.length
    if (this.closing || (this.reason !== undefined && this.reason._tag !== "Shutdown")) return
    if (this.paused !== 0) {
      // Bytes the transport had already read when reading was paused.
      this.backlog.push(chunk.slice())
      return
    }
    this.process(chunk)
  }

  private process(chunk: Uint8Array): void {
    const step = this.engine!.push(chunk)
    if (step instanceof Uint8Array) {
      this.afterStep(step)
      return
    }
    // The fiber starts at once: a handler that does not really suspend (an `Effect.gen` that only
    // computes) finishes here, without pausing and resuming the socket.
    const fiber = this.runFork(step)
    const done = fiber.unsafePoll()
    if (done !== null) {
      if (Exit.isSuccess(done)) this.afterStep(done.value)
      return
    }
    this.pause(PAUSED_HANDLER)
    this.pending = fiber
    fiber.addObserver((exit) => {
      this.pending = undefined
      if (Exit.isSuccess(exit)) this.afterStep(exit.value)
      this.unpause(PAUSED_HANDLER)
    })
  }

  private afterStep(bytes: Uint8Array): void {
    if (bytes.length > 0) this.write(bytes)
    const error = this.engine!.error
    if (error !== undefined) this.end({ _tag: "Failed", error })
  }

  private pause(flag: number): void {
    if (this.closing) return
    if (this.paused === 0) this.connection.pause()
    this.paused |= flag
  }

  private unpause(flag: number): void {
    if ((this.paused & flag) === 0 || this.closing) return
    this.paused &= ~flag
    while (this.paused === 0 && this.backlog.length > 0 && this.engine!.error === undefined) {
      this.process(this.backlog.shift()!)
    }
    if (this.paused !== 0) return
    if (this.peerEnded) this.finishInput()
    else this.connection.resume()
  }

  private onPeerEnd(): void {
    this.peerEnded = true
    if (this.paused === 0) this.finishInput()
  }

  /** The peer sent everything it will send: finish what it asked, then close. */
  private finishInput(): void {
    if (this.closing || (this.reason !== undefined && this.reason._tag !== "Shutdown")) return
    const step = this.engine!.end()
    const done = (bytes: Uint8Array) => {
      if (bytes.length > 0) this.write(bytes)
      const error = this.engine!.error
      this.end(error !== undefined ? { _tag: "Failed", error } : { _tag: "PeerClosed" })
    }
    if (step instanceof Uint8Array) done(step)
    else {
      this.runFork(step).addObserver((exit) => {
        if (Exit.isSuccess(exit)) done(exit.value)
      })
    }
  }

  // --- writing -------------------------------------------------------------------------------------

  write(bytes: Uint8Array): void {
    this.bytesOut += bytes.length
    this.connection.write(bytes)
    if (this.connection.queuedBytes > this.limits.highWaterMark) this.pause(PAUSED_OUTBOUND)
  }

  private onDrain(): void {
    this.drains++
    if ((this.paused & PAUSED_OUTBOUND) !== 0 && this.connection.queuedBytes <= this.limits.lowWaterMark) {
      this.unpause(PAUSED_OUTBOUND)
    }
  }

  send(message: Out): Effect.Effect<void, Session.SendError> {
    return Effect.suspend(() => this.sendUnsafe(message))
  }

  sendUnsafe(message: Out): Effect.Effect<void, Session.SendError> {
    if (this.reason !== undefined || this.transportClosed) {
      return Effect.fail(new ConnectionClosed({ remoteAddress: this.remote, reason: "the session has ended" }))
    }
    const queued = this.connection.queuedBytes + (this.pushWriter?.length ?? 0)
    if (queued > this.limits.maxOutboundBytes) {
      return Effect.fail(
        new OutboundOverflow({
          sessionId: this.id,
          remoteAddress: this.remote,
          queuedBytes: queued,
          limit: this.limits.maxOutboundBytes
        })
      )
    }
    try {
      this.engine!.encodeMessage(this.sendWriter, message)
    } catch (error) {
      return Effect.fail(error as Session.SendError)
    }
    // Messages sent in the same tick (many fibers calling `send`) go out in one write.
    if (!this.flushScheduled) {
      this.flushScheduled = true
      queueMicrotask(this.flushSends)
    }
    return Effect.void
  }

  private flushScheduled = false
  private readonly flushSends = (): void => {
    this.flushScheduled = false
    const writer = this.pushWriter
    if (writer !== undefined && writer.length > 0 && !this.transportClosed) this.write(writer.take())
  }

  // --- ending --------------------------------------------------------------------------------------

  get close(): Effect.Effect<void> {
    return Effect.sync(() => this.end({ _tag: "Closed" }))
  }

  /** Ends the session once; the run loop takes it from there. */
  end(reason: Session.CloseReason): void {
    if (this.reason !== undefined && this.reason._tag !== "Shutdown") return
    if (this.reason?._tag === "Shutdown" && reason._tag === "Shutdown") return
    const draining = reason._tag === "Shutdown"
    this.reason = reason
    if (draining) {
      // Stop reading new requests; let the ones read finish, then close.
      this.pause(PAUSED_CLOSING)
      this.whenIdle(() => this.finishShutdown())
      return
    }
    Deferred.unsafeDone(this.ended, Exit.succeed(reason))
  }

  private finishShutdown(): void {
    if (this.reason?._tag !== "Shutdown") return
    const engine = this.engine
    if (engine === undefined || engine.inFlight === 0) {
      Deferred.unsafeDone(this.ended, Exit.succeed(this.reason))
      return
    }
    const step = engine.end()
    const done = (bytes: Uint8Array) => {
      if (bytes.length > 0) this.write(bytes)
      Deferred.unsafeDone(this.ended, Exit.succeed(this.reason!))
    }
    if (step instanceof Uint8Array) done(step)
    else this.runFork(step).addObserver((exit) => Exit.isSuccess(exit) && done(exit.value))
  }

  private whenIdle(then: () => void): void {
    const pending = this.pending
    if (pending === undefined) then()
    else pending.addObserver(() => queueMicrotask(then))
  }

  private onTransportClose(error: TransportError | undefined): void {
    this.transportClosed = true
    Deferred.unsafeDone(this.closed, Exit.void)
    if (this.reason === undefined) this.end(error !== undefined ? { _tag: "Failed", error } : { _tag: "PeerClosed" })
    else if (this.reason._tag === "Shutdown") Deferred.unsafeDone(this.ended, Exit.succeed(this.reason))
  }

  /** After `ended`: flush and close the connection, bounded by `closeTimeout`. */
  closeConnection(): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (this.pending !== undefined) this.pending.unsafeInterruptAsFork(this.pending.id())
      if (this.transportClosed) return Effect.void
      // Read and drop what the peer still sends: a paused socket would never see the peer close
      // (the wait below would last `closeTimeout`), and closing with unread bytes resets it.
      this.closing = true
      this.backlog = []
      if (this.paused !== 0) {
        this.paused = 0
        this.connection.resume()
      }
      this.connection.end()
      // Runs inside the session's uninterruptible close: the wait itself must stay interruptible
      // for the time-out to cut it short.
      return Effect.interruptible(Deferred.await(this.closed)).pipe(
        Effect.timeoutTo({ duration: this.limits.closeMillis, onTimeout: () => false, onSuccess: () => true }),
        Effect.flatMap((closedCleanly) => closedCleanly ? Effect.void : Effect.sync(() => this.connection.destroy()))
      )
    })
  }

  destroy(): void {
    this.connection.destroy()
  }

  // --- time-outs (checked by a sweeper, never per read) --------------------------------------------

  sweepBytesIn = -1
  sweepReadAt = 0
  sweepQueued = 0
  sweepDrains = -1
  sweepWriteAt = 0
  sweepSettled = -1
  sweepHandlerAt = 0

  private reportedBytesIn = 0
  private reportedBytesOut = 0
  private reportedFrames = 0

  /** Adds what happened since the last report to the metrics. */
  report(): void {
    if (this.bytesIn !== this.reportedBytesIn) {
      Metrics.bytesIn.unsafeUpdate(this.bytesIn - this.reportedBytesIn, [])
      this.reportedBytesIn = this.bytesIn
    }
    if (this.bytesOut !== this.reportedBytesOut) {
      Metrics.bytesOut.unsafeUpdate(this.bytesOut - this.reportedBytesOut, [])
      this.reportedBytesOut = this.bytesOut
    }
    const frames = this.engine?.framesIn ?? 0
    if (frames !== this.reportedFrames) {
      Metrics.framesIn.unsafeUpdate(frames - this.reportedFrames, [])
      this.reportedFrames = frames
    }
  }

  sweep(now: number): void {
    this.report()
    if (this.reason !== undefined) return
    if (this.bytesIn !== this.sweepBytesIn || this.paused !== 0) {
      this.sweepBytesIn = this.bytesIn
      this.sweepReadAt = now
    } else if (now - this.sweepReadAt >= this.limits.readIdleMillis) {
      this.end({
        _tag: "Failed",
        error: new IdleTimeout({
          sessionId: this.id,
          remoteAddress: this.remote,
          timeoutMillis: this.limits.readIdleMillis
        })
      })
      return
    }
    // A handler is stuck when messages are in flight and none has settled for handlerTimeout.
    const engine = this.engine
    if (engine !== undefined && (this.pending !== undefined || engine.inFlight > 0)) {
      if (engine.settled !== this.sweepSettled) {
        this.sweepSettled = engine.settled
        this.sweepHandlerAt = now
      } else if (now - this.sweepHandlerAt >= this.limits.handlerMillis) {
        this.end({ _tag: "Failed", error: new HandlerTimeout({ timeoutMillis: this.limits.handlerMillis }) })
        return
      }
    } else {
      this.sweepSettled = -1
    }
    const queued = this.connection.queuedBytes
    if (queued === 0 || queued < this.sweepQueued || this.drains !== this.sweepDrains) {
      this.sweepQueued = queued
      this.sweepDrains = this.drains
      this.sweepWriteAt = now
    } else if (now - this.sweepWriteAt >= this.limits.writeMillis) {
      this.end({
        _tag: "Failed",
        error: new WriteTimeout({
          sessionId: this.id,
          remoteAddress: this.remote,
          timeoutMillis: this.limits.writeMillis,
          queuedBytes: queued
        })
      })
    } else {
      this.sweepQueued = queued
    }
  }
}

/** A quarter of the shortest time-out, between 5 ms and 1 s. */
const intervalFor = ({ handlerMillis, readIdleMillis, writeMillis }: Limits): number =>
  Math.min(Math.max(Math.min(readIdleMillis, writeMillis, handlerMillis) / 4, 5), 1000)

/**
 * One fiber checks the deadlines of every session of a server or client (getty's timer wheel),
 * so that no read pays for a timer.
 */
export class Sweeper {
  readonly sessions = new Set<SessionImpl<unknown, unknown>>()
  private intervalMillis: number

  /** `limits`: those of the sessions it will check, so that its first tick already fits them. */
  constructor(limits: Limits) {
    this.intervalMillis = intervalFor(limits)
  }

  track(session: SessionImpl<unknown, unknown>): void {
    const interval = intervalFor(session.limits)
    if (interval < this.intervalMillis) this.intervalMillis = interval
    this.sessions.add(session)
  }

  untrack(session: SessionImpl<unknown, unknown>): void {
    this.sessions.delete(session)
  }

  get run(): Effect.Effect<never> {
    const tick = Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Effect.sync(() => {
        for (const session of this.sessions) session.sweep(now)
      }))
    return Effect.flatMap(
      Effect.suspend(() => Effect.sleep(this.intervalMillis)),
      () => tick
    ).pipe(Effect.forever)
  }
}

const reasonLabel = (reason: Session.CloseReason): string => {
  if (reason._tag !== "Failed") return reason._tag
  const error = reason.error
  return typeof error === "object" && error !== null && typeof (error as { _tag?: unknown })._tag === "string"
    ? (error as { _tag: string })._tag
    : "Defect"
}

/** The error a session ended with, if any. */
export const errorOf = (reason: Session.CloseReason): unknown => reason._tag === "Failed" ? reason.error : undefined

/**
 * Runs one connection to its end: hooks, scope, reading, closing. Never fails; hooks' failures end
 * the session and are reported to `onError`.
 */
export const run = <In, Out, E, R, S, HE, HR>(
  connection: Transport.Connection,
  options: {
    readonly pipeline:
      | Pipeline.Pipeline<In, Out, E, R>
      | ((session: Session.Session<Out, S>) => Pipeline.Pipeline<In, Out, E, R>)
    readonly hooks: Session.Hooks<Out, S, E, HE, HR>
    readonly limits: Limits
    readonly sweeper: Sweeper
    readonly prefix: string
    readonly onStart?: ((session: SessionImpl<Out, S>) => void) | undefined
  }
): Effect.Effect<Session.CloseReason, never, R | HR> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.gen(function* () {
      const session = new SessionImpl<Out, S>(connection, options.limits, options.prefix)
      Metrics.connectionsTotal.unsafeUpdate(1, [])
      Metrics.connectionsOpen.unsafeUpdate(1, [])
      const scope = yield* Scope.make()
      const hooks = options.hooks
      options.onStart?.(session)
      const opened = yield* restore(
        hooks.onOpen === undefined ? Effect.succeed(undefined as S) : Scope.extend(hooks.onOpen(session), scope)
      ).pipe(Effect.exit)
      if (Exit.isSuccess(opened)) {
        session.state = opened.value
        // Taken with interruption enabled: fibers run from a runtime captured inside this mask would
        // be uninterruptible, and a suspended handler could then never be stopped.
        const runtime = yield* Effect.interruptible(Effect.runtime<R>())
        const pipeline = typeof options.pipeline === "function" ? options.pipeline(session) : options.pipeline
        session.start(pipeline, runtime)
        options.sweeper.track(session as SessionImpl<unknown, unknown>)
        if (hooks.onCron !== undefined) {
          const cron = hooks.onCron
          // Forked interruptible: a fiber forked here inherits the mask, and closing the session's
          // scope could then never stop it.
          yield* Effect.forkIn(
            Effect.schedule(
              Effect.catchAllCause(
                cron.run(session),
                (cause) => Effect.sync(() => session.end({ _tag: "Failed", error: Cause.squash(cause) }))
              ),
              cron.schedule
            ).pipe(Effect.forever, Effect.interruptible),
            scope
          )
        }
        const waited = yield* Effect.exit(restore(session.awaitEnd))
        if (Exit.isFailure(waited)) {
          // Interrupted (the server's scope closed past its grace period): close at once.
          session.end({ _tag: "Closed" })
          session.destroy()
        }
      } else {
        session.end({ _tag: "Failed", error: Cause.squash(opened.cause) })
      }
      options.sweeper.untrack(session as SessionImpl<unknown, unknown>)
      const reason = session.reason!
      session.report()
      Metrics.connectionsOpen.unsafeUpdate(-1, [])
      Metrics.sessionsEnded.unsafeUpdate(reasonLabel(reason), [])
      yield* session.closeConnection()
      if (session.engine !== undefined) yield* session.engine.interrupt()
      const error = errorOf(reason)
      if (error !== undefined && hooks.onError !== undefined) {
        yield* Effect.catchAllCause(hooks.onError(session, error as E), Effect.logWarning)
      } else if (error !== undefined) {
        yield* Effect.logDebug(`session ${session.id} ended: ${error instanceof Error ? error.message : String(error)}`)
      }
      if (hooks.onClose !== undefined) yield* Effect.catchAllCause(hooks.onClose(session, reason), Effect.logWarning)
      yield* Scope.close(scope, Exit.void)
      return reason
    })
  )
