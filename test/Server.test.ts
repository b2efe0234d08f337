import { describe, expect, it } from "@effect/vitest"
import { Effect, Metric, Result, Schema } from "effect"
import { Bytes, Client, Frame, Handler, Metrics, Packet, Pipeline, Server } from "../src/index.ts"
import { transport as nodeTransport } from "../src/transport/node.ts"
import { peer } from "./util/peer.ts"

const framer = Frame.lengthField()
const echo = Pipeline.make({ framer, codec: Packet.bytes, handler: Handler.sync((b: Uint8Array) => b) })

const frame = (text: string) => Frame.encode(framer, Bytes.fromString(text))
const decode = (bytes: Uint8Array) => Result.getOrThrow(Frame.decodeAll(framer, [bytes])).map(Bytes.toString)

describe("Server", () => {
  it.live("echoes frames split at random byte boundaries", () =>
    Effect.gen(function* () {
      const server = yield* Server.serve({ pipeline: echo, transport: nodeTransport })
      const client = yield* peer(server.port)
      const messages = Array.from({ length: 200 }, (_, i) => `message ${i} ${"x".repeat(i % 37)}`)
      const wire = Bytes.concat(messages.map(frame))
      for (let at = 0; at < wire.length;) {
        const size = 1 + Math.floor(Math.random() * 50)
        client.write(wire.subarray(at, at + size))
        at += size
      }
      const got = yield* Effect.promise(() => client.waitFor(wire.length))
      expect(decode(got)).toEqual(messages)
    }))
})

describe("Client", () => {
  it.live("1000 concurrent correlated requests over one connection, answered out of order", () =>
    Effect.gen(function* () {
      const Msg = Schema.Struct({ id: Schema.Number, n: Schema.Number })
      const codec = Packet.schema(Msg, "msgpack")
      const server = yield* Server.serve({
        transport: nodeTransport,
        pipeline: Pipeline.make({
          framer,
          codec,
          handler: Handler.effect((m: typeof Msg.Type) =>
            Effect.as(Effect.sleep(`${(m.id * 7919) % 20} millis`), { id: m.id, n: m.n * 2 })
          ).pipe(Handler.concurrent(1000, { ordered: false }))
        })
      })
      const client = yield* Client.make({
        transport: nodeTransport,
        port: server.port,
        framer,
        codec,
        correlate: { request: (m) => m.id, response: (m) => m.id }
      })
      const order: Array<number> = []
      const results = yield* Effect.forEach(
        Array.from({ length: 1000 }, (_, id) => id),
        (id) => Effect.tap(client.request({ id, n: id }), (r) => Effect.sync(() => order.push(r.id))),
        { concurrency: "unbounded" }
      )
      expect(results.map((r) => r.n)).toEqual(Array.from({ length: 1000 }, (_, id) => id * 2))
      // The server answered out of order, so matching by arrival order would have failed.
      expect(order).not.toEqual([...order].sort((a, b) => a - b))
    }))
})

describe("Metrics", () => {
  it.live("count connections, bytes, frames and why sessions ended", () =>
    Effect.gen(function* () {
      // A snapshot: the state's map is live.
      const before = new Map((yield* Metric.value(Metrics.sessionsEnded)).occurrences)
      const bytesBefore = (yield* Metric.value(Metrics.bytesIn)).count
      const framesBefore = (yield* Metric.value(Metrics.framesIn)).count
      const server = yield* Server.serve({ pipeline: echo, transport: nodeTransport })
      const client = yield* peer(server.port)
      const hello = frame("hello")
      client.write(hello)
      yield* Effect.promise(() => client.waitFor(hello.length))
      // A header announcing more than maxFrameLength ends the session with FrameTooLarge.
      client.write(new Uint8Array([0x7f, 0xff, 0xff, 0xff]))
      yield* Effect.promise(() => client.closed)
      const ended = (tag: string, occurrences: ReadonlyMap<string, number>) => occurrences.get(tag) ?? 0
      let after = (yield* Metric.value(Metrics.sessionsEnded)).occurrences
      for (let i = 0; i < 100 && ended("FrameTooLarge", after) === ended("FrameTooLarge", before); i++) {
        yield* Effect.sleep("20 millis")
        after = (yield* Metric.value(Metrics.sessionsEnded)).occurrences
      }
      expect(ended("FrameTooLarge", after)).toBe(ended("FrameTooLarge", before) + 1)
      expect((yield* Metric.value(Metrics.bytesIn)).count - bytesBefore).toBe(hello.length + 4)
      expect((yield* Metric.value(Metrics.framesIn)).count - framesBefore).toBe(1)
    }))
})
