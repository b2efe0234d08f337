/**
 * The user service (`examples/rpc/api.ts`) served over sluice: `bun examples/rpc/server.ts`,
 * `deno run -A examples/rpc/server.ts`, or on Node `node --import tsx examples/rpc/server.ts`. Port
 * from `PORT` (default 7001), host from `HOST` (default 127.0.0.1). Stops gracefully on SIGINT /
 * SIGTERM, exit code 0.
 */
import { Cause, Effect, Exit, Fiber } from "effect"
import { Server, Transport } from "../../src/index.ts"
import { layer } from "./service.ts"

const env = (name: string): string | undefined =>
  (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env[name]

const port = Number(env("PORT") ?? 7001)
const host = env("HOST") ?? "127.0.0.1"

const main = Effect.gen(function* () {
  const server = yield* Server.Server
  yield* Effect.log(`rpc server (${Transport.runtime}) listening on ${Transport.formatAddress(server.address)}`)
  return yield* Effect.never
}).pipe(Effect.provide(layer({ host, port })))

const fiber = Effect.runFork(main)
// Exit code 0 after a stop (an interruption), 1 when the server failed (the port was taken, say).
fiber.addObserver((exit) => {
  if (Exit.isFailure(exit) && !Cause.hasInterruptsOnly(exit.cause)) {
    console.error(Cause.pretty(exit.cause))
    process.exit(1)
  }
  console.log("rpc server stopped")
  process.exit(0)
})
const stop = () => {
  Effect.runFork(Fiber.interrupt(fiber))
}
const proc = (globalThis as { process?: { on(signal: string, f: () => void): void } }).process
proc?.on("SIGINT", stop)
proc?.on("SIGTERM", stop)
