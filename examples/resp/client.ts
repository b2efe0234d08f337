/**
 * A typed RESP client over sluice's `Client` (FIFO correlation: replies come in request order).
 *
 * - Every command is an Effect. A Redis error reply fails it with `RedisError` (its `code` is the
 *   reply's first word: `ERR`, `WRONGTYPE`, ...), a reply of the wrong shape with `UnexpectedReply`,
 *   and a connection problem with sluice's own errors (`ConnectionClosed`, `RequestTimeout`, ...):
 *   `Effect.catchTag` tells them apart.
 * - `protocol: 3` (the default) sends `HELLO 3` first; RESP3 pushes (`>`) never complete a call.
 * - Pub/sub runs on a connection of its own, as Redis clients usually do: `subscribe(...)` is a
 *   `Stream` of messages that opens it while it runs, `subscriber()` one whose subscriptions change
 *   (examples/resp/subscriber.ts).
 * - A connection that drops is not made again: calls fail with `ConnectionClosed`, and a new client
 *   is made by running `make` again (in a retry, say).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as Resp from "./client.ts"
 *
 * const program = Effect.scoped(Effect.gen(function* () {
 *   const redis = yield* Resp.make({ port: 6379 })
 *   yield* redis.set("greeting", "hello", { ex: 60 })
 *   return yield* redis.get("greeting") // "hello"
 * }))
 * ```
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import {
  call,
  connect,
  type ConnectError,
  handshake,
  nameOf,
  type Options,
  type RespError,
  UnexpectedReply
} from "./link.ts"
import * as subscriber from "./subscriber.ts"
import { type Arg, Push, text, type Value } from "./values.ts"

export { type ConnectError, type Options, type RespError, UnexpectedReply } from "./link.ts"
export {
  type Message,
  type Subscriber,
  SubscriberClosed,
  type SubscriberError,
  SubscriberOverflow
} from "./subscriber.ts"
export { type Arg, Push, RedisError, text, type Value } from "./values.ts"

/** SET's options. */
export interface SetOptions {
  readonly ex?: number | undefined
  readonly px?: number | undefined
  readonly exat?: number | undefined
  readonly pxat?: number | undefined
  readonly keepTtl?: boolean | undefined
  /** Only if the key does not exist. */
  readonly nx?: boolean | undefined
  /** Only if the key exists. */
  readonly xx?: boolean | undefined
}

