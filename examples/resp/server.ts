/**
 * A Redis-compatible server (RESP2 and RESP3): `bun examples/resp/server.ts`,
 * `deno run -A examples/resp/server.ts`, or on Node `node --import tsx examples/resp/server.ts`.
 * Port from `PORT` (default 6379), host from `HOST` (default 127.0.0.1). Stops gracefully on SIGINT
 * / SIGTERM. Talk to it with `redis-cli -p 6379`, ioredis, node-redis, or examples/resp/client.ts.
 */
import { Effect, Fiber } from "effect"
import { Transport } from "../../src/index.ts"
import { serve } from "./app.ts"

const env = (name: string): string | undefined =>
  (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env[name]

const port = Number(env("PORT") ?? 6379)
const host = env("HOST") ?? "127.0.0.1"

const main = Effect.gen(function* () {
  const resp = yield* serve({ host, port })
  yield* Effect.log(
    `resp server (${Transport.runtime}) listening on ${Transport.formatAddress(resp.server.address)}`
  )
  return yield* Effect.never
})

const fiber = Effect.runFork(Effect.scoped(main))
fiber.addObserver(() => process.exit(0))
const stop = () => {
  Effect.runFork(Fiber.interrupt(fiber))
}
const proc = (globalThis as { process?: { on(signal: string, f: () => void): void } }).process
proc?.on("SIGINT", stop)
proc?.on("SIGTERM", stop)
