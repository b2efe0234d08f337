/**
 * The RESP example (examples/resp) driven by node-redis 6 (the `redis` package) with its default
 * settings: RESP3 (HELLO 3, no fallback), CLIENT SETINFO, and a CLIENT MAINT_NOTIFICATIONS that a
 * Redis 7 server refuses and node-redis ignores; then with `RESP: 2`, where subscribed mode applies.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { createClient } from "redis"
import { type RespServer, serve } from "../../examples/resp/app.ts"

type NodeRedis = ReturnType<typeof createClient>

const withServer = <A>(f: (resp: RespServer) => Promise<A>) =>
  Effect.gen(function* () {
    const resp = yield* serve({ port: 0 })
    return yield* Effect.promise(() => f(resp))
  })

/** A connected node-redis client (default settings unless `resp` says 2), closed when `f` is done. */
const withClient = async <A>(port: number, f: (client: NodeRedis) => Promise<A>, resp?: 2): Promise<A> => {
  const client: NodeRedis = createClient({
    socket: { host: "127.0.0.1", port, reconnectStrategy: false },
    ...(resp === 2 ? { RESP: 2 } : {})
  }) as NodeRedis
  const errors: Array<unknown> = []
  client.on("error", (error) => errors.push(error))
  await client.connect()
  try {
    return await f(client)
  } finally {
    client.destroy()
    // No socket or protocol error was reported while the client was in use.
    expect(errors).toEqual([])
  }
}

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

describe("RESP server with node-redis 6 (default settings)", () => {
  it.live("connects over RESP3 with its handshake, and reports no error", () =>
    withServer((resp) =>
      withClient(resp.port, async (client) => {
        expect(await client.ping()).toBe("PONG")
        expect(client.isReady).toBe(true)
        const conns = [...resp.shared.conns.values()]
        // node-redis has no fallback: a refused HELLO 3 would have failed `connect`.
        expect(conns.map((c) => [c.proto.version, c.libName])).toEqual([[3, "node-redis"]])
        expect(await client.hello()).toMatchObject({ server: "sluice", proto: 3, mode: "standalone", role: "master" })
      })
    ))

  it.live("strings and counters, with typed replies", () =>
    withServer((resp) =>
      withClient(resp.port, async (client) => {
        expect(await client.set("k", "v", { NX: true })).toBe("OK")
        expect(await client.set("k", "w", { NX: true })).toBe(null)
        expect(await client.set("k", "x", { GET: true })).toBe("v")
        expect(await client.set("k", "y", { expiration: { type: "EX", value: 60 } })).toBe("OK")
        expect(await client.ttl("k")).toBe(60)
        expect(await client.get("k")).toBe("y")
        expect(await client.incrBy("n", 10)).toBe(10)
        expect(await client.decrBy("n", 3)).toBe(7)
        expect(await client.incr("n")).toBe(8)
        expect(await client.decr("n")).toBe(7)
        expect(await client.append("k", "z")).toBe(2)
        expect(await client.strLen("k")).toBe(2)
        expect(await client.mSet({ a: "1", b: "2" })).toBe("OK")
        expect(await client.mGet(["a", "b", "c"])).toEqual(["1", "2", null])
        expect(await client.exists(["a", "b", "c"])).toBe(2)
        expect(await client.del(["a", "b", "c"])).toBe(2)
        expect(await client.expire("k", 100)).toBe(1)
        expect(await client.pExpire("k", 50_000, "LT")).toBe(1)
        expect(await client.persist("k")).toBe(1)
        expect(await client.pTTL("k")).toBe(-1)
        expect((await client.keys("*")).sort()).toEqual(["k", "n"])
        expect(await client.dbSize()).toBe(2)
        expect(await client.rPush("l", ["1", "2", "3"])).toBe(3)
        expect(await client.lRange("l", 1, -1)).toEqual(["2", "3"])
        expect(await client.lLen("l")).toBe(3)
        expect(await client.flushAll()).toBe("OK")
        expect(await client.dbSize()).toBe(0)
      })
    ))

  it.live("error replies become node-redis ErrorReplys with Redis's texts; the connection goes on", () =>
    withServer((resp) =>
      withClient(resp.port, async (client) => {
        await client.lPush("list", "x")
        expect(await rejection(client.incr("list"))).toBe(
          "WRONGTYPE Operation against a key holding the wrong kind of value"
        )
        await client.set("big", "-9223372036854775808")
        expect(await rejection(client.decr("big"))).toBe("ERR increment or decrement would overflow")
        expect(await rejection(client.sendCommand(["GET"]))).toBe("ERR wrong number of arguments for 'get' command")
        expect(await rejection(client.sendCommand(["FROB", "x"]))).toBe(
          "ERR unknown command 'FROB', with args beginning with: 'x' "
        )
        expect(await client.ping()).toBe("PONG")
      })
    ))

  it.live("commands issued together are pipelined and answered in order", () =>
    withServer((resp) =>
      withClient(resp.port, async (client) => {
        // node-redis writes commands issued in the same tick in one batch.
        const replies = await Promise.all(
          Array.from({ length: 200 }, (_, i) => i % 2 === 0 ? client.incr("c") : client.get("c"))
        )
        expect(replies).toEqual(Array.from({ length: 200 }, (_, i) => i % 2 === 0 ? i / 2 + 1 : String((i + 1) / 2)))
        const batch = await client.multi().set("x", "1").incr("x").get("x").execAsPipeline()
        expect(batch).toEqual(["OK", 2, "2"])
      })
    ))

  it.live("pub/sub on a duplicate connection: messages in order, PUBLISH counts them, pattern subscriptions", () =>
    withServer((resp) =>
      withClient(resp.port, async (client) => {
        const subscriber = client.duplicate()
        await subscriber.connect()
        try {
          const received: Array<string> = []
          await subscriber.subscribe("room", (message, channel) => received.push(`${channel}:${message}`))
          await subscriber.pSubscribe("ro*", (message, channel) => received.push(`p ${channel}:${message}`))
          for (let i = 0; i < 20; i++) expect(await client.publish("room", `m${i}`)).toBe(2)
          await until("40 messages", () => received.length === 40)
          expect(received.filter((m) => !m.startsWith("p "))).toEqual(
            Array.from({ length: 20 }, (_, i) => `room:m${i}`)
          )
          await subscriber.unsubscribe("room")
          await subscriber.pUnsubscribe("ro*")
          expect(await client.publish("room", "gone")).toBe(0)
        } finally {
          subscriber.destroy()
        }
      })
    ))

  it.live("with RESP: 2, a subscribed connection is in subscribed mode and still gets its messages", () =>
    withServer((resp) =>
      withClient(resp.port, async (client) => {
        const subscriber = client.duplicate()
        await subscriber.connect()
        try {
          const received: Array<string> = []
          await subscriber.subscribe("c", (message) => received.push(message))
          const conns = [...resp.shared.conns.values()]
          expect(conns.map((c) => c.proto.version)).toEqual([2, 2])
          expect(await client.publish("c", "hello")).toBe(1)
          await until("the message", () => received.length === 1)
          expect(received).toEqual(["hello"])
        } finally {
          subscriber.destroy()
        }
      }, 2)
    ))
})
