/**
 * Calls the user service (`examples/rpc/server.ts`) with effect/rpc's `RpcClient` over sluice:
 * `bun examples/rpc/client.ts`, `deno run -A examples/rpc/client.ts`, or on Node
 * `node --import tsx examples/rpc/client.ts`. Server from `PORT` (default 7001) and `HOST` (default
 * 127.0.0.1). Prints what each call answered, as JSON; exit code 0, or 1 if a call failed.
 */
import { Cause, Effect, Exit } from "effect"
import { layerProtocolClient } from "../../src/rpc.ts"
import { calls } from "./calls.ts"

const env = (name: string): string | undefined =>
  (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env[name]

const port = Number(env("PORT") ?? 7001)
const host = env("HOST") ?? "127.0.0.1"

const program = calls.pipe(Effect.scoped, Effect.provide(layerProtocolClient({ host, port })))

Effect.runPromiseExit(program).then((exit) => {
  if (Exit.isSuccess(exit)) {
    console.log(JSON.stringify(exit.value))
    process.exit(0)
  }
  console.error(Cause.pretty(exit.cause))
  process.exit(1)
})
