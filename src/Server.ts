/**
 * A server listens on a transport and runs a session per accepted connection.
 *
 * - `maxConnections`: a connection over the limit is accepted and closed at once, counted in
 *   `rejected` and logged; the server keeps serving.
 * - A failure or defect in one connection's handler ends that connection only.
 * - Closing the server's scope shuts it down gracefully: it stops accepting, every session stops
 *   reading, handlers already running finish and their replies are flushed, then the sockets close.
 *   Sessions still busy after `shutdownTimeout` are closed at once.
 *
 * @example
 * ```ts
 * import { Frame, Handler, Packet, Pipeline, Server } from "sluice"
 * import { Effect } from "effect"
 *
 * const echo = Pipeline.make({
 *   framer: Frame.lengthField(),
 *   codec: Packet.bytes,
 *   handler: Handler.sync((bytes: Uint8Array) => bytes)
 * })
 *
 * const program = Effect.gen(function*() {
 *   const server = yield* Server.serve({ pipeline: echo, port: 7000 })
 *   yield* Effect.log(`listening on ${server.address._tag === "Tcp" ? server.address.port : ""}`)
 *   yield* Effect.never
 * })
 * Effect.runFork(Effect.scoped(program))
 * ```
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Deferred from "effect/Deferred"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type { TransportError } from "./Errors.ts"
import * as internal from "./internal/session.ts"
import * as workersInternal from "./internal/workers.ts"
import * as Metrics from "./Metrics.ts"
import type * as Pipeline from "./Pipeline.ts"
import type * as Session from "./Session.ts"
import * as Transport from "./Transport.ts"

/**
 * A running server.
 *
 * @since 0.1.0
 * @category models
 */
export interface Server<Out = unknown, S = unknown> {
  /** Where it listens: with port 0, the port that was bound. */
  readonly address: Transport.Address
  /** The port it listens on (0 for a Unix socket). */
  readonly port: number
  /** Sessions open now. */
  readonly sessions: ReadonlySet<Session.Session<Out, S>>
  /** Connections accepted since start (rejected ones included). */
  readonly accepted: number
  /** Connections closed at once because `maxConnections` were open. */
  readonly rejected: number
}

/**
 * The server as a service, for `layer`.
 *
 * @since 0.1.0
 * @category services
 */
export const Server: Context.Service<Server, Server> = Context.Service<Server>("sluice/Server")

/**
 * Options of `serve`: where to listen, the pipeline, the session hooks and limits.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<In, Out, E, R, S, HE, HR>
  extends Session.Options, Session.Hooks<Out, S, E, HE, HR>, Transport.ListenOptions {
  /** The protocol: one pipeline for all sessions, or one built per session. */
  readonly pipeline:
    | Pipeline.Pipeline<In, Out, E, R>
    | ((session: Session.Session<Out, S>) => Pipeline.Pipeline<In, Out, E, R>)
  /** The transport; default the one of the current runtime (`Transport.current`). */
  readonly transport?: Transport.Transport | undefined
  /** Open sessions at most; default 10 000. */
  readonly maxConnections?: number | undefined
  /** How long a graceful shutdown may take before sessions are closed at once; default 10 s. */
  readonly shutdownTimeout?: Duration.Input | undefined
  /** Prefix of session ids; default `"s"`. */
  readonly name?: string | undefined
}

/**
 * Listens and serves until the scope closes, then shuts down gracefully.
 *
 * @since 0.1.0
 * @category constructors
 */
