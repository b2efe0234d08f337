/**
 * One RESP connection: sluice's `Client` with the reply framer and the client codec, the handshake
 * (HELLO, SELECT, CLIENT SETNAME), and the errors a command can fail with. Shared by the command
 * client (client.ts) and the subscriber (subscriber.ts).
 */
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { Client, type Errors, type Transport } from "../../src/index.ts"
import { type Arg, clientCodec, framer, Push, RedisError, type Value } from "./values.ts"

/** A reply whose shape does not fit the method that asked for it. */
export class UnexpectedReply extends Data.TaggedError("UnexpectedReply")<{
  readonly command: string
  readonly expected: string
  readonly reply: Value
}> {
  override get message(): string {
    return `${this.command}: expected ${this.expected}, got ${describe(this.reply)}`
  }
}

const describe = (value: Value): string =>
  value === null
    ? "null"
    : value instanceof Uint8Array
    ? "a bulk string"
    : Array.isArray(value)
    ? "an array"
    : value instanceof Map
    ? "a map"
    : value instanceof Push
    ? "a push"
    : typeof value

/** What a command can fail with. */
export type RespError = RedisError | UnexpectedReply | Client.RequestError

/** What connecting can fail with. */
export type ConnectError = Errors.TransportError | Errors.ConnectTimeout | RespError

/** Options of a connection: the command client's (`make`), and the subscriber's. */
export interface Options {
  /** Default 6379. */
  readonly port?: number | undefined
  /** Default 127.0.0.1. */
  readonly host?: string | undefined
  /** RESP version: 3 (the default) sends `HELLO 3` on connect; 2 sends nothing. */
  readonly protocol?: 2 | 3 | undefined
  /** A client name (`HELLO ... SETNAME`, or `CLIENT SETNAME` in RESP2). */
  readonly name?: string | undefined
  /** A database to `SELECT` on connect. */
  readonly db?: number | undefined
  /** Default 10 s. */
  readonly connectTimeout?: Duration.Input | undefined
  /** Default 30 s. */
  readonly requestTimeout?: Duration.Input | undefined
  readonly transport?: Transport.Transport | undefined
}

/** The sluice client of one connection, with the RESP framer and codec. */
export const connect = (
  options: Options,
  push: {
    readonly isPush: (value: Value) => boolean
    readonly onPush: (value: Value) => Effect.Effect<void>
    readonly onDisconnect?: ((error: Errors.ConnectionClosed) => Effect.Effect<void>) | undefined
  }
): Effect.Effect<
  Client.Client<ReadonlyArray<Arg>, Value>,
  Errors.TransportError | Errors.ConnectTimeout,
  Scope.Scope
> =>
  Client.make({
    host: options.host ?? "127.0.0.1",
    port: options.port ?? 6379,
    framer,
    codec: clientCodec,
    transport: options.transport,
    connectTimeout: options.connectTimeout,
    requestTimeout: options.requestTimeout,
    // A Redis connection may rightly stay silent for hours (a quiet subscriber): no idle time-out.
    readIdleTimeout: Duration.infinity,
    isPush: push.isPush,
    onPush: push.onPush,
    onDisconnect: push.onDisconnect
  })

/** Sends a command; an error reply becomes a failure that names the command. */
export const call = (
  client: Client.Client<ReadonlyArray<Arg>, Value>,
  args: ReadonlyArray<Arg>
): Effect.Effect<Value, RedisError | Client.RequestError> =>
  Effect.flatMap(
    client.request(args),
    (value) =>
      value instanceof RedisError
        ? Effect.fail(new RedisError({ code: value.code, reply: value.reply, command: nameOf(args) }))
        : Effect.succeed(value)
  )

export const nameOf = (args: ReadonlyArray<Arg>): string => String(args[0] ?? "").toUpperCase()

/** HELLO / SELECT / CLIENT SETNAME as the options ask, on a new connection. */
export const handshake = (
  client: Client.Client<ReadonlyArray<Arg>, Value>,
  options: Options
): Effect.Effect<ReadonlyMap<string, Value> | undefined, RespError> =>
  Effect.gen(function* () {
    let hello: ReadonlyMap<string, Value> | undefined
    if ((options.protocol ?? 3) === 3) {
      const args: Array<Arg> = ["HELLO", 3]
      if (options.name !== undefined) args.push("SETNAME", options.name)
      const reply = yield* call(client, args)
      if (!(reply instanceof Map)) return yield* new UnexpectedReply({ command: "HELLO", expected: "a map", reply })
      hello = reply
    } else if (options.name !== undefined) {
      yield* call(client, ["CLIENT", "SETNAME", options.name])
    }
    if (options.db !== undefined && options.db !== 0) yield* call(client, ["SELECT", options.db])
    return hello
  })
