/**
 * Rooms shared between chat servers through Redis pub/sub, with sluice's own RESP client
 * (examples/resp/client.ts). Every server publishes what is said in its rooms on one channel, and
 * tells its own members what the others published:
 *
 * ```text
 *  nc ── chat server A ──PUBLISH sluice-chat "A\tlobby\tada: hi"──▶ Redis ──message──▶ chat server B ── nc
 *                      ◀────────────────────── SUBSCRIBE sluice-chat ───────────────────────
 * ```
 *
 * A message carries the publishing server's id (so a server skips its own), the room, and the line.
 * Nicknames are unique per server and `/who` lists the members of the server asked; lines, joins,
 * leaves and renames reach everyone. If Redis goes away, the subscription's stream ends, the failure is
 * logged and the server goes on serving its own members.
 */
import { Effect, Stream } from "effect"
import * as Resp from "../resp/client.ts"
import type { Bridge, Hub } from "./hub.ts"

export const CHANNEL = "sluice-chat"

/** `redis://HOST:PORT` (the port defaults to 6379). */
export const parseRedisUrl = (url: string): { readonly host: string; readonly port: number } => {
  const parsed = new URL(url)
  if (parsed.protocol !== "redis:") throw new Error(`REDIS_URL must be redis://HOST:PORT, not ${url}`)
  return { host: parsed.hostname || "127.0.0.1", port: parsed.port === "" ? 6379 : Number(parsed.port) }
}

/** Connects to Redis (twice: commands, and the subscription), for as long as the scope is open. */
export const connectBridge = (hub: Hub, url: string) =>
  Effect.gen(function* () {
    const address = parseRedisUrl(url)
    const id = crypto.randomUUID().slice(0, 8)
    const redis = yield* Resp.make({ ...address, name: `sluice-chat-${id}` })
    const subscriber = yield* redis.subscriber({ capacity: 10_000 })
    yield* subscriber.subscribe(CHANNEL)
    yield* subscriber.messages.pipe(
      Stream.runForEach((message) => {
        const [from, room, ...rest] = message.message.split("\t")
        if (from === id || room === undefined || rest.length === 0) return Effect.void
        return hub.deliver(room, rest.join("\t"))
      }),
      Effect.catchCause((cause) => Effect.logError("chat: the Redis subscription ended; rooms are local now", cause)),
      Effect.forkScoped
    )
    const bridge: Bridge = {
      publish: (room, line) =>
        redis.publish(CHANNEL, `${id}\t${room}\t${line}`).pipe(
          Effect.asVoid,
          // A line other servers miss is not the speaker's error: it is logged, the chat goes on.
          Effect.catch((error) => Effect.logWarning(`chat: a line was not published to Redis: ${error.message}`))
        )
    }
    return bridge
  })
