/**
 * The sluice echo server for the benchmarks: the echo protocol of examples/echo with a choice of
 * handler style, and the default session options (high/low water marks, `maxOutboundBytes`,
 * `writeTimeout`).
 *
 * `HANDLER=sync|succeed|handler-gen|gen PORT=7000 bun bench/servers/sluice.ts`, or with
 * `deno run -A bench/servers/sluice.ts`, or `node --import tsx bench/servers/sluice.ts`.
 *
 * - `sync`: `Handler.sync((payload) => payload)`, exactly examples/echo/protocol.ts;
 * - `succeed`: `Handler.effect((payload) => Effect.succeed(payload))`;
 * - `handler-gen`: `Handler.gen(function* (payload) { return payload })`, a generator made once;
 * - `gen`: `Handler.effect((payload) => Effect.gen(function* () { return payload }))`, a new
 *   generator per message, which is what most Effect users write.
 */
import { Effect, Fiber } from "effect"
import { Handler, Packet, Pipeline, Server, Transport } from "../../src/index.ts"
import { framer, pipeline as syncPipeline } from "../../examples/echo/protocol.ts"

const env = (name: string): string | undefined =>
  (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env[name]

const style = env("HANDLER") ?? "sync"
const port = Number(env("PORT") ?? 7000)
const host = env("HOST") ?? "127.0.0.1"

const pipeline = style === "sync" ? syncPipeline : style === "succeed"
  ? Pipeline.make({
    framer,
    codec: Packet.bytes,
    handler: Handler.effect((payload: Uint8Array) => Effect.succeed(payload))
  })
  : style === "handler-gen"
  ? Pipeline.make({
    framer,
    codec: Packet.bytes,
    // deno-lint-ignore require-yield
    handler: Handler.gen(function* (payload: Uint8Array) {
      return payload
    })
  })
  : style === "gen"
  ? Pipeline.make({
    framer,
    codec: Packet.bytes,
    handler: Handler.effect((payload: Uint8Array) =>
      // The style under test: a generator handler, even with nothing to yield.
      // deno-lint-ignore require-yield
      Effect.gen(function* () {
        return payload
      })
    )
  })
  : undefined
if (pipeline === undefined) throw new Error(`HANDLER must be sync, succeed, handler-gen or gen, not ${style}`)

const main = Effect.gen(function* () {
  const server = yield* Server.serve({ pipeline, host, port })
  yield* Effect.log(
    `sluice echo server (${Transport.runtime}, HANDLER=${style}) listening on ${
      Transport.formatAddress(server.address)
    }`
  )
  return yield* Effect.never
})

const fiber = Effect.runFork(Effect.scoped(main))
const stop = () => {
  Effect.runFork(Fiber.interrupt(fiber))
}
const proc = (globalThis as { process?: { on(signal: string, f: () => void): void } }).process
proc?.on("SIGINT", stop)
proc?.on("SIGTERM", stop)
