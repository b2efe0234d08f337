/**
 * A client connects to a server and sends requests over one connection, correlating replies with
 * requests: in order (`"fifo"`, for protocols without ids such as RESP or HTTP/1.1 pipelining), or
 * by an id carried in each message, so that many calls can be in flight and answered in any order.
 *
 * A message that answers no request is a server push: with FIFO correlation, `isPush` tells such
 * messages apart (a chat line from another user is not the reply to the oldest request), and
 * `onPush` receives them.
 *
 * When the connection drops, calls in flight fail with `ConnectionClosed`, whose `cause` says why
 * (the decode error, the peer's close, the time-out); with a `reconnect` schedule the client
 * connects again and later calls wait for it (up to `connectTimeout`).
 *
 * @example
 * ```ts
 * import { Client, Frame, Packet } from "sluice"
 * import { Effect, Schema } from "effect"
 *
 * const Msg = Schema.Struct({ id: Schema.Number, body: Schema.String })
 * const program = Effect.gen(function*() {
 *   const client = yield* Client.make({
 *     port: 7000,
 *     framer: Frame.lengthField(),
 *     codec: Packet.schema(Msg, "msgpack"),
 *     correlate: { request: (m) => m.id, response: (m) => m.id }
 *   })
 *   const reply = yield* client.request({ id: 1, body: "hello" })
 * })
 * ```
 *
 * @since 0.1.0
 */
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import type * as Codec from "./Codec.ts"
import { ConnectionClosed, ConnectTimeout, DuplicateRequestId, RequestTimeout, type TransportError } from "./Errors.ts"
import type * as Frame from "./Frame.ts"
import * as Handler from "./Handler.ts"
import { closedFor, connect as connectWithin, dial, stoppedFor, withinConnectTimeout } from "./internal/dial.ts"
import * as lifecycle from "./internal/lifecycle.ts"
import { limitsOf, Sweeper } from "./internal/sweeper.ts"
import * as Pipeline from "./Pipeline.ts"
import type * as Session from "./Session.ts"
import * as Transport from "./Transport.ts"

/**
 * What a request can fail with.
 *
 * @since 0.1.0
 * @category errors
 */
export type RequestError = Session.SendError | ConnectionClosed | RequestTimeout | ConnectTimeout | DuplicateRequestId

/**
 * A connected client.
 *
 * @since 0.1.0
 * @category models
 */
export interface Client<in Req, out Res> {
  /** Sends a request and waits for its reply. */
  request(request: Req, options?: { readonly timeout?: Duration.Input | undefined }): Effect.Effect<
    Res,
    RequestError
  >
  /** Sends a message that expects no reply. */
  send(message: Req): Effect.Effect<void, Session.SendError | ConnectTimeout | ConnectionClosed>
  /** Whether a connection is up now. */
  readonly connected: boolean
  /** Requests waiting for their reply. */
  readonly inFlight: number
}

/**
 * Options of `make`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<Req, Res, DE, EE> extends Transport.ConnectOptions, Session.Options {
  readonly framer: Frame.Framer
  /** Decodes replies, encodes requests. */
  readonly codec: Codec.Codec<Uint8Array, Res, Req, DE, EE>
  /**
   * How replies find their request: `"fifo"` (the default: replies come in request order) or the
   * id each message carries. Two calls in flight with the same id: the second fails with
   * `DuplicateRequestId`.
   */
  readonly correlate?:
    | "fifo"
    | { readonly request: (request: Req) => unknown; readonly response: (response: Res) => unknown }
    | undefined
  /**
   * Which messages are server pushes rather than replies (RESP3 push frames, pub/sub messages, a
   * chat line from another user): they go to `onPush` and never complete a call. Default: with
   * `"fifo"`, every message is a reply while a call waits; by id, a message whose id no call has.
   */
  readonly isPush?: ((message: Res) => boolean) | undefined
  /** Messages that answer no request (server push). Default: logged and dropped. */
  readonly onPush?: ((message: Res) => Effect.Effect<void>) | undefined
  /**
   * Called once for each connection that was up and has ended (the peer closed it, a time-out, a
   * reply that failed to decode...), with the `ConnectionClosed` that the calls in flight failed
   * with, after they failed and before any reconnect. Not called when the client itself stops (its
   * scope closes). A subscriber that only listens learns here that its connection is gone.
   */
  readonly onDisconnect?: ((error: ConnectionClosed) => Effect.Effect<void>) | undefined
  readonly transport?: Transport.Transport | undefined
  /** Default 10 s. */
  readonly connectTimeout?: Duration.Input | undefined
  /** Default 30 s; each call may set its own. */
  readonly requestTimeout?: Duration.Input | undefined
  /**
   * When a connection that was up drops, connect again on this schedule (e.g.
   * `Schedule.exponential("100 millis")`). Default: no reconnect.
   */
  // deno-lint-ignore no-explicit-any
  readonly reconnect?: Schedule.Schedule<any, unknown> | undefined
}

