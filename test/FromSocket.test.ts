import * as Socket from "@effect/platform/Socket"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { Bytes, Frame, Handler, Packet, Pipeline, Session, Transport } from "../src/index.ts"

describe("Transport.fromSocket", () => {
  it.live("runs a session over an @effect/platform Socket, one message per frame", () =>
    Effect.scoped(Effect.gen(function* () {
      // An in-memory duplex: what the peer writes to `toServer` the session reads, and back.
      const toServer = new TransformStream<Uint8Array, Uint8Array>()
      const toPeer = new TransformStream<Uint8Array, Uint8Array>()
      const socket = yield* Socket.fromTransformStream(
        Effect.succeed({ readable: toServer.readable, writable: toPeer.writable })
      )
      const connection = yield* Transport.fromSocket(socket)
      const closes: Array<string> = []
      const fiber = yield* Effect.fork(Session.run(connection, {
        pipeline: Pipeline.make({
          framer: Frame.datagram(),
          codec: Packet.utf8,
          handler: Handler.syncMany((text: string) => [text.toUpperCase(), `${text.length}`])
        }),
        onClose: (_, reason) => Effect.sync(() => closes.push(reason._tag))
      }))
      const writer = toServer.writable.getWriter()
      const reader = toPeer.readable.getReader()
      yield* Effect.promise(() => writer.write(Bytes.fromString("hello")))
      const replies: Array<string> = []
      for (let i = 0; i < 2; i++) {
        const { value } = yield* Effect.promise(() => reader.read())
        replies.push(Bytes.toString(value!))
      }
      // Two replies to one message stay two messages: a message-oriented framer is never coalesced.
      expect(replies).toEqual(["HELLO", "5"])
      yield* Effect.promise(() => writer.close())
      const reason = yield* Fiber.join(fiber)
      expect(reason._tag).toBe("PeerClosed")
      expect(closes).toEqual(["PeerClosed"])
    })))
})
