/**
 * The RESP example (examples/resp) driven by ioredis 6 with its default settings (RESP3: HELLO 3,
 * CLIENT SETINFO, the INFO ready check), in-process on the runtime that runs the tests. Every value
 * and every error text is what redis-server 7 answers (test/interop/resp.test.ts compares the two
 * byte for byte).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { Redis } from "ioredis"
import { type RespServer, serve } from "../../examples/resp/app.ts"

/** Runs `f` against a RESP server on a free port, stopped afterwards. */
const withServer = <A>(f: (resp: RespServer) => Promise<A>, options?: Parameters<typeof serve>[0]) =>
  Effect.gen(function* () {
    const resp = yield* serve({ ...options, port: 0 })
    return yield* Effect.promise(() => f(resp))
  })

/** An ioredis client with its default settings, disconnected when `f` is done. */
const withIoredis = async <A>(port: number, f: (redis: Redis) => Promise<A>): Promise<A> => {
  const redis = new Redis(port, "127.0.0.1")
  try {
    return await f(redis)
  } finally {
    redis.disconnect()
  }
}

/** The message of the error a promise rejects with. */
const rejection = (promise: Promise<unknown>): Promise<string> =>
  promise.then(
    () => "resolved",
    (error: Error) => error.message
  )

const until = async (label: string, condition: () => boolean, millis = 10_000): Promise<void> => {
  const deadline = Date.now() + millis
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${millis} ms waiting for ${label}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

describe("RESP server with ioredis 6 (default settings)", () => {
  it.live("connects over RESP3: HELLO 3 is accepted, CLIENT SETINFO recorded, the INFO ready check passes", () =>
    withServer((resp) =>
      withIoredis(resp.port, async (redis) => {
        expect(await redis.ping()).toBe("PONG")
        expect(redis.status).toBe("ready")
        // A HELLO answered with an error makes ioredis fall back to RESP2; a lost SETINFO leaves no library name.
        const conns = [...resp.shared.conns.values()]
        expect(conns.map((c) => [c.proto.version, c.libName])).toEqual([[3, "ioredis"]])
        expect(conns[0]!.libVer).toMatch(/^6\./)
      })
    ))

  it.live("strings: SET with EX/PX/NX/XX/GET, GET, INCR/INCRBY/DECR/DECRBY, APPEND, STRLEN, MGET, MSET", () =>
    withServer((resp) =>
      withIoredis(resp.port, async (redis) => {
        expect(await redis.set("k", "v1")).toBe("OK")
        expect(await redis.set("k", "v2", "NX")).toBe(null)
        expect(await redis.set("k", "v3", "XX")).toBe("OK")
        expect(await redis.set("missing", "x", "XX")).toBe(null)
        expect(await redis.set("k", "v4", "GET")).toBe("v3")
        expect(await redis.set("k", "v5", "EX", 100)).toBe("OK")
        expect(await redis.ttl("k")).toBe(100)
        expect(await redis.set("k", "v6", "PX", 100_000, "KEEPTTL" as never).catch((e: Error) => e.message)).toBe(
          "ERR syntax error"
        )
        expect(await redis.get("k")).toBe("v5")
        expect(await redis.get("nothing")).toBe(null)
        expect(await redis.incr("n")).toBe(1)
        expect(await redis.incrby("n", 41)).toBe(42)
        expect(await redis.decr("n")).toBe(41)
        expect(await redis.decrby("n", 50)).toBe(-9)
        expect(await redis.append("s", "hello")).toBe(5)
        expect(await redis.append("s", " world")).toBe(11)
        expect(await redis.get("s")).toBe("hello world")
        expect(await redis.strlen("s")).toBe(11)
        expect(await redis.strlen("nothing")).toBe(0)
        expect(await redis.mset("a", "1", "b", "2")).toBe("OK")
        expect(await redis.mget("a", "nothing", "b")).toEqual(["1", null, "2"])
        // Binary-safe values: every byte comes back.
        const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i))
        expect(await redis.set(Buffer.from([0, 255, 13, 10]), bytes)).toBe("OK")
        expect((await redis.getBuffer(Buffer.from([0, 255, 13, 10])))!.equals(bytes)).toBe(true)
      })
    ))

  it.live("error replies reach ioredis with Redis's texts, and the connection goes on", () =>
    withServer((resp) =>
      withIoredis(resp.port, async (redis) => {
        await redis.rpush("list", "x")
        expect(await rejection(redis.get("list"))).toBe(
          "WRONGTYPE Operation against a key holding the wrong kind of value"
        )
        await redis.set("max", "9223372036854775807")
        expect(await rejection(redis.incr("max"))).toBe("ERR increment or decrement would overflow")
        await redis.set("text", "abc")
        expect(await rejection(redis.incr("text"))).toBe("ERR value is not an integer or out of range")
        expect(await rejection(redis.call("get"))).toBe("ERR wrong number of arguments for 'get' command")
        expect(await rejection(redis.call("nosuch", "a", "b"))).toBe(
          "ERR unknown command 'nosuch', with args beginning with: 'a' 'b' "
        )
        expect(await rejection(redis.call("client", "nosuch"))).toBe(
          "ERR unknown subcommand 'nosuch'. Try CLIENT HELP."
        )
        expect(await rejection(redis.call("set", "k", "v", "EX", "0"))).toBe("ERR invalid expire time in 'set' command")
        expect(await rejection(redis.call("select", "16"))).toBe("ERR DB index is out of range")
        // Still the same connection: nothing above closed it.
        expect(await redis.ping()).toBe("PONG")
        expect(resp.shared.stats.connections).toBe(1)
      })
    ))

  it.live("keyspace: DEL, EXISTS, TYPE, EXPIRE/PEXPIRE with options, TTL/PTTL, PERSIST, KEYS, DBSIZE, SELECT, FLUSHALL", () =>
    withServer((resp) =>
      withIoredis(resp.port, async (redis) => {
        await redis.mset("user:1", "a", "user:2", "b", "other", "c")
        expect(await redis.exists("user:1", "user:2", "nope")).toBe(2)
        expect(await redis.type("user:1")).toBe("string")
        expect((await redis.keys("user:*")).sort()).toEqual(["user:1", "user:2"])
        expect(await redis.keys("user:[^1]")).toEqual(["user:2"])
        expect(await redis.dbsize()).toBe(3)
        expect(await redis.ttl("user:1")).toBe(-1)
        expect(await redis.ttl("nope")).toBe(-2)
        expect(await redis.expire("user:1", 100)).toBe(1)
        expect(await redis.expire("user:1", 50, "GT")).toBe(0)
        expect(await redis.expire("user:1", 50, "LT")).toBe(1)
        expect(await redis.expire("user:1", 10, "NX")).toBe(0)
        expect(await redis.ttl("user:1")).toBe(50)
        expect(await redis.pexpire("user:2", 100_000)).toBe(1)
        expect(await redis.pttl("user:2")).toBeGreaterThan(99_000)
        expect(await redis.persist("user:2")).toBe(1)
        expect(await redis.persist("user:2")).toBe(0)
        expect(await redis.expire("nope", 10)).toBe(0)
        // An expiry in the past deletes the key at once.
        expect(await redis.expire("other", -1)).toBe(1)
        expect(await redis.exists("other")).toBe(0)
        expect(await redis.del("user:1", "user:2", "nope")).toBe(2)
        expect(await redis.select(1)).toBe("OK")
        await redis.set("in-db-1", "x")
        expect(await redis.dbsize()).toBe(1)
        expect(await redis.select(0)).toBe("OK")
        expect(await redis.get("in-db-1")).toBe(null)
        expect(await redis.flushall()).toBe("OK")
        await redis.select(1)
        expect(await redis.dbsize()).toBe(0)
      })
    ))

  it.live("lists: LPUSH, RPUSH, LRANGE with negative indexes, LLEN", () =>
    withServer((resp) =>
      withIoredis(resp.port, async (redis) => {
        expect(await redis.rpush("l", "b", "c")).toBe(2)
        expect(await redis.lpush("l", "a", "z")).toBe(4)
        expect(await redis.lrange("l", 0, -1)).toEqual(["z", "a", "b", "c"])
        expect(await redis.lrange("l", -2, 10)).toEqual(["b", "c"])
        expect(await redis.lrange("l", 3, 1)).toEqual([])
        expect(await redis.llen("l")).toBe(4)
        expect(await redis.type("l")).toBe("list")
        await redis.set("s", "1")
        expect(await rejection(redis.lpush("s", "x"))).toBe(
          "WRONGTYPE Operation against a key holding the wrong kind of value"
        )
      })
    ))

  it.live("a pipeline of 300 commands is answered in order, errors in their places", () =>
    withServer((resp) =>
      withIoredis(resp.port, async (redis) => {
        const pipeline = redis.pipeline()
        for (let i = 0; i < 100; i++) {
          pipeline.set(`key:${i}`, `value:${i}`)
          pipeline.incr("counter")
          // Every tenth command fails: its error must sit at its own index, not shift the others.
          if (i % 10 === 0) pipeline.lpush(`key:${i}`, "x")
          else pipeline.get(`key:${i}`)
        }
        const results = (await pipeline.exec())!
        expect(results.length).toBe(300)
        for (let i = 0; i < 100; i++) {
          expect(results[3 * i]).toEqual([null, "OK"])
          expect(results[3 * i + 1]).toEqual([null, i + 1])
          const third = results[3 * i + 2]!
          if (i % 10 === 0) expect((third[0] as Error).message).toMatch(/^WRONGTYPE/)
          else expect(third).toEqual([null, `value:${i}`])
        }
      })
    ))

  it.live("pub/sub: SUBSCRIBE and PSUBSCRIBE, PUBLISH's receiver count, messages in order, UNSUBSCRIBE", () =>
    withServer((resp) =>
      withIoredis(resp.port, (publisher) =>
        withIoredis(resp.port, async (subscriber) => {
          const received: Array<string> = []
          subscriber.on("message", (channel: string, message: string) => received.push(`${channel}:${message}`))
          subscriber.on(
            "pmessage",
            (pattern: string, channel: string, message: string) => received.push(`${pattern}|${channel}:${message}`)
          )
          expect(await subscriber.subscribe("news", "sport")).toBe(2)
          expect(await subscriber.psubscribe("n*")).toBe(3)
          // news: the channel and the pattern; sport: the channel; nothing: no one.
          expect(await publisher.publish("news", "1")).toBe(2)
          expect(await publisher.publish("sport", "2")).toBe(1)
          expect(await publisher.publish("weather", "3")).toBe(0)
          for (let i = 0; i < 50; i++) await publisher.publish("sport", `n${i}`)
          await until("53 messages", () => received.length === 53)
          expect(received.slice(0, 3)).toEqual(["news:1", "n*|news:1", "sport:2"])
          expect(received.slice(3)).toEqual(Array.from({ length: 50 }, (_, i) => `sport:n${i}`))
          await subscriber.unsubscribe("sport")
          expect(await publisher.publish("sport", "late")).toBe(0)
          expect(await publisher.publish("news", "still")).toBe(2)
          await until("the last two messages", () => received.length === 55)
        }))
    ))

  it.live("INFO, COMMAND, CLIENT SETNAME/GETNAME/ID/INFO, CONFIG GET, ECHO, HELLO through ioredis", () =>
    withServer((resp) =>
      withIoredis(resp.port, async (redis) => {
        const info = await redis.info("persistence")
        expect(info).toContain("loading:0")
        expect(info).not.toContain("# Server")
        expect(await redis.call("command", "count")).toBe(resp.shared.table.size)
        expect(await redis.client("SETNAME", "worker-1")).toBe("OK")
        expect(await redis.client("GETNAME")).toBe("worker-1")
        const id = await redis.client("ID")
        expect(String(await redis.call("client", "info"))).toContain(`id=${id} `)
        expect(await redis.config("GET", "appendonly")).toEqual(["appendonly", "no"])
        expect(await redis.echo("héllo")).toBe("héllo")
        const hello = await redis.call("hello", "3") as Array<unknown>
        expect(hello.slice(0, 6)).toEqual(["server", "sluice", "version", "0.1.0", "proto", 3])
      })
    ))

  it.live("keys expire on time: ioredis sees a key set with PX disappear", () =>
    withServer((resp) =>
      withIoredis(resp.port, async (redis) => {
        await redis.set("short", "x", "PX", 30)
        await redis.set("long", "x", "EX", 1000)
        const deadline = Date.now() + 10_000
        while ((await redis.exists("short")) === 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
        expect(await redis.exists("short")).toBe(0)
        expect(await redis.get("long")).toBe("x")
      })
    ))
})
