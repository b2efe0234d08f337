import * as Cause from "effect/Cause"
import type * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import { FrameTimeout, IdleTimeout, type SendError, WriteTimeout } from "../Errors.ts"
import * as Metrics from "../Metrics.ts"
import type * as Pipeline from "../Pipeline.ts"
import type * as Session from "../Session.ts"
import type * as Transport from "../Transport.ts"
import type { TransportError } from "../Errors.ts"
import { makeEngine, SUSPENDED } from "./engine/index.ts"
import { engineSpec } from "./pipeline.ts"
import { Paused, SessionIo } from "./io.ts"
import type { TaskPool } from "./pool.ts"
import { Deadlines, type Limits, type Sweeper, type Swept } from "./sweeper.ts"

/**
 * The phases of a session, in order; a session only ever moves forward.
 *
 * | phase       | event                                                   | next        |
 * | ----------- | ------------------------------------------------------- | ----------- |
 * | `Opening`   | `onOpen` succeeded (what the peer sent meanwhile is handled) | `Open`  |
 * | `Opening`   | `onOpen` failed, `close`, shutdown, the socket closed   | `LastWords` |
 * | `Open`      | the peer's FIN (the messages read are answered first)   | `Finishing` |
 * | `Open`      | `close` from outside a handler, or a graceful shutdown  | `Finishing` |
 * | `Open`      | a handler closed after its reply, or the engine failed  | `LastWords` |
 * | `Open`      | a time-out, the socket closed (handlers are interrupted) | `LastWords` |
 * | `Finishing` | every message read is answered                          | `LastWords` |
 * | `Finishing` | a time-out, the socket closed                           | `LastWords` |
 * | `LastWords` | `onError` (if it failed) is done; sends are flushed     | `Closing`   |
 * | `Closing`   | FIN sent; the socket closed (or `closeTimeout`: dropped) | `Closed`   |
 * | any         | `abort`: the socket is dropped at once                  | `LastWords` |
 *
 * `Closed`: `onClose` has run, the scope is closed, the server no longer counts the session.
 */
export const Phase = {
  Opening: 0,
  Open: 1,
  Finishing: 2,
  LastWords: 3,
  Closing: 4,
  Closed: 5
} as const

export type Phase = typeof Phase[keyof typeof Phase]

/**
 * What every session of one server or client shares: held by reference, so that a session costs
 * its own state and nothing per hook.
 */
export interface Shared<In, Out, E, R, S, HE, HR> {
  readonly pipeline: Pipeline.Pipeline<In, Out, E, R, Session.Session<Out, S>>
  readonly hooks: Session.Hooks<Out, S, E, HE, HR>
  readonly limits: Limits
  readonly sweeper: Sweeper
  readonly prefix: string
  readonly pool: TaskPool | undefined
  /** Runs handlers, hooks and the close of each session. */
  readonly context: Context.Context<R | HR>
  /** The session exists (before `onOpen`). */
  readonly onStart?: ((session: Handle<Out, S>) => void) | undefined
  /** `onOpen` succeeded: the pipeline handles what the peer sends. */
  readonly onOpened?: ((session: Handle<Out, S>) => void) | undefined
  /** Its reason is final: it finishes, then closes. */
  readonly onFinish?: ((session: Handle<Out, S>) => void) | undefined
  /** Everything is closed and every hook has run. */
  readonly onDone?: ((session: Handle<Out, S>, reason: Session.CloseReason) => void) | undefined
}

/** What a server or a client holds of a session. */
export interface Handle<Out, S> extends Session.Session<Out, S | undefined> {
  /** Why it ended, once it has. */
  readonly reason: Session.CloseReason | undefined
  /** Ends it gracefully, as a server's shutdown does: reading stops, what was read is answered. */
  shutdown(): void
  /** Drops the connection at once; the hooks still run. */
  abort(): void
  /** Encodes and queues a message now, outside any message (a client's request): the failure, if any. */
  sendNow(message: Out): SendError | undefined
}

/** One connection at run time: the connection's handler, its engine's host, and its lifecycle. */
export class SessionImpl<In, Out, E, R, S, HE, HR> extends SessionIo implements Handle<Out, S>, Swept {
  state: S | undefined = undefined
  phase: Phase = Phase.Opening
  reason: Session.CloseReason | undefined = undefined
  scope: Scope.Closeable | undefined = undefined
  /** `onOpen` while it runs. */
  private opening: Fiber.Fiber<unknown, unknown> | undefined = undefined
  /** Resumes the close's wait for the socket to close. */
  private closedWaiter: (() => void) | undefined = undefined
  private readonly runFork: <A, X>(effect: Effect.Effect<A, X, R | HR>) => Fiber.Fiber<A, X>

