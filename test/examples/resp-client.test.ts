/**
 * The sluice RESP client (examples/resp/client.ts) against the sluice RESP server, over RESP2 and
 * RESP3: typed commands, typed errors (a Redis error reply, a reply of the wrong shape, a closed
 * connection), and pub/sub as a Stream. test/interop/resp.test.ts runs it against redis-server.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Stream } from "effect"
import { Handler, Pipeline, Server } from "../../src/index.ts"
import { serve } from "../../examples/resp/app.ts"
import * as Resp from "../../examples/resp/client.ts"
import { commands } from "../../examples/resp/framer.ts"
import { serverCodec } from "../../examples/resp/reply.ts"

/** The first failure of an Effect, as a value. */
const failure = <A, E>(effect: Effect.Effect<A, E>) => Effect.flip(effect)

/** Polls `condition` every 5 ms, failing after 10 s. */
const eventually = <E>(label: string, condition: Effect.Effect<boolean, E>) =>
  Effect.gen(function* () {
    for (let i = 0; i < 2000; i++) {
      if (yield* condition) return
      yield* Effect.sleep("5 millis")
    }
    return yield* Effect.die(new Error(`timed out waiting for ${label}`))
  })

for (const protocol of [2, 3] as const) {
  describe(`the sluice RESP client over RESP${protocol}`, () => {
    it.live("commands are Effects with typed replies", () =>
      Effect.gen(function* () {
        const resp = yield* serve({ port: 0 })
        const redis = yield* Resp.make({ port: resp.port, protocol, name: "tester" })
        expect(redis.protocol).toBe(protocol)
        expect([...resp.shared.conns.values()].map((c) => [c.proto.version, c.name])).toEqual([[protocol, "tester"]])
        expect(yield* redis.ping()).toBe("PONG")
        expect(yield* redis.echo("héllo")).toBe("héllo")
        expect(yield* redis.set("k", "v", { ex: 100 })).toBe(true)
        expect(yield* redis.set("k", "w", { nx: true })).toBe(false)
        expect(yield* redis.get("k")).toBe("v")
        expect(yield* redis.get("missing")).toBe(null)
        expect(yield* redis.ttl("k")).toBe(100)
        expect(yield* redis.incr("n")).toBe(1)
        expect(yield* redis.incrBy("n", 9)).toBe(10)
        expect(yield* redis.decr("n")).toBe(9)
        expect(yield* redis.decrBy("n", 10)).toBe(-1)
        expect(yield* redis.append("k", "x")).toBe(2)
        expect(yield* redis.strlen("k")).toBe(2)
        yield* redis.mset([["a", "1"], ["b", "2"]])
        expect(yield* redis.mget("a", "missing", "b")).toEqual(["1", null, "2"])
        expect(yield* redis.exists("a", "b", "missing")).toBe(2)
        expect(yield* redis.expire("a", 10)).toBe(true)
        expect(yield* redis.expire("a", 5, "GT")).toBe(false)
        expect(yield* redis.pexpire("a", 5000, "LT")).toBe(true)
        expect(yield* redis.pttl("a")).toBeLessThanOrEqual(5000)
        expect(yield* redis.persist("a")).toBe(true)
        expect(yield* redis.ttl("a")).toBe(-1)
        expect((yield* redis.keys("?")).sort()).toEqual(["a", "b", "k", "n"])
        expect(yield* redis.type("a")).toBe("string")
        expect(yield* redis.del("a", "b", "missing")).toBe(2)
        expect(yield* redis.rpush("l", "x", "y")).toBe(2)
        expect(yield* redis.lpush("l", "w")).toBe(3)
        expect(yield* redis.lrange("l", 0, -1)).toEqual(["w", "x", "y"])
        expect(yield* redis.llen("l")).toBe(3)
        expect(yield* redis.dbsize()).toBe(3)
        yield* redis.select(2)
        expect(yield* redis.dbsize()).toBe(0)
        yield* redis.select(0)
        yield* redis.clientSetName("renamed")
        expect(yield* redis.clientGetName()).toBe("renamed")
        expect(yield* redis.info("persistence")).toContain("loading:0")
        const bytes = Uint8Array.from({ length: 256 }, (_, i) => i)
        yield* redis.set("bin", bytes)
        expect(yield* redis.getBytes("bin")).toEqual(bytes)
        // Beyond 2^53, `command` gives the exact integer.
        yield* redis.set("big", "9223372036854775806")
        expect(yield* redis.command("INCR", "big")).toBe(9223372036854775807n)
        yield* redis.flushall()
        expect(yield* redis.dbsize()).toBe(0)
      }))

    it.live("a Redis error reply is a RedisError with its code and text; the connection goes on", () =>
      Effect.gen(function* () {
        const resp = yield* serve({ port: 0 })
        const redis = yield* Resp.make({ port: resp.port, protocol })
        yield* redis.lpush("list", "x")
        const wrongType = yield* failure(redis.get("list"))
        expect(wrongType).toBeInstanceOf(Resp.RedisError)
        expect(wrongType).toMatchObject({
          code: "WRONGTYPE",
          reply: "WRONGTYPE Operation against a key holding the wrong kind of value",
          command: "GET"
        })
        yield* redis.set("max", "9223372036854775807")
        expect(yield* failure(redis.incr("max"))).toMatchObject({
          _tag: "RedisError",
          code: "ERR",
          reply: "ERR increment or decrement would overflow"
        })
        expect(yield* failure(redis.command("GET"))).toMatchObject({
          reply: "ERR wrong number of arguments for 'get' command"
        })
        // catchTag tells a Redis error from a connection error.
        const recovered = yield* redis.command("NOPE").pipe(
          Effect.catchTag("RedisError", (e) => Effect.succeed(`redis said: ${e.code}`))
        )
        expect(recovered).toBe("redis said: ERR")
        expect(yield* redis.ping()).toBe("PONG")
      }))

    it.live("a closed connection fails calls with ConnectionClosed, not a RedisError", () =>
      Effect.gen(function* () {
        const resp = yield* serve({ port: 0 })
        const redis = yield* Resp.make({ port: resp.port, protocol })
        expect(yield* redis.command("QUIT")).toBe("OK")
        const error = yield* failure(redis.ping())
        expect(error._tag).toBe("ConnectionClosed")
      }))

    it.live("subscribe: a Stream of messages on a connection of its own, in order, closed with the stream", () =>
      Effect.gen(function* () {
        const resp = yield* serve({ port: 0 })
        const redis = yield* Resp.make({ port: resp.port, protocol })
        const fiber = yield* Effect.forkChild(
          redis.subscribe("news", "sport").pipe(Stream.take(30), Stream.runCollect)
        )
        // PUBLISH counts the subscription once it is made.
        yield* eventually("the subscription", Effect.map(redis.publish("sport", "warm-up"), (n) => n === 1))
        for (let i = 0; i < 30; i++) yield* redis.publish(i % 2 === 0 ? "news" : "sport", `m${i}`)
        const messages = (yield* Fiber.join(fiber)).filter((m) => m.message !== "warm-up")
        expect(messages.slice(0, 28).map((m) => `${m.channel}:${m.message}`)).toEqual(
          Array.from({ length: 28 }, (_, i) => `${i % 2 === 0 ? "news" : "sport"}:m${i}`)
        )
        // The stream is done: its connection is gone, so nobody listens any more.
        yield* eventually("the subscriber's close", Effect.map(redis.publish("news", "x"), (n) => n === 0))
        expect(resp.shared.conns.size).toBe(1)
      }))

    it.live("a subscriber's subscriptions change; patterns; confirmations before publishing", () =>
      Effect.gen(function* () {
        const resp = yield* serve({ port: 0 })
        const redis = yield* Resp.make({ port: resp.port, protocol })
        const subscriber = yield* redis.subscriber()
        yield* subscriber.subscribe("a", "b")
        yield* subscriber.psubscribe("room:*")
        expect([...subscriber.channels].sort()).toEqual(["a", "b"])
        expect([...subscriber.patterns]).toEqual(["room:*"])
        // Confirmed: a message published now is delivered.
        expect(yield* redis.publish("a", "1")).toBe(1)
        expect(yield* redis.publish("room:7", "2")).toBe(1)
        yield* subscriber.unsubscribe("a")
        expect([...subscriber.channels]).toEqual(["b"])
        expect(yield* redis.publish("a", "lost")).toBe(0)
        expect(yield* redis.publish("b", "3")).toBe(1)
        const messages = yield* subscriber.messages.pipe(Stream.take(3), Stream.runCollect)
        expect(messages.map((m) => [m.pattern, m.channel, m.message])).toEqual([
          [undefined, "a", "1"],
          ["room:*", "room:7", "2"],
          [undefined, "b", "3"]
        ])
      }))

    it.live("the messages stream fails with SubscriberClosed when the connection drops", () =>
      Effect.gen(function* () {
        const resp = yield* serve({ port: 0 })
        const redis = yield* Resp.make({ port: resp.port, protocol })
        const subscriber = yield* redis.subscriber()
        yield* subscriber.subscribe("a")
        yield* redis.publish("a", "before")
        const conn = [...resp.shared.conns.values()].find((c) => c.channels.has("a"))!
        yield* conn.session.close
        const result = yield* subscriber.messages.pipe(Stream.runCollect, Effect.flip)
        expect(result._tag).toBe("SubscriberClosed")
      }))

    it.live("a consumer that falls `capacity` messages behind gets SubscriberOverflow, after what it had", () =>
      Effect.gen(function* () {
        const resp = yield* serve({ port: 0 })
        const redis = yield* Resp.make({ port: resp.port, protocol })
        const subscriber = yield* redis.subscriber({ capacity: 5 })
        yield* subscriber.subscribe("a")
        for (let i = 0; i < 20; i++) yield* redis.publish("a", `m${i}`)
        const got: Array<string> = []
        const error = yield* subscriber.messages.pipe(
          Stream.runForEach((m) => Effect.sync(() => got.push(m.message))),
          Effect.flip
        )
        expect(error._tag).toBe("SubscriberOverflow")
        // The queue held 5 messages: those are delivered before the failure, in order.
        expect(got).toEqual(["m0", "m1", "m2", "m3", "m4"])
      }))
  })
}

describe("the sluice RESP client against a server that answers otherwise", () => {
  it.live("a reply of the wrong shape fails with UnexpectedReply, naming what was expected", () =>
    Effect.gen(function* () {
      // A server that answers every command with the integer 1.
      const ones = Pipeline.make({ framer: commands(), codec: serverCodec, handler: Handler.sync(() => 1) })
      const server = yield* Server.serve({ pipeline: ones, port: 0 })
      const redis = yield* Resp.make({ port: server.port, protocol: 2 })
      const error = yield* failure(redis.get("k"))
      expect(error).toBeInstanceOf(Resp.UnexpectedReply)
      expect(error.message).toBe("GET: expected a string or null, got number")
      expect(yield* redis.incr("k")).toBe(1)
      // With RESP3, the handshake itself checks HELLO's reply.
      const hello = yield* failure(Effect.scoped(Resp.make({ port: server.port, protocol: 3 })))
      expect(hello).toMatchObject({ _tag: "UnexpectedReply", command: "HELLO", expected: "a map" })
    }))
})