export const serve = <In, Out, E, R, S = void, HE = never, HR = never>(
  options: Options<In, Out, E, R, S, HE, HR>
): Effect.Effect<Server<Out, S>, TransportError, R | HR | Scope.Scope> =>
  Effect.gen(function* () {
    const transport = options.transport ?? (yield* Transport.current)
    const limits = internal.limitsOf(options)
    const sweeper = new internal.Sweeper(limits)
    const sessions = new Set<Session.Session<Out, S>>()
    const maxConnections = options.maxConnections ?? 10_000
    const shutdownMillis = Duration.toMillis(Duration.fromInputUnsafe(options.shutdownTimeout ?? Duration.seconds(10)))
    let open = 0
    let accepted = 0
    let rejected = 0
    let closing = false
    /** Done when the last session has closed, once the server is stopping. */
    let allClosed: Deferred.Deferred<void> | undefined
    const shared = internal.shared({
      pipeline: options.pipeline,
      hooks: options,
      limits,
      sweeper,
      prefix: options.name ?? "s",
      context: yield* Effect.context<R | HR>(),
      onStart: (session) => {
        sessions.add(session)
      },
      onDone: (session) => {
        open--
        sessions.delete(session)
        if (open === 0 && allClosed !== undefined) Deferred.doneUnsafe(allClosed, Exit.void)
      }
    })

    // Added before listening, so that it runs after the listener has stopped accepting.
    yield* Effect.addFinalizer(() =>
      Effect.gen(function* () {
        closing = true
        if (open === 0) return
        const closed = allClosed = Deferred.makeUnsafe<void>()
        for (const session of sessions) (session as internal.SessionImpl<Out, S>).end({ _tag: "Shutdown" })
        // Finalizers are uninterruptible: the wait must not be, or the time-out could not end it.
        const finished = yield* Effect.interruptible(Deferred.await(closed)).pipe(
          Effect.timeout(shutdownMillis),
          Effect.option
        )
        if (finished._tag === "Some") return
        for (const session of sessions) internal.abort(session as internal.SessionImpl<unknown, unknown>)
        yield* Deferred.await(closed)
      })
    )
    yield* Effect.forkScoped(sweeper.run)

    const onConnection = (connection: Transport.Connection): void => {
      accepted++
      if (closing) {
        connection.destroy()
        return
      }
      if (open >= maxConnections) {
        rejected++
        Metrics.connectionsRejected.updateUnsafe(1, shared.context as Context.Context<never>)
        connection.destroy()
        shared.runFork(
          Effect.logWarning(
            `connection from ${Transport.formatAddress(connection.remoteAddress)} closed: ` +
              `maxConnections (${maxConnections}) reached; ${rejected} rejected so far`
          )
        )
        return
      }
      open++
      internal.start(connection, shared)
    }

    const listener = yield* transport.listen(options, onConnection)
    const address = listener.address
    return {
      address,
      port: address._tag === "Tcp" ? address.port : 0,
      sessions,
      get accepted() {
        return accepted
      },
      get rejected() {
        return rejected
      }
    }
  })

/**
 * `serve` as a Layer: the server runs while the layer is in use.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <In, Out, E, R, S = void, HE = never, HR = never>(
  options: Options<In, Out, E, R, S, HE, HR>
): Layer.Layer<Server, TransportError, R | HR> =>
  Layer.effect(Server, serve(options) as Effect.Effect<Server, TransportError, R | HR | Scope.Scope>)

/**
 * One worker per core. In the primary process, starts `count` workers (default: one per core)
 * running this same program, waits for them, and stops them when interrupted. In a worker, runs
 * `program`, which should `serve` with `reusePort: true`: every worker binds the same port
 * (`SO_REUSEPORT`, Node 24's `reusePort` on Node; Deno needs `--unstable-net`, which the primary
 * passes to its workers) and the kernel spreads the connections.
 *
 * @example
 * ```ts
 * import { Server } from "sluice"
 * import { Effect } from "effect"
 * declare const pipeline: import("sluice").Pipeline.Pipeline<Uint8Array, Uint8Array>
 *
 * const serveOne = Effect.scoped(Effect.andThen(Server.serve({ pipeline, port: 7000, reusePort: true }), Effect.never))
 * Effect.runFork(Server.workers(serveOne))
 * ```
 *
 * @since 0.1.0
 * @category multi-core
 */
export const workers = <E, R>(
  program: Effect.Effect<void, E, R>,
  options?: { readonly count?: number | undefined }
): Effect.Effect<void, E, R> =>
  Effect.suspend(() =>
    workersInternal.workerId() > 0 ? program : workersInternal.primary(options?.count ?? workersInternal.defaultCount())
  )

/**
 * This process's worker number (1-based) under `workers`, or 0 in the primary or without workers.
 *
 * @since 0.1.0
 * @category multi-core
 */
export const workerId = (): number => workersInternal.workerId()