/** A connected client. */
export interface RespClient {
  /** The RESP version the connection speaks. */
  readonly protocol: 2 | 3
  /** Any command; its reply as a `Value` (an error reply fails with `RedisError`). */
  command(...args: ReadonlyArray<Arg>): Effect.Effect<Value, RespError>
  ping(message?: string): Effect.Effect<string, RespError>
  echo(message: string): Effect.Effect<string, RespError>
  get(key: Arg): Effect.Effect<string | null, RespError>
  getBytes(key: Arg): Effect.Effect<Uint8Array | null, RespError>
  /** Whether the value was set (false when NX or XX said no). */
  set(key: Arg, value: Arg, options?: SetOptions): Effect.Effect<boolean, RespError>
  del(...keys: ReadonlyArray<Arg>): Effect.Effect<number, RespError>
  exists(...keys: ReadonlyArray<Arg>): Effect.Effect<number, RespError>
  incr(key: Arg): Effect.Effect<number, RespError>
  incrBy(key: Arg, by: number): Effect.Effect<number, RespError>
  decr(key: Arg): Effect.Effect<number, RespError>
  decrBy(key: Arg, by: number): Effect.Effect<number, RespError>
  append(key: Arg, value: Arg): Effect.Effect<number, RespError>
  strlen(key: Arg): Effect.Effect<number, RespError>
  mget(...keys: ReadonlyArray<Arg>): Effect.Effect<Array<string | null>, RespError>
  mset(entries: Iterable<readonly [Arg, Arg]>): Effect.Effect<void, RespError>
  /** Whether a time to live was set (`option`: EXPIRE's NX, XX, GT or LT). */
  expire(key: Arg, seconds: number, option?: "NX" | "XX" | "GT" | "LT"): Effect.Effect<boolean, RespError>
  pexpire(key: Arg, millis: number, option?: "NX" | "XX" | "GT" | "LT"): Effect.Effect<boolean, RespError>
  /** Seconds to live; -1 without an expiry, -2 without the key. */
  ttl(key: Arg): Effect.Effect<number, RespError>
  pttl(key: Arg): Effect.Effect<number, RespError>
  persist(key: Arg): Effect.Effect<boolean, RespError>
  keys(pattern: string): Effect.Effect<Array<string>, RespError>
  type(key: Arg): Effect.Effect<string, RespError>
  dbsize(): Effect.Effect<number, RespError>
  flushall(): Effect.Effect<void, RespError>
  select(db: number): Effect.Effect<void, RespError>
  lpush(key: Arg, ...values: ReadonlyArray<Arg>): Effect.Effect<number, RespError>
  rpush(key: Arg, ...values: ReadonlyArray<Arg>): Effect.Effect<number, RespError>
  lrange(key: Arg, start: number, stop: number): Effect.Effect<Array<string>, RespError>
  llen(key: Arg): Effect.Effect<number, RespError>
  /** How many subscribers the message was sent to. */
  publish(channel: string, message: Arg): Effect.Effect<number, RespError>
  clientSetName(name: string): Effect.Effect<void, RespError>
  clientGetName(): Effect.Effect<string | null, RespError>
  info(section?: string): Effect.Effect<string, RespError>
  /** HELLO: its reply (server, version, proto, id, ...), as a map. */
  hello(protocol?: 2 | 3): Effect.Effect<ReadonlyMap<string, Value>, RespError>
  /**
   * The messages of channels, on a connection of their own opened while the stream runs (and
   * closed when it ends). The stream fails with `SubscriberClosed` if that connection drops.
   */
  subscribe(
    ...channels: ReadonlyArray<string>
  ): Stream.Stream<subscriber.Message, subscriber.SubscriberError | ConnectError>
  /** The same, for patterns (PSUBSCRIBE). */
  psubscribe(
    ...patterns: ReadonlyArray<string>
  ): Stream.Stream<subscriber.Message, subscriber.SubscriberError | ConnectError>
  /** A subscriber whose subscriptions change, on a connection of its own (closed with the scope). */
  subscriber(options?: { readonly capacity?: number }): Effect.Effect<subscriber.Subscriber, ConnectError, Scope.Scope>
}

/** A flat array of keys and values as a map (what RESP2 sends for one). */
const pairs = (items: ReadonlyArray<Value>): ReadonlyMap<string, Value> | undefined => {
  const map = new Map<string, Value>()
  for (let i = 0; i + 1 < items.length; i += 2) {
    const key = text(items[i]!)
    if (key === undefined) return undefined
    map.set(key, items[i + 1]!)
  }
  return map
}

