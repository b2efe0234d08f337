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
import * as lifecycle from "./internal/lifecycle.ts"
import { TaskPool } from "./internal/pool.ts"
import { limitsOf, Sweeper } from "./internal/sweeper.ts"
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
  /** Sessions open now (from their accept: their state is `undefined` until `onOpen` is done). */
  readonly sessions: ReadonlySet<Session.Session<Out, S | undefined>>
  /** The task pool's handlers running now and at most, when `taskPool` is set. */
  readonly taskPool: { readonly running: number; readonly peak: number } | undefined
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
  /** The protocol. Its handlers see each message's `Session.Session`. */
  readonly pipeline: Pipeline.Pipeline<In, Out, E, R, Session.Session<Out, S>>
  /** The transport; default the one of the current runtime (`Transport.current`). */
  readonly transport?: Transport.Transport | undefined
  /** Open sessions at most; default 10 000. */
  readonly maxConnections?: number | undefined
  /** How long a graceful shutdown may take before sessions are closed at once; default 10 s. */
  readonly shutdownTimeout?: Duration.Input | undefined
  /** Prefix of session ids; default `"s"`. */
  readonly name?: string | undefined
  /**
   * A task pool for the whole server (getty's `taskPool`): at most this many handlers that run in a
   * fiber (handlers that suspend) at once, across all connections. A handler that answers without a
   * fiber needs no slot. A connection whose message waits for a slot stops reading until it gets
   * one. Beware of handlers that wait for another connection of the same server: with every slot
   * taken by such handlers, nothing frees one (a deadlock). Default: no pool.
   */
  readonly taskPool?: number | undefined
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
    const limits = limitsOf(options)
    const sweeper = new Sweeper(limits)
    const sessions = new Set<lifecycle.Handle<Out, S>>()
    const pool = options.taskPool === undefined ? undefined : new TaskPool(options.taskPool)
    const maxConnections = options.maxConnections ?? 10_000
    const shutdownMillis = Duration.toMillis(Duration.fromInputUnsafe(options.shutdownTimeout ?? Duration.seconds(10)))
    let open = 0
    let accepted = 0
    let rejected = 0
    let closing = false
    /** Done when the last session has closed, once the server is stopping. */
    let allClosed: Deferred.Deferred<void> | undefined
    const context = yield* Effect.context<R | HR>()
    const shared: lifecycle.Shared<In, Out, E, R, S, HE, HR> = {
      pipeline: options.pipeline,
      hooks: options,
      limits,
      sweeper,
      prefix: options.name ?? "s",
      pool,
      context,
      onStart: (session) => {
        sessions.add(session)
      },
      onDone: (session) => {
        open--
        sessions.delete(session)
        if (open === 0 && allClosed !== undefined) Deferred.doneUnsafe(allClosed, Exit.void)
      }
    }

    // Added before listening, so that it runs after the listener has stopped accepting.
    yield* Effect.addFinalizer(() =>
      Effect.gen(function* () {
        closing = true
        if (open === 0) return
        const closed = allClosed = Deferred.makeUnsafe<void>()
        for (const session of [...sessions]) session.shutdown()
        // Finalizers are uninterruptible: the wait must not be, or the time-out could not end it.
        const finished = yield* Effect.interruptible(Deferred.await(closed)).pipe(
          Effect.timeout(shutdownMillis),
          Effect.option
        )
        if (finished._tag === "Some") return
        for (const session of [...sessions]) session.abort()
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
        Metrics.connectionsRejected.updateUnsafe(1, context as Context.Context<never>)
        connection.destroy()
        Effect.runForkWith(context)(
          Effect.logWarning(
            `connection from ${Transport.formatAddress(connection.remoteAddress)} closed: ` +
              `maxConnections (${maxConnections}) reached; ${rejected} rejected so far`
          )
        )
        return
      }
      open++
      lifecycle.start(connection, shared)
    }

    const listener = yield* transport.listen(options, onConnection)
    const address = listener.address
    return {
      address,
      port: address._tag === "Tcp" ? address.port : 0,
      sessions,
      taskPool: pool,
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