  constructor(connection: Transport.Connection, readonly shared: Shared<In, Out, E, R, S, HE, HR>) {
    const pipeline = shared.pipeline
    super(
      connection,
      shared.limits,
      shared.context as Context.Context<unknown>,
      shared.pool,
      shared.prefix,
      (host) => makeEngine(engineSpec(pipeline), host)
    )
    this.runFork = Effect.runForkWith(shared.context)
  }

  // --- the session, as handlers and hooks see it -----------------------------------------------------

  get isOpen(): boolean {
    return this.phase <= Phase.Open
  }

  send(message: Out): Effect.Effect<void, SendError> {
    return this.engine.send(message, false)
  }

  sendWait(message: Out): Effect.Effect<void, SendError> {
    return this.engine.send(message, true)
  }

  get close(): Effect.Effect<void> {
    return this.engine.close
  }

  sendNow(message: Out): SendError | undefined {
    return this.engine.sendNow(message)
  }

  canWrite(): boolean {
    return !this.socketClosed && this.phase < Phase.Closing
  }

  protected get reading(): boolean {
    return this.phase <= Phase.Open
  }

  // --- opening ---------------------------------------------------------------------------------------

  /** Starts the connection (what the peer sends waits), then `onOpen`, then the pipeline. */
  begin(): void {
    const shared = this.shared
    const context = shared.context as Context.Context<never>
    Metrics.connectionsTotal.updateUnsafe(1, context)
    Metrics.connectionsOpen.modifyUnsafe(1, context)
    shared.onStart?.(this)
    const hooks = shared.hooks
    if (hooks.onCron !== undefined || hooks.onOpen !== undefined) this.scope = Scope.makeUnsafe()
    const onOpen = hooks.onOpen
    if (onOpen === undefined) {
      // Nothing to wait for: open before the first read.
      this.paused = 0
      this.opened(undefined)
      this.connection.start(this)
      return
    }
    // Started at once, so that `onOpen` can send; what the peer sends meanwhile waits.
    this.connection.start(this)
    this.connection.pause()
    // Suspended: a hook that throws instead of failing ends its own session, not the accept callback.
    const fiber = this.runFork(Scope.provide(Effect.suspend(() => onOpen(this)), this.scope!))
    const exit = fiber.pollUnsafe()
    if (exit !== undefined) return this.afterOpen(exit)
    this.opening = fiber
    fiber.addObserver((exit) => {
      this.opening = undefined
      this.afterOpen(exit)
    })
  }

  private afterOpen(exit: Exit.Exit<S, HE>): void {
    if (this.phase !== Phase.Opening) return // closed or shut down while opening
    if (Exit.isFailure(exit)) this.failCause(exit.cause)
    else this.opened(exit.value)
  }

  private opened(state: S | undefined): void {
    if (this.phase !== Phase.Opening) return
    this.state = state
    this.phase = Phase.Open
    const shared = this.shared
    shared.sweeper.track(this)
    shared.onOpened?.(this)
    const cron = shared.hooks.onCron
    if (cron !== undefined) {
      // In the session's scope: closing it stops the schedule; the schedule's end stops it too.
      const tick = Effect.catchCause(
        Effect.suspend(() => cron.run(this as Session.Session<Out, S>)),
        (cause) => Effect.sync(() => this.failCause(cause))
      )
      this.runFork(Effect.forkIn(Effect.schedule(tick, cron.schedule), this.scope!))
    }
    // What `onOpen` sent goes out before anything the peer sent meanwhile is answered.
    this.engine.flushSends()
    this.unpause(Paused.Opening)
  }

  // --- events ----------------------------------------------------------------------------------------

  /** The engine stopped: a close after a reply, or an error no recovery answered. */
  protected engineStopped(): void {
    if (this.phase > Phase.Finishing) return
    const engine = this.engine
    if (engine.defect !== undefined) this.die(engine.defect)
    else if (engine.stopped === "failed") this.finish({ _tag: "Failed", error: engine.error })
    else this.finish(this.reason ?? { _tag: "Closed" })
  }

  /** The engine has nothing running: a session that finishes can say its last words. */
  protected engineIdle(): void {
    if (this.phase === Phase.Finishing) this.lastWordsWhenIdle()
  }

