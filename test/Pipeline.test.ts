import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Either, Schema, Stream } from "effect"
import { Bytes, Codec, Frame, Handler, Packet, Pipeline } from "../src/index.ts"

const Request = Schema.Struct({
  id: Schema.Number,
  op: Schema.Literal("add", "refuse", "throw", "slow"),
  a: Schema.Number,
  b: Schema.Number
})
const Response = Schema.Struct({ id: Schema.Number, sum: Schema.Number })
type Request = typeof Request.Type
type Response = typeof Response.Type

class Refused extends Schema.TaggedError<Refused>()("Refused", { id: Schema.Number }) {}

const framer = Frame.lengthField()
const codec = Codec.duplex({ decode: Packet.schema(Request, "json"), encode: Packet.schema(Response, "json") })

const wire = (messages: ReadonlyArray<unknown>): Uint8Array =>
  Bytes.concat(messages.map((m) => Frame.encode(framer, Bytes.fromString(JSON.stringify(m)))))

const replies = (chunks: Chunk.Chunk<Uint8Array>): Array<unknown> =>
  Either.getOrThrow(Frame.decodeAll(framer, chunks)).map((f) => JSON.parse(Bytes.toString(f)))

/** Splits bytes into chunks of the given sizes (cycled). */
const split = (bytes: Uint8Array, sizes: ReadonlyArray<number>): Array<Uint8Array> => {
  const out: Array<Uint8Array> = []
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const size = sizes[i % sizes.length]!
    out.push(bytes.slice(at, at + size))
    at += size
  }
  return out
}

const add = (req: Request): Response => ({ id: req.id, sum: req.a + req.b })

describe("Pipeline", () => {
  it.effect("answers a Schema request/response protocol over an in-memory stream, whatever the chunking", () =>
    Effect.gen(function* () {
      const pipeline = Pipeline.make({ framer, codec, handler: Handler.sync(add) })
      const requests = Array.from({ length: 50 }, (_, id) => ({ id, op: "add", a: id, b: 2 * id }))
      for (const sizes of [[1], [3, 1, 7], [1000]]) {
        const out = yield* Stream.fromIterable(split(wire(requests), sizes)).pipe(
          Pipeline.transform(pipeline),
          Stream.runCollect
        )
        expect(replies(out)).toEqual(requests.map((r) => ({ id: r.id, sum: 3 * r.id })))
      }
    }))

  it.effect("a packet that fails its Schema ends the stream with PacketDecodeError by default", () =>
    Effect.gen(function* () {
      const pipeline = Pipeline.make({ framer, codec, handler: Handler.sync(add) })
      const input = wire([{ id: 1, op: "add", a: 1, b: 1 }, { id: "nope" }, { id: 3, op: "add", a: 1, b: 1 }])
      const exit = yield* Stream.make(input).pipe(Pipeline.transform(pipeline), Stream.runCollect, Effect.either)
      expect(Either.isLeft(exit) && exit.left._tag).toBe("PacketDecodeError")
    }))

  it.effect("handler failures recovered with catchTag become replies and the stream carries on", () =>
    Effect.gen(function* () {
      const pipeline = Pipeline.make({
        framer,
        codec,
        handler: Handler.effect((req: Request) =>
          req.op === "refuse" ? Effect.fail(new Refused({ id: req.id })) : Effect.succeed(add(req))
        )
      }).pipe(
        Pipeline.catchTag("Refused", (e) => Effect.succeed({ id: e.id, sum: -1 })),
        Pipeline.catchTag("PacketDecodeError", () => Effect.succeed({ id: -1, sum: -1 }))
      )
      const input = wire([
        { id: 1, op: "add", a: 1, b: 1 },
        { id: 2, op: "refuse", a: 0, b: 0 },
        { bad: true },
        { id: 4, op: "add", a: 2, b: 2 }
      ])
      const out = yield* Stream.make(input).pipe(Pipeline.transform(pipeline), Stream.runCollect)
      expect(replies(out)).toEqual([{ id: 1, sum: 2 }, { id: 2, sum: -1 }, { id: -1, sum: -1 }, { id: 4, sum: 4 }])
    }))

  it.effect("a sync handler that throws fails with HandlerError, after the replies before it", () =>
    Effect.gen(function* () {
      const pipeline = Pipeline.make({
        framer,
        codec,
        handler: Handler.sync((req: Request) => {
          if (req.op === "throw") throw new Error("boom")
          return add(req)
        })
      })
      const input = wire([{ id: 1, op: "add", a: 1, b: 1 }, { id: 2, op: "throw", a: 0, b: 0 }])
      const seen: Array<Uint8Array> = []
      const exit = yield* Stream.make(input).pipe(
        Pipeline.transform(pipeline),
        Stream.runForEach((bytes) => Effect.sync(() => seen.push(bytes))),
        Effect.either
      )
      expect(Either.isLeft(exit) && exit.left._tag).toBe("HandlerError")
      expect(replies(Chunk.fromIterable(seen))).toEqual([{ id: 1, sum: 2 }])
    }))

  it.effect("Effect.gen handlers that suspend keep request order", () =>
    Effect.gen(function* () {
      const pipeline = Pipeline.make({
        framer,
        codec,
        handler: Handler.effect((req: Request) =>
          Effect.gen(function* () {
            if (req.id % 3 === 0) yield* Effect.yieldNow()
            return add(req)
          })
        )
      })
      const requests = Array.from({ length: 20 }, (_, id) => ({ id, op: "add", a: id, b: 0 }))
      const out = yield* Stream.fromIterable(split(wire(requests), [5, 40])).pipe(
        Pipeline.transform(pipeline),
        Stream.runCollect
      )
      expect(replies(out)).toEqual(requests.map((r) => ({ id: r.id, sum: r.id })))
    }))
})
