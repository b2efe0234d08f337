import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Result, Schema, Stream } from "effect"
import { TestClock } from "effect/testing"
import { Bytes, Codec, Frame, Handler, Packet, Pipeline } from "../src/index.ts"

const Request = Schema.Struct({
  id: Schema.Number,
  op: Schema.Literals(["add", "refuse", "throw", "slow"]),
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

const replies = (chunks: ReadonlyArray<Uint8Array>): Array<unknown> =>
  Result.getOrThrow(Frame.decodeAll(framer, chunks)).map((f) => JSON.parse(Bytes.toString(f)))

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
      const exit = yield* Stream.make(input).pipe(Pipeline.transform(pipeline), Stream.runCollect, Effect.result)
      expect(Result.isFailure(exit) && exit.failure._tag).toBe("PacketDecodeError")
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
        Effect.result
      )
      expect(Result.isFailure(exit) && exit.failure._tag).toBe("HandlerError")
      expect(replies(seen)).toEqual([{ id: 1, sum: 2 }])
    }))

  it.effect("Effect.gen handlers that suspend keep request order", () =>
    Effect.gen(function* () {
      const pipeline = Pipeline.make({
        framer,
        codec,
        handler: Handler.effect((req: Request) =>
          Effect.gen(function* () {
            if (req.id % 3 === 0) yield* Effect.yieldNow
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

  it.live("concurrent(n) keeps request order when handlers finish out of order, with exactly n in flight at the peak", () =>
    Effect.gen(function* () {
      const limit = 4
      let running = 0
      let peak = 0
      const pipeline = Pipeline.make({
        framer,
        codec,
        handler: Handler.effect((req: Request) =>
          Effect.gen(function* () {
            running++
            peak = Math.max(peak, running)
            // Later requests finish first within each window.
            yield* Effect.sleep(`${(limit - (req.id % limit)) * 3} millis`)
            running--
            return add(req)
          })
        ).pipe(Handler.concurrent(limit))
      })
      const requests = Array.from({ length: 24 }, (_, id) => ({ id, op: "add", a: id, b: 1 }))
      const out = yield* Stream.fromIterable(split(wire(requests), [200, 17])).pipe(
        Pipeline.transform(pipeline),
        Stream.runCollect
      )
      expect(replies(out)).toEqual(requests.map((r) => ({ id: r.id, sum: r.id + 1 })))
      expect(peak).toBe(limit)
    }))

  it.live("concurrent(n, { ordered: false }) writes each reply as soon as it is ready", () =>
    Effect.gen(function* () {
      const pipeline = Pipeline.make({
        framer,
        codec,
        handler: Handler.effect((req: Request) => Effect.as(Effect.sleep(`${(5 - req.id) * 10} millis`), add(req)))
          .pipe(
            Handler.concurrent(5, { ordered: false })
          )
      })
      const requests = Array.from({ length: 5 }, (_, id) => ({ id, op: "add", a: id, b: 0 }))
      const out = yield* Stream.make(wire(requests)).pipe(Pipeline.transform(pipeline), Stream.runCollect)
      expect(replies(out).map((r) => (r as Response).id)).toEqual([4, 3, 2, 1, 0])
    }))

  it.live("a concurrent handler failure ends the stream with its typed error", () =>
    Effect.gen(function* () {
      const pipeline = Pipeline.make({
        framer,
        codec,
        handler: Handler.effect((req: Request) =>
          req.op === "refuse" ? Effect.fail(new Refused({ id: req.id })) : Effect.as(Effect.sleep("1 millis"), add(req))
        ).pipe(Handler.concurrent(3))
      })
      const input = wire([{ id: 1, op: "add", a: 1, b: 1 }, { id: 2, op: "refuse", a: 0, b: 0 }])
      const exit = yield* Stream.make(input).pipe(Pipeline.transform(pipeline), Stream.runCollect, Effect.result)
      expect(Result.isFailure(exit) && exit.failure._tag).toBe("Refused")
    }))

  it.effect("a handler answering zero or many messages", () =>
    Effect.gen(function* () {
      const pipeline = Pipeline.make({
        framer: Frame.lines({ maxLength: 100 }),
        codec: Packet.utf8,
        handler: Handler.syncMany((line: string) => line.split(" ").filter((w) => w.length > 0))
      })
      const out = yield* Stream.make(Bytes.fromString("a b c\n\nd\n")).pipe(
        Pipeline.transform(pipeline),
        Stream.runCollect
      )
      expect(Bytes.toString(Bytes.concat(out))).toBe("a\nb\nc\nd\n")
    }))

  it.effect("handlerTimeout fails a suspended handler with HandlerTimeout", () =>
    Effect.gen(function* () {
      const pipeline = Pipeline.make({
        framer,
        codec,
        handler: Handler.effect((req: Request) => Effect.as(Effect.never, add(req)))
      })
      const fiber = yield* Stream.make(wire([{ id: 1, op: "slow", a: 0, b: 0 }])).pipe(
        Pipeline.transform(pipeline, { handlerTimeout: "1 second" }),
        Stream.runCollect,
        Effect.result,
        Effect.forkChild
      )
      yield* TestClock.adjust("2 seconds")
      const exit = yield* Fiber.join(fiber)
      expect(Result.isFailure(exit) && exit.failure._tag).toBe("HandlerTimeout")
    }))

  it.effect("transform reads its input no further ahead than a bounded number of reply batches", () =>
    Effect.gen(function* () {
      const pipeline = Pipeline.make({ framer, codec, handler: Handler.sync(add) })
      let pulled = 0
      const input = Stream.range(1, 10_000).pipe(
        Stream.map((id) => wire([{ id, op: "add", a: 1, b: 1 }])),
        Stream.tap(() => Effect.sync(() => pulled++))
      )
      const first = yield* input.pipe(Pipeline.transform(pipeline), Stream.take(5), Stream.runCollect)
      expect(replies(first).length).toBe(5)
      // An unbounded buffer would have read all 10 000 chunks by now.
      expect(pulled).toBeLessThan(100)
    }))

  it.live("with concurrent handlers, a bad frame after complete requests still lets their replies out first", () =>
    Effect.gen(function* () {
      for (const ordered of [true, false]) {
        const pipeline = Pipeline.make({
          framer,
          codec,
          handler: Handler.effect((req: Request) => Effect.as(Effect.sleep(`${5 + req.id} millis`), add(req))).pipe(
            Handler.concurrent(4, { ordered })
          )
        })
        // Three requests, then a header announcing more than maxFrameLength, in one read.
        const input = Bytes.concat([
          wire([1, 2, 3].map((id) => ({ id, op: "add", a: id, b: 0 }))),
          new Uint8Array([0x7f, 0xff, 0xff, 0xff])
        ])
        const seen: Array<Uint8Array> = []
        const exit = yield* Stream.make(input).pipe(
          Pipeline.transform(pipeline),
          Stream.runForEach((bytes) => Effect.sync(() => seen.push(bytes))),
          Effect.result
        )
        expect(Result.isFailure(exit) && exit.failure._tag).toBe("FrameTooLarge")
        expect(replies(seen).map((r) => (r as Response).id).sort()).toEqual([1, 2, 3])
      }
    }))
})
