/**
 * Chat server: `bun examples/chat/server.ts`, `deno run -A examples/chat/server.ts`, or on Node
 * `node --import tsx examples/chat/server.ts`; then `nc 127.0.0.1 7002`. Port from `PORT` (default
 * 7002), host from `HOST` (default 127.0.0.1); `REDIS_URL=redis://HOST:PORT` shares the rooms with
 * other chat servers on that Redis. Stops gracefully on SIGINT / SIGTERM.
 */
import { Cause, Effect, Exit, Fiber } from "effect"
import { Transport } from "../../src/index.ts"
import { serve } from "./app.ts"

const env = (name: string): string | undefined =>
  (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env[name]

const main = Effect.gen(function* () {
  const redisUrl = env("REDIS_URL")
  const { server } = yield* serve({
    host: env("HOST") ?? "127.0.0.1",
    port: Number(env("PORT") ?? 7002),
    redisUrl: redisUrl === "" ? undefined : redisUrl
  })
  yield* Effect.log(
    `chat server (${Transport.runtime}) listening on ${Transport.formatAddress(server.address)}` +
      (redisUrl ? `, rooms shared through ${redisUrl}` : "")
  )
  return yield* Effect.never
})

const fiber = Effect.runFork(Effect.scoped(main))
// Interrupted by a signal is a graceful stop (0); anything else that ends it is a failure (1).
fiber.addObserver((exit) => process.exit(Exit.isFailure(exit) && !Cause.hasInterruptsOnly(exit.cause) ? 1 : 0))
const stop = () => {
  Effect.runFork(Fiber.interrupt(fiber))
}
const proc = (globalThis as { process?: { on(signal: string, f: () => void): void } }).process
proc?.on("SIGINT", stop)
proc?.on("SIGTERM", stop)
