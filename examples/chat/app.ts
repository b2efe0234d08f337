/**
 * A chat server, as a scoped Effect: `serve` listens until its scope closes. With `redisUrl` it shares
 * its rooms with every other chat server on the same Redis (see bridge.ts).
 */
import { Effect } from "effect"
import { Server } from "../../src/index.ts"
import { connectBridge } from "./bridge.ts"
import { Hub } from "./hub.ts"
import { chat, type Config } from "./protocol.ts"

export interface Options extends Config {
  readonly host?: string | undefined
  readonly port?: number | undefined
  /** `redis://HOST:PORT`: share rooms through Redis pub/sub. */
  readonly redisUrl?: string | undefined
}

export const serve = (options: Options = {}) =>
  Effect.gen(function* () {
    const hub = new Hub()
    if (options.redisUrl !== undefined) hub.bridge = yield* connectBridge(hub, options.redisUrl)
    const server = yield* Server.serve({
      ...chat(hub, options),
      host: options.host ?? "127.0.0.1",
      port: options.port ?? 0,
      name: "chat"
    })
    return { server, hub }
  })