interface Call<Res> {
  resume: (result: Effect.Effect<Res, RequestError>) => void
  timer: ReturnType<typeof setTimeout> | undefined
}

const settle = <Res>(call: Call<Res>, result: Effect.Effect<Res, RequestError>): void => {
  if (call.timer !== undefined) clearTimeout(call.timer)
  const resume = call.resume
  call.resume = ignore
  resume(result)
}

const ignore = (): void => {}

/**
 * Connects (failing if the first attempt fails) and keeps the connection until the scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <Req, Res, DE, EE>(
  options: Options<Req, Res, DE, EE>
): Effect.Effect<Client<Req, Res>, TransportError | ConnectTimeout, Scope.Scope> =>
  Effect.gen(function* () {
    const transport = options.transport ?? (yield* Transport.current)
    const limits = limitsOf(options)
    const sweeper = new Sweeper(limits)
    yield* Effect.forkScoped(sweeper.run)
    const requestTimeout = options.requestTimeout ?? Duration.seconds(30)
    const where = dial(options)
    const target = where.target
    const correlate = options.correlate ?? "fifo"
    const isPush = options.isPush
    const fifo: Array<Call<Res>> = []
    const byId = new Map<unknown, Call<Res>>()
    let current: lifecycle.Handle<Req, void> | undefined
    let ready = Deferred.makeUnsafe<void>()
    let closed = false
    /** The client is stopping (its scope is closing). */
    let stopping = false

    const push = (message: Res): void => {
      if (options.onPush !== undefined) Effect.runFork(options.onPush(message))
      else Effect.runFork(Effect.logDebug(`${target}: a message that answers no request was dropped`))
    }
    const onMessage = (message: Res): Array<never> => {
      if (isPush !== undefined && isPush(message)) {
        push(message)
        return []
      }
      const call = correlate === "fifo" ? fifo.shift() : takeById(correlate.response(message))
      if (call !== undefined) settle(call, Effect.succeed(message))
      else push(message)
      return []
    }
    const takeById = (id: unknown): Call<Res> | undefined => {
      const call = byId.get(id)
      if (call !== undefined) byId.delete(id)
      return call
    }
    const failAll = (error: ConnectionClosed) => {
      const failed = Effect.fail(error)
      // Forget every call before settling any: a caller resumes synchronously, and must see none in flight.
      const calls = [...fifo.splice(0), ...byId.values()]
      byId.clear()
      for (const call of calls) settle(call, failed)
      return error
    }

    const pipeline = Pipeline.make({
      framer: options.framer,
      codec: options.codec,
      handler: Handler.syncMany(onMessage)
    })

    const connect = connectWithin(transport, options, where)

    /** Runs one connection to its end. */
    const runConnection = (connection: Transport.Connection) =>
      lifecycle.run<Res, Req, unknown, never, void, never, never>(connection, {
        pipeline,
        hooks: {},
        limits,
        sweeper,
        prefix: "c",
        pool: undefined,
        onOpened: (session) => {
          current = session
          Deferred.doneUnsafe(ready, Exit.void)
        },
        // As soon as the session finishes, not once its socket has closed (up to `closeTimeout` later):
        // until then `session()` would find it closed and `ready` already done, and spin.
        onFinish: (session) => dropped(session)
      }).pipe(
        Effect.ensuring(Effect.sync(() => {
          if (current !== undefined) dropped(current)
          failAll(closedFor(where, undefined))
        }))
      )

    /** The connection of `session` is gone: calls in flight fail, later calls wait for the next one. */
    const dropped = (session: lifecycle.Handle<Req, void>): void => {
      if (current !== session) return
      current = undefined
      // Without `reconnect` the client stops with its connection.
      if (options.reconnect === undefined) closed = true
      else ready = Deferred.makeUnsafe<void>()
      const error = failAll(closedFor(where, session.reason))
      if (options.onDisconnect !== undefined && !stopping) Effect.runFork(options.onDisconnect(error))
    }

    const first = yield* connect
    const reconnect = options.reconnect
    const loop = reconnect === undefined ? runConnection(first) : runConnection(first).pipe(
      Effect.andThen(
        Effect.flatMap(connect, runConnection).pipe(
          Effect.result,
          Effect.repeat(Schedule.passthrough(reconnect))
        )
      )
    )
    const loopFiber = yield* Effect.forkScoped(
      Effect.ensuring(
        loop,
        Effect.sync(() => {
          closed = true
          // Calls waiting for a connection find the client stopped.
          Deferred.doneUnsafe(ready, Exit.void)
          failAll(stoppedFor(where))
        })
      )
    )
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        // The client stops: the end of its connection is no disconnection to report.
        stopping = true
        return Fiber.interrupt(loopFiber)
      })
    )
    // Wait for the first session to open.
    yield* Deferred.await(ready)

    const session = (): Effect.Effect<lifecycle.Handle<Req, void>, ConnectTimeout | ConnectionClosed> => {
      const now = current
      if (now !== undefined && now.isOpen) return Effect.succeed(now)
      if (closed) return Effect.fail(stoppedFor(where))
      return withinConnectTimeout(where, Deferred.await(ready)).pipe(Effect.flatMap(() => session()))
    }

    const requestTimeoutMillis = Duration.toMillis(Duration.fromInputUnsafe(requestTimeout))
    // One callback per call, no fiber and no Deferred: the reply resumes the caller directly.
    const request = (
      message: Req,
      callOptions?: { readonly timeout?: Duration.Input | undefined }
    ): Effect.Effect<Res, RequestError> =>
      Effect.flatMap(session(), (s) =>
        Effect.callback<Res, RequestError>((resume) => {
          const call: Call<Res> = { resume, timer: undefined }
          const id = correlate === "fifo" ? undefined : correlate.request(message)
          if (correlate === "fifo") fifo.push(call)
          else if (byId.has(id)) {
            resume(Effect.fail(new DuplicateRequestId({ address: target, id })))
            return
          } else byId.set(id, call)
          const refused = s.sendNow(message)
          if (refused !== undefined) {
            forget(call, id)
            if (correlate === "fifo") fifo.splice(fifo.indexOf(call), 1)
            settle(call, Effect.fail(refused))
            return
          }
          const timeoutMillis = callOptions?.timeout === undefined
            ? requestTimeoutMillis
            : Duration.toMillis(Duration.fromInputUnsafe(callOptions.timeout))
          if (Number.isFinite(timeoutMillis)) {
            call.timer = setTimeout(() => {
              forget(call, id)
              settle(call, Effect.fail(new RequestTimeout({ address: target, timeoutMillis })))
            }, timeoutMillis)
          }
          return Effect.sync(() => {
            forget(call, id)
            if (call.timer !== undefined) clearTimeout(call.timer)
            call.resume = ignore
          })
        }))
    // A FIFO call that gave up keeps its place, so that later replies still match; its reply is dropped.
    const forget = (call: Call<Res>, id: unknown) => {
      if (correlate !== "fifo" && byId.get(id) === call) byId.delete(id)
    }

    return {
      request,
      send: (message) =>
        Effect.flatMap(session(), (s) => {
          const refused = s.sendNow(message)
          return refused === undefined ? Effect.void : Effect.fail(refused)
        }),
      get connected() {
        return current !== undefined && current.isOpen
      },
      get inFlight() {
        return fifo.length + byId.size
      }
    }
  })

