/**
 * What the example client does with the user service, typed per method by effect/rpc's `RpcClient`:
 * a call, a declared error caught by its tag, a stream, a slow call cut short by a time-out, and many
 * calls in flight at once over the one connection. It needs an `RpcClient.Protocol`:
 * `layerProtocolClient` from `sluice/rpc` (see `client.ts`).
 */
import { Effect, Option, Stream } from "effect"
import { RpcClient } from "effect/rpc"
import { Api } from "./api.ts"

export const calls = Effect.gen(function* () {
  const client = yield* RpcClient.make(Api)

  const greeting = yield* client.Greet({ name: "sluice" })

  const ada = yield* client.GetUser({ id: 1 })
  // A declared error arrives typed: `UserNotFound`, with its fields.
  const missing = yield* client.GetUser({ id: 404 }).pipe(
    Effect.map((user) => `found ${user.name}`),
    Effect.catchTag("UserNotFound", (error) => Effect.succeed(`no user ${error.id}`))
  )

  const counted = yield* Stream.runCollect(client.Count({ to: 5 }))

  // The caller gives up after 50 ms; the server's handler is interrupted too.
  const slow = yield* client.Sleep({ millis: 10_000 }).pipe(Effect.timeoutOption("50 millis"))

  const many = yield* Effect.forEach(
    Array.from({ length: 100 }, (_, i) => i),
    (i) => client.Greet({ name: `caller ${i}` }),
    { concurrency: "unbounded" }
  )

  return {
    greeting,
    user: ada.name,
    missing,
    counted: Array.from(counted),
    slow: Option.isNone(slow) ? "timed out" : `slept ${slow.value} ms`,
    many: many.length
  }
})