  protected peerEnded(): void {
    if (this.phase !== Phase.Open) return
    this.reason = { _tag: "PeerClosed" }
    this.toFinishing()
    const step = this.engine.finishInput()
    if (step === SUSPENDED) return // `engineIdle` or `engineStopped` follows
    if (step.length > 0) this.write(step)
    if (this.engine.stopped !== undefined) this.engineStopped()
    else this.lastWordsWhenIdle()
  }

  protected socketGone(error: TransportError | undefined): void {
    const waiter = this.closedWaiter
    this.closedWaiter = undefined
    waiter?.()
    if (this.phase >= Phase.LastWords) return
    this.finish(error !== undefined ? { _tag: "Failed", error } : this.reason ?? { _tag: "PeerClosed" })
  }

  /**
   * `close` from outside a handler ends the session now: handlers still running are interrupted,
   * what is queued is flushed, then FIN. A shutdown is graceful: reading stops, the messages read are
   * answered, then the last words.
   */
  requestClose(reason: { readonly _tag: "Closed" | "Shutdown" }): void {
    if (reason._tag === "Closed" || this.phase === Phase.Opening) return this.finish(reason)
    if (this.phase !== Phase.Open) return
    this.reason = reason
    this.toFinishing()
    this.lastWordsWhenIdle()
  }

  shutdown(): void {
    this.requestClose({ _tag: "Shutdown" })
  }

  abort(): void {
    this.finish(this.reason ?? { _tag: "Closed" })
    this.connection.destroy()
  }

  /** An error ends the session (a hook, a time-out). */
  fail(error: unknown): void {
    this.finish({ _tag: "Failed", error })
  }

  /** A hook's cause ends the session: its typed error as `Failed`, anything else as `Defect`. */
  failCause(cause: Cause.Cause<unknown>): void {
    const error = Cause.findErrorOption(cause)
    if (Option.isSome(error)) this.fail(error.value)
    else this.die(Cause.squash(cause))
  }

  /** A bug (a hook that throws or dies, a framer that breaks its contract) ends the session. */
  die(defect: unknown): void {
    this.finish({ _tag: "Defect", defect })
  }

  private toFinishing(): void {
    this.phase = Phase.Finishing
    this.pause(Paused.Finishing)
    this.dropBacklog()
    this.shared.onFinish?.(this)
  }

  private lastWordsWhenIdle(): void {
    if ((this.paused & Paused.Handler) !== 0 || this.engine.inFlight > 0) return
    this.finish(this.reason ?? { _tag: "Closed" })
  }

  /**
   * The reason is final: the session says its last words and closes, in one fiber. An error the
   * engine did not stop for (a time-out, the socket) interrupts the handlers still running.
   */
  private finish(reason: Session.CloseReason): void {
    if (this.phase >= Phase.LastWords) return
    if (reason._tag === "Failed" || reason._tag === "Defect" || this.reason === undefined) this.reason = reason
    if (this.phase < Phase.Finishing) this.shared.onFinish?.(this)
    this.phase = Phase.LastWords
    this.pause(Paused.Finishing)
    this.dropBacklog()
    const shared = this.shared
    shared.sweeper.untrack(this)
    const context = shared.context as Context.Context<never>
    this.report(context)
    Metrics.sessionsEnded.updateUnsafe(reasonLabel(this.reason), context)
    this.runFork(Effect.uninterruptible(this.closing())).addObserver(() => {
      this.phase = Phase.Closed
      Metrics.connectionsOpen.modifyUnsafe(-1, context)
      shared.onDone?.(this, this.reason!)
    })
  }

  /** Last words, FIN, the socket's close, `onClose`, the scope. */
  private closing(): Effect.Effect<void, never, R | HR> {
    const hooks = this.shared.hooks
    const reason = this.reason!
    const session = this as Session.Session<Out, S | undefined>
    const closeMillis = this.limits.closeMillis
    return Effect.gen({ self: this }, function* () {
      if (this.opening !== undefined) yield* Effect.interruptible(interruptFiber(this.opening))
      yield* this.engine.interrupt()
      if (reason._tag === "Failed") {
        const error = reason.error
        if (hooks.onError !== undefined) {
          const onError = hooks.onError
          // Last words: it may still send; bounded by `closeTimeout`.
          yield* Effect.interruptible(
            Effect.catchCause(Effect.suspend(() => onError(session, error as E)), Effect.logWarning)
          ).pipe(Effect.timeoutOrElse({ duration: closeMillis, orElse: () => Effect.void }))
        } else {
          yield* Effect.logDebug(`session ${this.id} ended: ${error instanceof Error ? error.message : String(error)}`)
        }
      } else if (reason._tag === "Defect") {
        // Not an error the pipeline declared: `onError` is not told; the log is.
        yield* Effect.logError(`session ${this.id} ended by a defect`, Cause.die(reason.defect))
      }
      this.engine.flushSends()
      this.phase = Phase.Closing
      yield* this.closeConnection()
      const onClose = hooks.onClose
      // Suspended, like every hook: one that throws is logged, and the scope still closes.
      if (onClose !== undefined) {
        yield* Effect.catchCause(Effect.suspend(() => onClose(session, reason)), Effect.logWarning)
      }
      if (this.scope !== undefined) yield* Scope.close(this.scope, Exit.void)
    })
  }