/** Connects, and says HELLO. */
export const make = (options: Options = {}): Effect.Effect<RespClient, ConnectError, Scope.Scope> =>
  Effect.gen(function* () {
    const client = yield* connect(options, { isPush: (value) => value instanceof Push, onPush: () => Effect.void })
    yield* handshake(client, options)
    let protocol: 2 | 3 = options.protocol ?? 3

    const typed = <A>(
      args: ReadonlyArray<Arg>,
      expected: string,
      decode: (value: Value) => A | undefined
    ): Effect.Effect<A, RespError> =>
      Effect.flatMap(call(client, args), (reply) => {
        const decoded = decode(reply)
        return decoded === undefined
          ? Effect.fail(new UnexpectedReply({ command: nameOf(args), expected, reply }))
          : Effect.succeed(decoded)
      })
    const integer = (...args: ReadonlyArray<Arg>) =>
      typed(args, "an integer", (v) => typeof v === "number" ? v : typeof v === "bigint" ? Number(v) : undefined)
    const flag = (...args: ReadonlyArray<Arg>) =>
      typed(args, "an integer", (v) => v === 1 || v === true ? true : v === 0 || v === false ? false : undefined)
    const ok = (...args: ReadonlyArray<Arg>) => Effect.asVoid(typed(args, "OK", (v) => (v === "OK" ? true : undefined)))
    const textOrNull = (v: Value): string | null | undefined => v === null ? null : text(v)
    const texts = (v: Value): Array<string> | undefined =>
      Array.isArray(v) && v.every((item) => text(item) !== undefined) ? v.map((item) => text(item)!) : undefined
    const expireArgs = (key: Arg, amount: number, option: string | undefined) =>
      option === undefined ? [key, amount] : [key, amount, option]

    const self: RespClient = {
      get protocol() {
        return protocol
      },
      command: (...args) => call(client, args),
      ping: (message) => typed(message === undefined ? ["PING"] : ["PING", message], "a string", text),
      echo: (message) => typed(["ECHO", message], "a string", text),
      get: (key) => typed(["GET", key], "a string or null", textOrNull),
      getBytes: (key) =>
        typed(["GET", key], "a string or null", (v) => v === null || v instanceof Uint8Array ? v : undefined),
      set: (key, value, options = {}) => {
        const args: Array<Arg> = ["SET", key, value]
        if (options.nx) args.push("NX")
        if (options.xx) args.push("XX")
        if (options.ex !== undefined) args.push("EX", options.ex)
        if (options.px !== undefined) args.push("PX", options.px)
        if (options.exat !== undefined) args.push("EXAT", options.exat)
        if (options.pxat !== undefined) args.push("PXAT", options.pxat)
        if (options.keepTtl) args.push("KEEPTTL")
        return typed(args, "OK or null", (v) => (v === "OK" ? true : v === null ? false : undefined))
      },
      del: (...keys) => integer("DEL", ...keys),
      exists: (...keys) => integer("EXISTS", ...keys),
      incr: (key) => integer("INCR", key),
      incrBy: (key, by) => integer("INCRBY", key, by),
      decr: (key) => integer("DECR", key),
      decrBy: (key, by) => integer("DECRBY", key, by),
      append: (key, value) => integer("APPEND", key, value),
      strlen: (key) => integer("STRLEN", key),
      mget: (...keys) =>
        typed(
          ["MGET", ...keys],
          "an array of strings",
          (v) => Array.isArray(v) ? v.map((item) => textOrNull(item) ?? null) : undefined
        ),
      mset: (entries) => ok("MSET", ...[...entries].flat()),
      expire: (key, seconds, option) => flag("EXPIRE", ...expireArgs(key, seconds, option)),
      pexpire: (key, millis, option) => flag("PEXPIRE", ...expireArgs(key, millis, option)),
      ttl: (key) => integer("TTL", key),
      pttl: (key) => integer("PTTL", key),
      persist: (key) => flag("PERSIST", key),
      keys: (pattern) => typed(["KEYS", pattern], "an array of strings", texts),
      type: (key) => typed(["TYPE", key], "a string", text),
      dbsize: () => integer("DBSIZE"),
      flushall: () => ok("FLUSHALL"),
      select: (db) => ok("SELECT", db),
      lpush: (key, ...values) => integer("LPUSH", key, ...values),
      rpush: (key, ...values) => integer("RPUSH", key, ...values),
      lrange: (key, start, stop) => typed(["LRANGE", key, start, stop], "an array of strings", texts),
      llen: (key) => integer("LLEN", key),
      publish: (channel, message) => integer("PUBLISH", channel, message),
      clientSetName: (name) => ok("CLIENT", "SETNAME", name),
      clientGetName: () => typed(["CLIENT", "GETNAME"], "a string or null", textOrNull),
      info: (section) => typed(section === undefined ? ["INFO"] : ["INFO", section], "a string", text),
      hello: (version) =>
        typed(version === undefined ? ["HELLO"] : ["HELLO", version], "a map", (v) => {
          // RESP2 has no maps: HELLO answers with a flat array of keys and values.
          const map = v instanceof Map ? v as ReadonlyMap<string, Value> : Array.isArray(v) ? pairs(v) : undefined
          if (map !== undefined && version !== undefined) protocol = version
          return map
        }),
      subscribe: (...channels) => subscriber.stream(options, { channels }),
      psubscribe: (...patterns) => subscriber.stream(options, { patterns }),
      subscriber: (extra) => subscriber.make({ ...options, ...extra })
    }
    return self
  })
