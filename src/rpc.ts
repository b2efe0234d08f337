/**
 * effect/rpc over sluice. A service declared with effect/rpc (`Rpc.make`, `RpcGroup`) is served by
 * effect's own `RpcServer` and called with its own `RpcClient`; this module gives them the `Protocol`
 * they run over: sluice's servers and connections, on Bun's, Deno's or Node's native sockets.
 *
 * - `layerProtocolServer` provides `RpcServer.Protocol` (and sluice's `Server.Server`): a sluice
 *   server whose every connection is one RPC client, with sluice's limits, time-outs, water marks and
 *   graceful shutdown.
 * - `layerProtocolClient` provides `RpcClient.Protocol`: one sluice connection that every `RpcClient`
 *   made with it shares, many calls in flight, with pings and an optional reconnect schedule.
 * - The wire: one effect/rpc message per frame, a 4-byte big-endian length then standard MessagePack
 *   (`layerSerialization` is the same wire as an `RpcSerialization`, for effect's own socket
 *   transports).
 * - `CatchDefects`: an `RpcMiddleware` that answers a handler's defect with a declared, typed
 *   `RpcDefect` error, so that only that call fails.
 *
 * Its own entry point, `sluice/rpc`, because effect/rpc is marked unstable.
 *
 * @since 0.1.0
 */
import type * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as RpcClient from "effect/rpc/RpcClient"
import * as RpcMiddleware from "effect/rpc/RpcMiddleware"
import * as RpcSerialization from "effect/rpc/RpcSerialization"
import * as RpcServer from "effect/rpc/RpcServer"
import type { ConnectTimeout, TransportError } from "./Errors.ts"
import * as client from "./internal/rpc/client.ts"
import * as server from "./internal/rpc/server.ts"
import * as wire from "./internal/rpc/wire.ts"
import * as Server from "./Server.ts"
import type * as Session from "./Session.ts"
import type * as Transport from "./Transport.ts"

/**
 * Options of the server protocol: where to listen (`port`, `host`, `path`, `tls`, `reusePort`), the
 * server's limits, and every session's limits and time-outs (`Session.Options`).
 *
 * @since 0.1.0
 * @category models
 */
export interface ServerOptions extends Session.Options, Transport.ListenOptions {
  /** The transport; default the one of the current runtime (`Transport.current`). */
  readonly transport?: Transport.Transport | undefined
  /** Open connections at most; default 10 000. */
  readonly maxConnections?: number | undefined
  /** How long a graceful shutdown may take before connections are closed at once; default 10 s. */
  readonly shutdownTimeout?: Duration.Input | undefined
  /** Largest message, its 4-byte header included; default 16 MiB (`Frame.defaultMaxFrameLength`). */
  readonly maxFrameLength?: number | undefined
  /** Prefix of session ids; default `"rpc"`. */
  readonly name?: string | undefined
}

/**
 * Options of the client protocol: where to connect (`port`, `host`, `path`, `tls`), and the
 * connection's limits and time-outs (`Session.Options`).
 *
 * @since 0.1.0
 * @category models
 */
export interface ClientOptions extends Session.Options, Transport.ConnectOptions {
  /** The transport; default the one of the current runtime (`Transport.current`). */
  readonly transport?: Transport.Transport | undefined
  /** How long a connect may take; default 10 s. Between connections, a call waits this long for the next one. */
  readonly connectTimeout?: Duration.Input | undefined
  /**
   * When the connection drops, connect again on this schedule (e.g. `Schedule.exponential("100
   * millis")`). Default: no reconnect; calls made after the drop fail with the `RpcClientError`
   * that says why.
   */
  // deno-lint-ignore no-explicit-any
  readonly reconnect?: Schedule.Schedule<any, unknown> | undefined
  /**
   * A `Ping` this often keeps an idle connection alive through the server's `readIdleTimeout`;
   * default 30 s, `Duration.infinity` for none.
   */
  readonly pingInterval?: Duration.Input | undefined
  /** Largest message, its 4-byte header included; default 16 MiB (`Frame.defaultMaxFrameLength`). */
  readonly maxFrameLength?: number | undefined
  /**
   * Server messages delivered at once. A chunk for a stream whose consumer is behind waits for it
   * without holding up the answers to other calls, up to this many; past that, the connection stops
   * reading until one is taken. Default 64.
   */
  readonly deliveryConcurrency?: number | undefined
}

