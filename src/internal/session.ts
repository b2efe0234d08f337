import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import type * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
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

const millisOf = (input: Duration.Input | undefined, fallback: Duration.Duration): number => {
  const duration = input === undefined ? fallback : Duration.fromInputUnsafe(input)
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
    : Duration.fromInputUnsafe(options.handlerTimeout)
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
 * One connection at run time. Reads are handled synchronously in the transport's callback (the
 * session is the connection's handler); a handler that suspends pauses reading until it completes.
 * Opening and closing are run by `start`: no fiber waits for an idle connection.
 */
export class SessionImpl<Out, S> implements Session.Session<Out, S>, Transport.ConnectionHandler {
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
  private pending: Fiber.Fiber<Uint8Array, never> | undefined = undefined
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
  /** Called once when the session has ended (`reason` is final): `start` closes it from there. */
  onEnded: (() => void) | undefined = undefined
  /** Waits in `closeConnection` for the transport's `onClose`. */
  private closedWaiter: (() => void) | undefined = undefined
  /** `onOpen` while it runs, and the scope it opened into. */
  opening: Fiber.Fiber<unknown, unknown> | undefined = undefined
  scope: Scope.Closeable | undefined = undefined
  readonly limits: Limits
  // deno-lint-ignore no-explicit-any
  private runFork: <A, E>(effect: Effect.Effect<A, E, any>) => Fiber.Fiber<A, E>

  constructor(
    readonly connection: Transport.Connection,
    shared: {
      readonly limits: Limits
      readonly prefix: string
      // deno-lint-ignore no-explicit-any
      readonly runFork: <A, E>(effect: Effect.Effect<A, E, any>) => Fiber.Fiber<A, E>
    }
  ) {
    this.id = `${shared.prefix}-${++nextId}`
    this.limits = shared.limits
    this.runFork = shared.runFork
    this.remote = formatAddress(connection.remoteAddress)
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

  // --- start ---------------------------------------------------------------------------------------

  start<R>(pipeline: Pipeline.Pipeline.Any, context: Context.Context<R>): void {
    // deno-lint-ignore no-explicit-any
    const engine: Engine<any> = new Engine(pipeline, {
      handlerContext: this,
      context,
      onReply: (bytes) => this.write(bytes, engine.writer),
      onFailure: (error) => this.end({ _tag: "Failed", error })
    })
    this.engine = engine
    this.connection.start(this)
  }

  // --- reading -------------------------------------------------------------------------------------

  onData(chunk: Uint8Array): void {
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
    const done = fiber.pollUnsafe()
    if (done !== undefined) {
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
    if (bytes.length > 0) this.write(bytes, this.engine!.writer)
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

  onEnd(): void {
    this.peerEnded = true
    if (this.paused === 0) this.finishInput()
  }

  /** The peer sent everything it will send: finish what it asked, then close. */
  private finishInput(): void {
    if (this.closing || (this.reason !== undefined && this.reason._tag !== "Shutdown")) return
    const step = this.engine!.end()
    const done = (bytes: Uint8Array) => {
      if (bytes.length > 0) this.write(bytes, this.engine!.writer)
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

  /** Writes bytes taken from `writer`, which gives its buffer up if the transport keeps it. */
  private write(bytes: Uint8Array, writer: Bytes.Writer): void {
    this.bytesOut += bytes.length
    const connection = this.connection
    if (connection.writeNoCopy === undefined) connection.write(bytes)
    else if (connection.writeNoCopy(bytes)) writer.detach()
    if (connection.queuedBytes > this.limits.highWaterMark) this.pause(PAUSED_OUTBOUND)
  }

  onDrain(): void {
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
    if (this.engine!.framer.messages === true) {
      // A message-oriented transport: each message is written on its own, never coalesced.
      this.flushSends()
      return Effect.void
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
    if (writer !== undefined && writer.length > 0 && !this.transportClosed) this.write(writer.take(), writer)
  }

  // --- ending --------------------------------------------------------------------------------------

  get close(): Effect.Effect<void> {
    return Effect.sync(() => this.end({ _tag: "Closed" }))
  }

  /** Ends the session once; `start` takes it from there. */
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
    this.signalEnded()
  }

  /** Set once the session has ended and its close has begun. */
  finished = false

  private signalEnded(): void {
    if (this.finished) return
    this.finished = true
    this.onEnded?.()
  }

  private finishShutdown(): void {
    if (this.reason?._tag !== "Shutdown") return
    const engine = this.engine
    if (engine === undefined || engine.inFlight === 0) {
      this.signalEnded()
      return
    }
    const step = engine.end()
    const done = (bytes: Uint8Array) => {
      if (bytes.length > 0) this.write(bytes, engine.writer)
      this.signalEnded()
    }
    if (step instanceof Uint8Array) done(step)
    else this.runFork(step).addObserver((exit) => Exit.isSuccess(exit) && done(exit.value))
  }

  private whenIdle(then: () => void): void {
    const pending = this.pending
    if (pending === undefined) then()
    else pending.addObserver(() => queueMicrotask(then))
  }

  onClose(error: TransportError | undefined): void {
    this.transportClosed = true
    const waiter = this.closedWaiter
    this.closedWaiter = undefined
    waiter?.()
    if (this.reason === undefined) this.end(error !== undefined ? { _tag: "Failed", error } : { _tag: "PeerClosed" })
    else if (this.reason._tag === "Shutdown") this.signalEnded()
  }

  /** After `ended`: flush and close the connection, bounded by `closeTimeout`. */
  closeConnection(): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (this.pending !== undefined) this.pending.interruptUnsafe()
      if (this.transportClosed) return Effect.void
      // Messages sent just before the end go out before the FIN.
      this.flushSends()
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
      const closed = Effect.callback<void>((resume) => {
        if (this.transportClosed) resume(Effect.void)
        else this.closedWaiter = () => resume(Effect.void)
        return Effect.sync(() => {
          this.closedWaiter = undefined
        })
      })
      return Effect.interruptible(closed).pipe(
        Effect.timeoutOrElse({
          duration: this.limits.closeMillis,
          orElse: () => Effect.sync(() => this.connection.destroy())
        })
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

  /** Adds what happened since the last report to the metrics of `context`. */
  report(context: Context.Context<never>): void {
    if (this.bytesIn !== this.reportedBytesIn) {
      Metrics.bytesIn.updateUnsafe(this.bytesIn - this.reportedBytesIn, context)
      this.reportedBytesIn = this.bytesIn
    }
    if (this.bytesOut !== this.reportedBytesOut) {
      Metrics.bytesOut.updateUnsafe(this.bytesOut - this.reportedBytesOut, context)
      this.reportedBytesOut = this.bytesOut
    }
    const frames = this.engine?.framesIn ?? 0
    if (frames !== this.reportedFrames) {
      Metrics.framesIn.updateUnsafe(frames - this.reportedFrames, context)
      this.reportedFrames = frames
    }
  }

  sweep(now: number, context: Context.Context<never>): void {
    this.report(context)
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
    const tick = Effect.flatMap(
      Clock.currentTimeMillis,
      (now) =>
        Effect.contextWith((context: Context.Context<never>) => {
          for (const session of this.sessions) session.sweep(now, context)
          return Effect.void
        })
    )
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
 * What every session of one server or client shares: held by reference, so that a session costs
 * its own state and nothing per hook.
 */
export interface Shared<In, Out, E, R, S, HE, HR> {
  readonly pipeline:
    | Pipeline.Pipeline<In, Out, E, R>
    | ((session: Session.Session<Out, S>) => Pipeline.Pipeline<In, Out, E, R>)
  readonly hooks: Session.Hooks<Out, S, E, HE, HR>
  readonly limits: Limits
  readonly sweeper: Sweeper
  readonly prefix: string
  /** Runs handlers, hooks and the close of each session. */
  readonly context: Context.Context<R | HR>
  readonly runFork: <A, X>(effect: Effect.Effect<A, X, R | HR>) => Fiber.Fiber<A, X>
  /** The session exists (before `onOpen`). */
  readonly onStart?: ((session: SessionImpl<Out, S>) => void) | undefined
  /** The session's pipeline runs: it can send. */
  readonly onBegin?: ((session: SessionImpl<Out, S>) => void) | undefined
  /** The session has ended: its reason is final, its connection not yet closed. */
  readonly onEnd?: ((session: SessionImpl<Out, S>) => void) | undefined
  /** Everything is closed and every hook has run. */
  readonly onDone?: ((session: SessionImpl<Out, S>, reason: Session.CloseReason) => void) | undefined
}

/** `Shared` for one server or client. */
export const shared = <In, Out, E, R, S, HE, HR>(
  options: Omit<Shared<In, Out, E, R, S, HE, HR>, "runFork">
): Shared<In, Out, E, R, S, HE, HR> => ({ ...options, runFork: Effect.runForkWith(options.context) })

/**
 * Starts one connection's session: `onOpen` (synchronously when it does not suspend), then reading,
 * from the transport's callbacks. No fiber waits while the connection is open: when the session
 * ends, one fiber closes it (flush, FIN, `onError`, `onClose`, the scope) and then calls `onDone`.
 * Hooks' failures end the session and are reported to `onError`.
 */
export const start = <In, Out, E, R, S, HE, HR>(
  connection: Transport.Connection,
  shared: Shared<In, Out, E, R, S, HE, HR>
): SessionImpl<Out, S> => {
  const session = new SessionImpl<Out, S>(connection, shared)
  const context = shared.context as Context.Context<never>
  Metrics.connectionsTotal.updateUnsafe(1, context)
  Metrics.connectionsOpen.modifyUnsafe(1, context)
  session.onEnded = () => finish(session, shared)
  shared.onStart?.(session)
  const hooks = shared.hooks
  if (hooks.onOpen === undefined && hooks.onCron === undefined) {
    begin(session, shared)
    return session
  }
  const scope = Scope.makeUnsafe()
  session.scope = scope
  if (hooks.onOpen === undefined) {
    begin(session, shared)
    return session
  }
  // Suspended: a hook that throws instead of failing ends its own session, not the accept callback.
  const onOpen = hooks.onOpen
  const fiber = shared.runFork(Scope.provide(Effect.suspend(() => onOpen(session)), scope))
  const opened = fiber.pollUnsafe()
  if (opened !== undefined) afterOpen(session, shared, opened)
  else {
    session.opening = fiber as Fiber.Fiber<unknown, unknown>
    fiber.addObserver((exit) => {
      session.opening = undefined
      afterOpen(session, shared, exit)
    })
  }
  return session
}

const afterOpen = <In, Out, E, R, S, HE, HR>(
  session: SessionImpl<Out, S>,
  shared: Shared<In, Out, E, R, S, HE, HR>,
  opened: Exit.Exit<S, HE>
): void => {
  if (session.finished) return // aborted or shut down while opening
  if (Exit.isFailure(opened)) session.end({ _tag: "Failed", error: Cause.squash(opened.cause) })
  else {
    session.state = opened.value
    begin(session, shared)
  }
}

const begin = <In, Out, E, R, S, HE, HR>(
  session: SessionImpl<Out, S>,
  shared: Shared<In, Out, E, R, S, HE, HR>
): void => {
  try {
    const pipeline = typeof shared.pipeline === "function" ? shared.pipeline(session) : shared.pipeline
    session.start(pipeline, shared.context)
  } catch (defect) {
    // A pipeline factory that throws ends its own session; the server carries on.
    session.end({ _tag: "Failed", error: defect })
    return
  }
  shared.sweeper.track(session as SessionImpl<unknown, unknown>)
  shared.onBegin?.(session)
  const cron = shared.hooks.onCron
  if (cron !== undefined) {
    // In the session's scope: closing it stops the schedule.
    shared.runFork(Effect.forkIn(
      Effect.schedule(
        Effect.catchCause(
          Effect.suspend(() => cron.run(session)),
          (cause) => Effect.sync(() => session.end({ _tag: "Failed", error: Cause.squash(cause) }))
        ),
        cron.schedule
      ).pipe(Effect.forever),
      session.scope!
    ))
  }
}

/** The session has ended: close it, run the hooks, and report it done. */
const finish = <In, Out, E, R, S, HE, HR>(
  session: SessionImpl<Out, S>,
  shared: Shared<In, Out, E, R, S, HE, HR>
): void => {
  const reason = session.reason!
  shared.sweeper.untrack(session as SessionImpl<unknown, unknown>)
  const context = shared.context as Context.Context<never>
  session.report(context)
  Metrics.connectionsOpen.modifyUnsafe(-1, context)
  Metrics.sessionsEnded.updateUnsafe(reasonLabel(reason), context)
  shared.onEnd?.(session)
  const hooks = shared.hooks
  const close = Effect.gen(function* () {
    if (session.opening !== undefined) yield* Fiber.interrupt(session.opening)
    yield* session.closeConnection()
    if (session.engine !== undefined) yield* session.engine.interrupt()
    const error = errorOf(reason)
    if (error !== undefined && hooks.onError !== undefined) {
      const onError = hooks.onError
      yield* Effect.catchCause(Effect.suspend(() => onError(session, error as E)), Effect.logWarning)
    } else if (error !== undefined) {
      yield* Effect.logDebug(`session ${session.id} ended: ${error instanceof Error ? error.message : String(error)}`)
    }
    const onClose = hooks.onClose
    // Suspended, like every hook: one that throws is logged, and the scope still closes.
    if (onClose !== undefined) {
      yield* Effect.catchCause(Effect.suspend(() => onClose(session, reason)), Effect.logWarning)
    }
    if (session.scope !== undefined) yield* Scope.close(session.scope, Exit.void)
  })
  const fiber = shared.runFork(Effect.uninterruptible(close))
  const onDone = shared.onDone
  if (onDone !== undefined) fiber.addObserver(() => onDone(session, reason))
}

/**
 * Ends a session at once (its server stops past its grace period, or whoever ran it is
 * interrupted): the connection is dropped, and the close runs as usual.
 */
export const abort = (session: SessionImpl<unknown, unknown>): void => {
  session.end({ _tag: "Closed" })
  session.destroy()
}

/**
 * Runs one connection to its end and says why it ended. Interrupted, it aborts the session and
 * waits for its close.
 */
export const run = <In, Out, E, R, S, HE, HR>(
  connection: Transport.Connection,
  options: Omit<Shared<In, Out, E, R, S, HE, HR>, "context" | "runFork" | "onDone">
): Effect.Effect<Session.CloseReason, never, R | HR> =>
  Effect.flatMap(
    Effect.context<R | HR>(),
    (context) =>
      Effect.callback<Session.CloseReason>((resume) => {
        let closed: Session.CloseReason | undefined
        let waiter: (() => void) | undefined
        const session = start(connection, {
          ...shared({ ...options, context }),
          onDone: (_, reason) => {
            closed = reason
            resume(Effect.succeed(reason))
            waiter?.()
          }
        })
        return Effect.callback<void>((resumeInterrupt) => {
          abort(session as SessionImpl<unknown, unknown>)
          if (closed !== undefined) resumeInterrupt(Effect.void)
          else waiter = () => resumeInterrupt(Effect.void)
        })
      })
  )
