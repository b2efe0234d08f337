/**
 * Echo server: `bun examples/echo/server.ts`, `deno run -A examples/echo/server.ts`, or on Node
 * `npx tsx examples/echo/server.ts`. Port from `PORT` (default 7000), host from `HOST` (default
 * 127.0.0.1). Stops gracefully on SIGINT / SIGTERM.
 */
import { Effect, Fiber } from "effect"
import { Server, Transport } from "../../src/index.ts"
import { pipeline } from "./protocol.ts"

const env = (name: string): string | undefined =>
  (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env[name]

const port = Number(env("PORT") ?? 7000)
const host = env("HOST") ?? "127.0.0.1"

const main = Effect.gen(function* () {
  const server = yield* Server.serve({ pipeline, host, port })
  yield* Effect.log(`echo server (${Transport.runtime}) listening on ${Transport.formatAddress(server.address)}`)
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
