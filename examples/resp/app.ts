/**
 * The RESP server as a scoped Effect: `serve(options)` listens until its scope closes.
 *
 * ```text
 * bytes -> commands() framer -> serverCodec -> dispatch (Handler.sync) -> serverCodec -> bytes
 *          (parses as it goes:   (arguments out    (the command table,    (RESP2 / RESP3
 *           positions of each     of the frame)     the store, pub/sub)    reply encoding)
 *           argument)
 * ```
 *
 * Each connection's state (`Conn`: RESP version, database, name, subscriptions) is the session's
 * typed state, made by `onOpen`. A protocol error is answered with Redis's `-ERR Protocol error: ...`
 * text (`Pipeline.onFrameError`), then the connection closes, as Redis closes it.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { Errors, Handler, Pipeline, Server, type Transport } from "../../src/index.ts"
import { dispatch, table } from "./commands/index.ts"
import { PubSub } from "./commands/pubsub.ts"
import type { Conn, RespSession, Shared } from "./commands/spec.ts"
import { commands } from "./framer.ts"
import { ErrorReply, NONE, type Reply, RESP2, serverCodec } from "./reply.ts"
import * as Store from "./store.ts"

/** Options of `serve`. */
export interface Options {
  /** Default 6379; 0 picks a free port. */
  readonly port?: number | undefined
  /** Default 127.0.0.1. */
  readonly host?: string | undefined
  /**
   * The most bytes queued for one connection before `send` refuses more: a subscriber this far
   * behind is dropped (Redis's `client-output-buffer-limit pubsub`). Default 32 MiB, Redis's hard
   * limit for pub/sub clients.
   */
  readonly maxOutboundBytes?: number | undefined
  /** Queued bytes above which a connection stops being read (its replies wait for it). Default 1 MiB. */
  readonly highWaterMark?: number | undefined
  /** A connection whose queued bytes make no progress for this long is closed. Default 60 s. */
  readonly writeTimeout?: Duration.Input | undefined
  /** A client silent for this long is closed. Default: never (Redis's `timeout 0`). */
  readonly readIdleTimeout?: Duration.Input | undefined
  /** The largest command, in bytes. Default 1 GiB (Redis's `client-query-buffer-limit`). */
  readonly maxCommandBytes?: number | undefined
  /** How often active expiry runs; default 100 ms. */
  readonly sweepInterval?: Duration.Input | undefined
  /** Connections at most; default 10 000 (Redis's `maxclients`). */
  readonly maxConnections?: number | undefined
  readonly transport?: Transport.Transport | undefined
}

/** A running RESP server. */
export interface RespServer {
  readonly port: number
  readonly server: Server.Server<Reply, Conn>
  /** The keyspace and the pub/sub registry, shared by every connection. */
  readonly shared: Shared
}

/** The last reply to bytes that break the protocol: Redis's text, or nothing where Redis just closes. */
const lastReply = (error: Errors.FrameError): Reply =>
  error._tag === "MalformedFrame" && error.reason === "Protocol" ? new ErrorReply(`ERR ${error.detail}`) : NONE

/** Serves RESP until the scope closes. */
export const serve = (options: Options = {}): Effect.Effect<RespServer, Errors.TransportError, Scope.Scope> =>
  Effect.gen(function* () {
    const store = yield* Store.make({ sweepInterval: options.sweepInterval })
    // The server is made after the state its commands share, which asks it for its port.
    const listening: { server?: Server.Server<Reply, Conn> } = {}
    const pubsub = new PubSub()
    const shared: Shared = {
      store,
      pubsub,
      conns: new Map(),
      startedAt: store.now(),
      port: () => listening.server?.port ?? 0,
      rejected: () => listening.server?.rejected ?? 0,
      stats: { connections: 0, commands: 0 },
      table: table()
    }
    let nextId = 1
    const pipeline = Pipeline.make({
      framer: commands({ maxFrameLength: options.maxCommandBytes }),
      codec: serverCodec,
      handler: Handler.sync(dispatch(shared))
    }).pipe(Pipeline.onFrameError((error) => Effect.succeed(lastReply(error))))

    const server = listening.server = yield* Server.serve({
      pipeline,
      port: options.port ?? 6379,
      host: options.host ?? "127.0.0.1",
      transport: options.transport,
      maxConnections: options.maxConnections,
      maxOutboundBytes: options.maxOutboundBytes ?? 32 * 1024 * 1024,
      highWaterMark: options.highWaterMark,
      writeTimeout: options.writeTimeout ?? Duration.seconds(60),
      readIdleTimeout: options.readIdleTimeout ?? Duration.infinity,
      // Redis has no limit on how long a command may take to arrive (a large value on a slow link).
      frameTimeout: Duration.infinity,
      onOpen: (session) =>
        Effect.sync((): Conn => {
          const conn: Conn = {
            id: nextId++,
            session: session as unknown as RespSession,
            proto: RESP2,
            db: 0,
            name: "",
            libName: "",
            libVer: "",
            channels: new Set(),
            patterns: new Set(),
            createdAt: store.now(),
            lastCommand: "NULL"
          }
          shared.conns.set(conn.id, conn)
          shared.stats.connections++
          return conn
        }),
      onClose: (session) =>
        Effect.sync(() => {
          const conn = session.state
          if (conn === undefined) return
          shared.conns.delete(conn.id)
          pubsub.removeAll(conn)
        })
    })
    return { port: server.port, server, shared }
  })