/**
 * Makes effect/rpc's server `Protocol` over a sluice server that listens until the scope closes, and
 * returns it with the running `Server.Server` (its `port` when `port: 0` picked one). Each connection
 * is one RPC client: what it sends goes to `RpcServer` as it is decoded, `RpcServer`'s answers go out
 * in order, and when the connection ends `RpcServer` interrupts its calls still running.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeProtocolServer: (
  options: ServerOptions
) => Effect.Effect<
  { readonly protocol: RpcServer.Protocol["Service"]; readonly server: Server.Server },
  TransportError,
  Scope.Scope
> = server.make

/**
 * `makeProtocolServer` as a Layer: provides `RpcServer.Protocol` for `RpcServer.layer`, and the
 * sluice `Server.Server` (its address and port, its sessions).
 *
 * @example
 * ```ts
 * import { layerProtocolServer } from "sluice/rpc"
 * import { Effect, Layer, Schema } from "effect"
 * import { Rpc, RpcGroup, RpcServer } from "effect/rpc"
 *
 * class Greeter extends RpcGroup.make(
 *   Rpc.make("Greet", { payload: { name: Schema.String }, success: Schema.String })
 * ) {}
 *
 * const handlers = Greeter.toLayer({ Greet: ({ name }) => Effect.succeed(`hello, ${name}`) })
 *
 * const main = RpcServer.layer(Greeter).pipe(
 *   Layer.provide(handlers),
 *   Layer.provide(layerProtocolServer({ port: 7000 }))
 * )
 * Layer.launch(main).pipe(Effect.runFork)
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerProtocolServer = (
  options: ServerOptions
): Layer.Layer<RpcServer.Protocol | Server.Server, TransportError> =>
  Layer.effectContext(
    Effect.map(
      server.make(options),
      ({ protocol, server }) => Context.make(RpcServer.Protocol, protocol).pipe(Context.add(Server.Server, server))
    )
  )

/**
 * Makes effect/rpc's client `Protocol` over one sluice connection, kept until the scope closes.
 * Connects at once, and fails if that first connect fails. When the connection drops, the calls in
 * flight fail with an `RpcClientError` whose reason is a `SocketReadError` (its `cause` a sluice
 * `ConnectionClosed` that says why); with `reconnect`, later calls wait for the next connection.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeProtocolClient: (
  options: ClientOptions
) => Effect.Effect<RpcClient.Protocol["Service"], TransportError | ConnectTimeout, Scope.Scope> = client.make

/**
 * `makeProtocolClient` as a Layer: provides `RpcClient.Protocol` for `RpcClient.make`.
 *
 * @example
 * ```ts
 * import { layerProtocolClient } from "sluice/rpc"
 * import { Effect, Schema } from "effect"
 * import { Rpc, RpcClient, RpcGroup } from "effect/rpc"
 *
 * class Greeter extends RpcGroup.make(
 *   Rpc.make("Greet", { payload: { name: Schema.String }, success: Schema.String })
 * ) {}
 *
 * const program = Effect.gen(function*() {
 *   const client = yield* RpcClient.make(Greeter)
 *   const greeting: string = yield* client.Greet({ name: "sluice" })
 *   yield* Effect.log(greeting)
 * })
 *
 * program.pipe(
 *   Effect.scoped,
 *   Effect.provide(layerProtocolClient({ port: 7000, host: "127.0.0.1" })),
 *   Effect.runFork
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerProtocolClient = (
  options: ClientOptions
): Layer.Layer<RpcClient.Protocol, TransportError | ConnectTimeout> =>
  Layer.effect(RpcClient.Protocol, client.make(options))

/**
 * The same wire as an `RpcSerialization` (framing included: each message a 4-byte big-endian length,
 * then standard MessagePack), for effect/rpc's own socket transports (`RpcServer.layerProtocolSocketServer`,
 * `RpcClient.layerProtocolSocket`): they then talk to sluice's protocols, and to each other, in the
 * same bytes.
 *
 * @since 0.1.0
 * @category serialization
 */
