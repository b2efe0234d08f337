// deno-lint-ignore-file require-yield -- generators that never yield are cases under test
import { describe, expect, it } from "@effect/vitest"
import { Cause, Context, Data, Effect, Exit, FiberRef, Layer, Ref, Schema } from "effect"
import { runInline } from "../src/internal/inline.ts"
import { Bytes, Frame, Handler, Packet, Pipeline } from "../src/index.ts"

class Boom extends Data.TaggedError("Boom")<{ readonly n: number }> {}
class Counter extends Context.Tag("Counter")<Counter, { readonly next: Effect.Effect<number> }>() {}

/** What a fiber makes of the same Effect: the reference every inline result is checked against. */
const inFiber = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromiseExit(effect)

/** Runs `runInline`, and the rest in a fiber if it handed one back. */
const inline = async <A, E>(effect: Effect.Effect<A, E>) => {
  const result = runInline(effect)
  return Exit.isExit(result) ? { exit: result, suspended: false } : { exit: await inFiber(result), suspended: true }
}

describe("runInline: a handler's synchronous start without a fiber", () => {
  const cases: ReadonlyArray<[string, () => Effect.Effect<unknown, unknown>, boolean]> = [
    ["Effect.gen returning at once", () =>
      Effect.gen(function* () {
        return 42
      }), false],
    ["Effect.gen yielding Exits", () =>
      Effect.gen(function* () {
        const a = yield* Effect.succeed(1)
        const b = yield* Effect.succeed(2)
        return a + b
      }), false],
    ["Effect.gen failing with a yielded error", () =>
      Effect.gen(function* () {
        yield* Effect.succeed(1)
        return yield* new Boom({ n: 1 })
      }), true], // failing with an object captures the fiber's span: that takes a fiber
    ["Effect.gen failing with Effect.fail", () =>
      Effect.gen(function* () {
        return yield* Effect.fail("no")
      }), false],
    ["Effect.gen throwing (a defect)", () =>
      Effect.gen(function* () {
        throw new Error("thrown")
      }), false],
    ["Effect.sync", () => Effect.sync(() => "synced"), false],
    ["Effect.sync throwing", () =>
      Effect.sync(() => {
        throw new Error("sync thrown")
      }), false],
    ["Effect.suspend of an Exit", () => Effect.suspend(() => Effect.succeed("suspended")), false],
    ["Effect.fnUntraced", () =>
      Effect.fnUntraced(function* (n: number) {
        return n * 2
      })(21), false],
    ["Effect.gen that sleeps halfway", () =>
      Effect.gen(function* () {
        const a = yield* Effect.succeed(1)
        yield* Effect.sleep(1)
        const b = yield* Effect.succeed(2)
        return a + b
      }), true],
    ["Effect.gen reading a FiberRef", () =>
      Effect.gen(function* () {
        return yield* FiberRef.get(FiberRef.currentConcurrency)
      }), true],
    ["Effect.gen yielding a nested Effect.gen", () =>
      Effect.gen(function* () {
        const inner = (n: number) =>
          Effect.gen(function* () {
            const m = yield* Effect.succeed(n + 1)
            return m * 10
          })
        const a = yield* inner(1)
        const b = yield* inner(a)
        return [a, b]
      }), false],
    ["Effect.gen whose nested Effect.gen fails", () =>
      Effect.gen(function* () {
        const inner = Effect.gen(function* () {
          return yield* new Boom({ n: 7 })
        })
        yield* inner
        return "unreachable"
      }), true],
    ["Effect.gen whose nested Effect.gen sleeps", () =>
      Effect.gen(function* () {
        const inner = Effect.gen(function* () {
          yield* Effect.sleep(1)
          return 5
        })
        const a = yield* inner
        const b = yield* inner
        return a + b
      }), true],
    ["Effect.gen using a Ref", () =>
      Effect.gen(function* () {
        const ref = yield* Ref.make(1)
        yield* Ref.update(ref, (n) => n + 1)
        return yield* Ref.get(ref)
      }), false] // Ref's operations are `Sync`s
  ]
  for (const [name, make, suspends] of cases) {
    it(`${name}: the same Exit as a fiber's${suspends ? ", the rest handed to a fiber" : ", in place"}`, async () => {
      const got = await inline(make())
      const want = await inFiber(make())
      expect(got.suspended).toBe(suspends)
      expect(Exit.isSuccess(got.exit)).toBe(Exit.isSuccess(want))
      if (Exit.isSuccess(got.exit) && Exit.isSuccess(want)) expect(got.exit.value).toEqual(want.value)
      if (Exit.isFailure(got.exit) && Exit.isFailure(want)) {
        expect(Cause.isDie(got.exit.cause)).toBe(Cause.isDie(want.cause))
        expect(Cause.squash(got.exit.cause)).toEqual(Cause.squash(want.cause))
      }
    })
  }

  it("a generator runs once: side effects before the first suspension are not repeated", () => {
    let before = 0
    let after = 0
    const effect = Effect.gen(function* () {
      before++
      yield* Effect.yieldNow()
      after++
      return before + after
    })
    const result = runInline(effect)
    expect(Exit.isExit(result)).toBe(false)
    expect(before).toBe(1)
    const exit = Effect.runSyncExit(result as Effect.Effect<number>)
    expect(exit).toEqual(Exit.succeed(2))
    expect([before, after]).toEqual([1, 1])
  })

  it("Effects that need a fiber are handed back, not run", () => {
    const effects = [
      Effect.sleep(1),
      Effect.never,
      Effect.yieldNow(),
      Effect.log("x"),
      Effect.promise(() => new Promise(() => {}))
    ]
    for (const effect of effects) expect(Exit.isExit(runInline(effect))).toBe(false)
  })

  it.effect("a service handler needs its fiber: the engine runs the rest with the pipeline's context", () =>
    Effect.gen(function* () {
      const framer = Frame.lengthField()
      const pipeline = Pipeline.make({
        framer,
        codec: Packet.utf8,
        handler: Handler.effect((text: string) =>
          Effect.gen(function* () {
            const upper = text.toUpperCase()
            if (upper === "BOOM") return yield* new Boom({ n: 0 })
            const counter = yield* Counter
            const n = yield* counter.next
            return `${upper}:${n}`
          })
        )
      })
      const engine = yield* Pipeline.engine(pipeline)
      const input = Bytes.concat(["a", "b"].map((t) => Frame.encode(framer, Bytes.fromString(t))))
      const step = engine.push(input)
      expect(step instanceof Uint8Array).toBe(false)
      const bytes = yield* (step as Effect.Effect<Uint8Array>)
      const frames = Frame.decodeAll(framer, [bytes])
      expect(frames._tag).toBe("Right")
      const texts = frames._tag === "Right" ? frames.right.map(Bytes.toString) : []
      expect(texts).toEqual(["A:1", "B:2"])
    }).pipe(
      Effect.scoped,
      Effect.provide(Layer.effect(
        Counter,
        Effect.map(Ref.make(0), (ref) => ({ next: Ref.updateAndGet(ref, (n) => n + 1) }))
      ))
    ))

  it.effect("a typed failure from an inline generator reaches the pipeline's recovery", () =>
    Effect.gen(function* () {
      const framer = Frame.lengthField()
      const pipeline = Pipeline.make({
        framer,
        codec: Packet.schema(Schema.Number),
        handler: Handler.effect((n: number) =>
          Effect.gen(function* () {
            if (n < 0) return yield* new Boom({ n })
            return n * 2
          })
        )
      }).pipe(Pipeline.catchTag("Boom", (error) => Effect.succeed(-1000 + error.n)))
      const engine = yield* Pipeline.engine(pipeline)
      const input = Bytes.concat([1, -5, 3].map((n) => Frame.encode(framer, Bytes.fromString(String(n)))))
      const step = engine.push(input)
      const bytes = step instanceof Uint8Array ? step : yield* step
      const frames = Frame.decodeAll(framer, [bytes])
      const values = frames._tag === "Right" ? frames.right.map((f) => Number(Bytes.toString(f))) : []
      expect(values).toEqual([2, -1005, 6])
    }).pipe(Effect.scoped))

  it.effect("Handler.gen: one generator function for every message, typed errors and requirements inferred", () =>
    Effect.gen(function* () {
      const framer = Frame.lengthField()
      const handler: Handler.Handler<string, string, Boom, Counter> = Handler.gen(function* (text: string) {
        if (text === "boom") return yield* new Boom({ n: 9 })
        if (text === "count") return `count:${yield* (yield* Counter).next}`
        return text.toUpperCase()
      })
      const pipeline = Pipeline.make({ framer, codec: Packet.utf8, handler }).pipe(
        Pipeline.catchTag("Boom", (error) => Effect.succeed(`boom:${error.n}`))
      )
      const engine = yield* Pipeline.engine(pipeline)
      const input = Bytes.concat(["a", "boom", "count", "b"].map((t) => Frame.encode(framer, Bytes.fromString(t))))
      const step = engine.push(input)
      const bytes = step instanceof Uint8Array ? step : yield* step
      const frames = Frame.decodeAll(framer, [bytes])
      const texts = frames._tag === "Right" ? frames.right.map(Bytes.toString) : []
      expect(texts).toEqual(["A", "boom:9", "count:1", "B"])
      // A message that only computes is answered in place, without a fiber.
      const quick = engine.push(Frame.encode(framer, Bytes.fromString("c")))
      expect(quick instanceof Uint8Array).toBe(true)
    }).pipe(
      Effect.scoped,
      Effect.provide(Layer.effect(
        Counter,
        Effect.map(Ref.make(0), (ref) => ({ next: Ref.updateAndGet(ref, (n) => n + 1) }))
      ))
    ))
})