/**
 * A small pool of connections to the same server; requests go round-robin.
 *
 * @since 0.1.0
 * @category constructors
 */
export const pool = <Req, Res, DE, EE>(
  options: Options<Req, Res, DE, EE> & { readonly size: number }
): Effect.Effect<Client<Req, Res>, TransportError | ConnectTimeout, Scope.Scope> =>
  Effect.gen(function* () {
    const clients = yield* Effect.forEach(Array.from({ length: Math.max(1, options.size) }), () => make(options))
    let next = 0
    const pick = (): Client<Req, Res> => {
      for (let i = 0; i < clients.length; i++) {
        const client = clients[(next + i) % clients.length]!
        if (client.connected) {
          next = (next + i + 1) % clients.length
          return client
        }
      }
      return clients[next++ % clients.length]!
    }
    return {
      request: (message, callOptions) => Effect.suspend(() => pick().request(message, callOptions)),
      send: (message) => Effect.suspend(() => pick().send(message)),
      get connected() {
        return clients.some((c) => c.connected)
      },
      get inFlight() {
        return clients.reduce((n, c) => n + c.inFlight, 0)
      }
    }
  })

/**
 * Sends a request and waits for its reply.
 *
 * @since 0.1.0
 * @category requests
 */
export const request = <Req, Res>(client: Client<Req, Res>, message: Req): Effect.Effect<Res, RequestError> =>
  client.request(message)