export const serialization: RpcSerialization.RpcSerialization["Service"] = RpcSerialization.RpcSerialization.of({
  contentType: "application/vnd.sluice.rpc+msgpack",
  includesFraming: true,
  codecFor: wire.codecFor,
  makeUnsafe: () => wire.makeParser(undefined)
})

/**
 * `serialization` as a Layer.
 *
 * @since 0.1.0
 * @category serialization
 */
export const layerSerialization: Layer.Layer<RpcSerialization.RpcSerialization> = Layer.succeed(
  RpcSerialization.RpcSerialization
)(serialization)

const RpcDefectBase: Schema.Class<
  RpcDefect,
  Schema.TaggedStruct<"RpcDefect", { readonly method: Schema.String; readonly message: Schema.String }>,
  Cause.YieldableError
> = Schema.TaggedError<RpcDefect>("sluice/rpc/RpcDefect")("RpcDefect", {
  method: Schema.String,
  message: Schema.String
})

/**
 * A handler died (threw, or failed with a defect) instead of answering: the error `CatchDefects`
 * answers that call with, declared for every method of a group that uses it, so that the caller can
 * `Effect.catchTag("RpcDefect", ...)`. `message` is the defect's own message.
 *
 * @since 0.1.0
 * @category errors
 */
export class RpcDefect extends RpcDefectBase {}

const CatchDefectsBase: RpcMiddleware.ServiceClass<
  CatchDefects,
  "sluice/rpc/CatchDefects",
  never,
  typeof RpcDefect,
  never,
  never,
  false
> = RpcMiddleware.Service<CatchDefects>()("sluice/rpc/CatchDefects", { error: RpcDefect })

/**
 * An `RpcMiddleware` that turns a handler's defect into a typed `RpcDefect` for that call alone.
 * Without it, effect/rpc's server answers a defect with a `Defect` message that fails every call of
 * that client in flight (or, with `RpcServer.layer(group, { disableFatalDefects: true })`, that call
 * with a defect): either way the caller gets no typed error. Add it to a group with
 * `.middleware(CatchDefects)`, and provide `layerCatchDefects` to the server; the client needs nothing.
 *
 * @example
 * ```ts
 * import { CatchDefects, layerCatchDefects, layerProtocolServer } from "sluice/rpc"
 * import { Effect, Layer, Schema } from "effect"
 * import { Rpc, RpcGroup, RpcServer } from "effect/rpc"
 *
 * class Api extends RpcGroup.make(
 *   Rpc.make("Parse", { payload: { text: Schema.String }, success: Schema.Number })
 * ).middleware(CatchDefects) {}
 *
 * const handlers = Api.toLayer({ Parse: ({ text }) => Effect.sync(() => JSON.parse(text) as number) })
 *
 * const main = RpcServer.layer(Api).pipe(
 *   Layer.provide([handlers, layerCatchDefects]),
 *   Layer.provide(layerProtocolServer({ port: 7000 }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category middleware
 */
export class CatchDefects extends CatchDefectsBase {}

const messageOf = (defect: unknown): string => {
  if (defect instanceof Error) return defect.message === "" ? defect.name : `${defect.name}: ${defect.message}`
  if (typeof defect === "string") return defect
  try {
    return JSON.stringify(defect) ?? String(defect)
  } catch {
    return String(defect)
  }
}

/**
 * The server side of `CatchDefects`: a defect of a handler (a stream's included) becomes that call's
 * `RpcDefect`; interruptions and typed errors pass as they are.
 *
 * @since 0.1.0
 * @category middleware
 */
export const layerCatchDefects: Layer.Layer<CatchDefects> = Layer.succeed(CatchDefects)((effect, { rpc }) =>
  Effect.catchDefect(effect, (defect) => Effect.fail(new RpcDefect({ method: rpc._tag, message: messageOf(defect) })))
)
