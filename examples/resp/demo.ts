/**
 * The RESP client in a few lines, against any Redis-compatible server: examples/resp/server.ts or a
 * real redis-server. `bun examples/resp/demo.ts` (or `deno run -A`, or `node --import tsx`); `PORT`
 * (default 6379) and `HOST` (default 127.0.0.1) say where the server is.
 */
import { Effect, Fiber, Stream } from "effect"
import * as Resp from "./client.ts"

const env = (name: string): string | undefined =>
  (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env[name]

const program = Effect.gen(function* () {
  const redis = yield* Resp.make({ port: Number(env("PORT") ?? 6379), host: env("HOST") ?? "127.0.0.1" })
  const hello = yield* redis.hello()
  yield* Effect.log(`connected over RESP${redis.protocol} to ${Resp.text(hello.get("server")!)}`)

  yield* redis.set("demo:greeting", "hello", { ex: 60 })
  yield* Effect.log(
    `GET demo:greeting: ${yield* redis.get("demo:greeting")}, TTL ${yield* redis.ttl("demo:greeting")} s`
  )
  yield* Effect.log(`INCR demo:visits: ${yield* redis.incr("demo:visits")}`)

  // An error reply is a typed failure, with Redis's code and text.
  const refused = yield* redis.incr("demo:greeting").pipe(
    Effect.catchTag("RedisError", (error) => Effect.succeed(`${error.code}: ${error.reply}`))
  )
  yield* Effect.log(`INCR demo:greeting: ${refused}`)

  // Pub/sub: the messages of a channel, on a connection of their own while the stream runs.
  const listener = yield* Effect.forkChild(redis.subscribe("demo:news").pipe(Stream.take(3), Stream.runCollect))
  while ((yield* redis.publish("demo:news", "first")) === 0) yield* Effect.sleep("10 millis")
  yield* redis.publish("demo:news", "second")
  yield* redis.publish("demo:news", "third")
  const messages = yield* Fiber.join(listener)
  yield* Effect.log(`received on demo:news: ${messages.map((m) => m.message).join(", ")}`)
  yield* redis.del("demo:greeting", "demo:visits")
})

Effect.runPromise(Effect.scoped(program)).catch((error) => {
  console.error(error)
  ;(globalThis as { process?: { exitCode?: number } }).process!.exitCode = 1
})