  /** FIN once every queued byte is written, then wait for the socket to close, up to `closeTimeout`. */
  private closeConnection(): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (this.socketClosed) return Effect.void
      // Read and drop what the peer still sends: a paused socket would never see the peer close, and
      // closing with unread bytes resets the connection (the peer may then lose our last replies).
      this.paused = 0
      this.connection.resume()
      this.connection.end()
      const closed = Effect.callback<void>((resume) => {
        if (this.socketClosed) return resume(Effect.void)
        this.closedWaiter = () => resume(Effect.void)
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

  /** A frame's deadline passed: the pipeline's last reply (HTTP 408), then the session ends. */
  private frameTimedOut(received: number, offset: number): void {
    const error = new FrameTimeout({
      framer: this.engine.framer.name,
      timeoutMillis: this.limits.frameMillis,
      received,
      offset
    })
    const step = this.engine.abortFrame(error)
    if (step === SUSPENDED) return // the last reply runs in a fiber; the engine stops after it
    if (step.length > 0) this.write(step)
    if (this.engine.stopped !== undefined) this.engineStopped()
  }

  // --- deadlines, checked by the sweeper -------------------------------------------------------------

  private readonly deadlines = new Deadlines()

  sweep(now: number, context: Context.Context<never>): void {
    this.report(context)
    if (this.phase > Phase.Finishing) return
    const limits = this.limits
    this.engine.sweep(now, limits.handlerMillis)
    const decoder = this.engine.decoder
    const queued = this.connection.queuedBytes
    switch (this.deadlines.check(this, now, decoder, queued)) {
      case "idle":
        return this.fail(
          new IdleTimeout({ sessionId: this.id, remoteAddress: this.remote, timeoutMillis: limits.readIdleMillis })
        )
      case "frame":
        return this.frameTimedOut(decoder.buffered, decoder.consumed)
      case "write":
        return this.fail(
          new WriteTimeout({
            sessionId: this.id,
            remoteAddress: this.remote,
            timeoutMillis: limits.writeMillis,
            queuedBytes: queued
          })
        )
    }
  }
}

const interruptFiber = (fiber: Fiber.Fiber<unknown, unknown>): Effect.Effect<void> =>
  Effect.callback<void>((resume) => {
    fiber.interruptUnsafe()
    fiber.addObserver(() => resume(Effect.void))
  })

const reasonLabel = (reason: Session.CloseReason): string => {
  if (reason._tag !== "Failed") return reason._tag
  const error = reason.error
  return typeof error === "object" && error !== null && typeof (error as { _tag?: unknown })._tag === "string"
    ? (error as { _tag: string })._tag
    : "Defect"
}

/** Starts one connection's session; the session is the connection's handler from then on. */
export const start = <In, Out, E, R, S, HE, HR>(
  connection: Transport.Connection,
  shared: Shared<In, Out, E, R, S, HE, HR>
): Handle<Out, S> => {
  const session = new SessionImpl(connection, shared)
  session.begin()
  return session
}

/**
 * Runs one connection to its end and says why it ended. Interrupted, it aborts the session and
 * waits for its close.
 */
export const run = <In, Out, E, R, S, HE, HR>(
  connection: Transport.Connection,
  options: Omit<Shared<In, Out, E, R, S, HE, HR>, "context" | "onDone">
): Effect.Effect<Session.CloseReason, never, R | HR> =>
  Effect.flatMap(
    Effect.context<R | HR>(),
    (context) =>
      Effect.callback<Session.CloseReason>((resume) => {
        let closed: Session.CloseReason | undefined
        let waiter: (() => void) | undefined
        const session = start(connection, {
          ...options,
          context,
          onDone: (_, reason) => {
            closed = reason
            resume(Effect.succeed(reason))
            waiter?.()
          }
        })
        return Effect.callback<void>((resumeInterrupt) => {
          session.abort()
          if (closed !== undefined) resumeInterrupt(Effect.void)
          else waiter = () => resumeInterrupt(Effect.void)
        })
      })
  )
