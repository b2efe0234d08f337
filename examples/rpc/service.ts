/**
 * The user service's handlers, and the server as a Layer: effect/rpc's `RpcServer` for `Api`, over
 * sluice's server protocol. `examples/rpc/server.ts` runs it; tests build it in-process.
 */
import { Effect, Layer, Stream } from "effect"
import { RpcServer } from "effect/rpc"
import { layerCatchDefects, layerProtocolServer, type ServerOptions } from "../../src/rpc.ts"
import { Api, User, UserNotFound } from "./api.ts"

const users = new Map<number, User>([
  [1, new User({ id: 1, name: "Ada" })],
  [2, new User({ id: 2, name: "Grace" })]
])

export const handlers = Api.toLayer({
  Greet: ({ name }) => Effect.succeed(`hello, ${name}`),
  GetUser: ({ id }) => {
    const user = users.get(id)
    return user === undefined ? Effect.fail(new UserNotFound({ id })) : Effect.succeed(user)
  },
  Count: ({ to }) => Stream.range(1, to),
  Sleep: ({ millis }) => Effect.as(Effect.sleep(millis), millis)
})

/** The whole server: `RpcServer` for `Api`, its handlers, and sluice's protocol listening with `options`. */
export const layer = (options: ServerOptions) =>
  RpcServer.layer(Api).pipe(
    Layer.provide([handlers, layerCatchDefects]),
    Layer.provideMerge(layerProtocolServer(options))
  )
