/**
 * HTTP/1.1 server: `bun examples/http/server.ts`, `deno run -A examples/http/server.ts`, or on Node
 * `node --import tsx examples/http/server.ts`. Port from `PORT` (default 8080), host from `HOST`
 * (default 127.0.0.1). Stops gracefully on SIGINT / SIGTERM, with exit code 0.
 *
 * `curl http://127.0.0.1:8080/` answers `hello, world!`; see docs/examples/http.md.
 */
import { Effect, Fiber } from "effect"
import { Transport } from "../../src/index.ts"
import { serve } from "./app.ts"

const env = (name: string): string | undefined =>
  (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env[name]

const port = Number(env("PORT") ?? 8080)
const host = env("HOST") ?? "127.0.0.1"

const main = Effect.gen(function* () {
  const server = yield* serve({ host, port })
  yield* Effect.log(`http server (${Transport.runtime}) listening on ${Transport.formatAddress(server.address)}`)
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
