// deno-lint-ignore-file require-yield -- generators that never yield are cases under test
import { describe, expect, it } from "@effect/vitest"
import { Cause, Context, Data, Effect, Exit, Layer, Option, Ref, References, Result, Schema } from "effect"
import { runInline } from "../src/internal/inline.ts"
import { Bytes, Frame, Handler, Packet, Pipeline } from "../src/index.ts"

class Boom extends Data.TaggedError("Boom")<{ readonly n: number }> {}
class Refused extends Schema.TaggedError<Refused>()("Refused", { reason: Schema.String }) {}
class Counter extends Context.Service<Counter, { readonly next: Effect.Effect<number> }>()("Counter") {}

/** What a fiber makes of the same Effect: the reference every inline result is checked against. */
const inFiber = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromiseExit(effect)

/** Runs `runInline`, and the rest in a fiber if it handed one back. */
const inline = async <A, E>(effect: Effect.Effect<A, E>) => {
  const result = runInline(effect)
  return Exit.isExit(result) ? { exit: result, suspended: false } : { exit: await inFiber(result), suspended: true }
}

const framer = Frame.lengthField()
const encodeTexts = (texts: ReadonlyArray<string>): Uint8Array =>
  Bytes.concat(texts.map((t) => Frame.encode(framer, Bytes.fromString(t))))
const decodeTexts = (bytes: Uint8Array): Array<string> => {
  const frames = Frame.decodeAll(framer, [bytes])
  expect(Result.isSuccess(frames)).toBe(true)
  return Result.isSuccess(frames) ? frames.success.map(Bytes.toString) : []
}

const CounterLive = Layer.effect(
  Counter,
  Effect.map(Ref.make(0), (ref) => ({ next: Ref.updateAndGet(ref, (n) => n + 1) }))
)

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
        yield* Effect.void
        return a + b
      }), false],
    ["Effect.gen yielding Effect.sync", () =>
      Effect.gen(function* () {
        const a = yield* Effect.sync(() => 20)
        const b = yield* Effect.suspend(() => Effect.sync(() => 22))
        return a + b
      }), false],
    ["Effect.gen failing with a yielded Data.TaggedError", () =>
      Effect.gen(function* () {
        yield* Effect.succeed(1)
        return yield* new Boom({ n: 1 })
      }), false], // a yielded error is an Effect whose evaluation is a failure: no fiber needed
    ["Effect.gen failing with a yielded Schema.TaggedError", () =>
      Effect.gen(function* () {
        return yield* new Refused({ reason: "no" })
      }), false],
    ["a Data.TaggedError as the handler's Effect itself", () => new Boom({ n: 2 }), false],
    ["Effect.gen failing with Effect.fail", () =>
      Effect.gen(function* () {
        return yield* Effect.fail("no")
      }), false],
    ["Effect.gen failing with Effect.fail of a tagged error", () =>
      Effect.gen(function* () {
        yield* Effect.succeed(1)
        return yield* Effect.fail(new Boom({ n: 3 }))
      }), false],
    ["Effect.gen yielding Effect.die", () =>
      Effect.gen(function* () {
        return yield* Effect.die(new Error("died"))
      }), false],
    ["Effect.gen throwing (a defect)", () =>
      Effect.gen(function* () {
        throw new Error("thrown")
      }), false],
    ["Effect.gen throwing after a yield (a defect)", () =>
      Effect.gen(function* () {
        const a = yield* Effect.succeed(1)
        if (a === 1) throw new Error("thrown later")
        return a
      }), false],
    ["Effect.gen with { self }", () => {
      const self = { base: 40 }
      return Effect.gen({ self }, function* () {
        const two = yield* Effect.succeed(2)
        return this.base + two
      })
    }, false],
    ["Effect.sync", () => Effect.sync(() => "synced"), false],
    ["Effect.sync throwing", () =>
      Effect.sync(() => {
        throw new Error("sync thrown")
      }), false],
    ["Effect.suspend of an Exit", () => Effect.suspend(() => Effect.succeed("suspended")), false],
    ["Effect.suspend of a failure", () => Effect.suspend(() => Effect.fail("suspended failure")), false],
    ["Effect.suspend throwing", () =>
      Effect.suspend((): Effect.Effect<number> => {
        throw new Error("suspend thrown")
      }), false],
    [
      "Effect.suspend of a suspend of an Effect.gen",
      () =>
        Effect.suspend(() =>
          Effect.suspend(() =>
            Effect.gen(function* () {
              return yield* Effect.succeed("deep")
            })
          )
        ),
      false
    ],
    ["Effect.fnUntraced", () =>
      Effect.fnUntraced(function* (n: number) {
        return n * 2
      })(21), false],
    ["Effect.fnUntraced failing with a yielded error", () =>
      Effect.fnUntraced(function* (n: number) {
        if (n > 0) return yield* new Boom({ n })
        return n
      })(4), false],
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
    ["Effect.gen three levels deep", () =>
      Effect.gen(function* () {
        const leaf = Effect.fnUntraced(function* (n: number) {
          return (yield* Effect.sync(() => n)) + 1
        })
        const middle = (n: number) =>
          Effect.gen(function* () {
            return (yield* leaf(n)) + (yield* leaf(n * 10))
          })
        return [yield* middle(1), yield* middle(2)]
      }), false],
    ["Effect.gen whose nested Effect.gen fails", () =>
      Effect.gen(function* () {
        const inner = Effect.gen(function* () {
          return yield* new Boom({ n: 7 })
        })
        yield* inner
        return "unreachable"
      }), false],
    ["Effect.gen whose nested Effect.gen throws", () =>
      Effect.gen(function* () {
        const inner = Effect.gen(function* () {
          yield* Effect.succeed(0)
          throw new Error("inner thrown")
        })
        yield* inner
        return "unreachable"
      }), false],
    ["Effect.gen using a Ref", () =>
      Effect.gen(function* () {
        const ref = yield* Ref.make(1)
        yield* Ref.update(ref, (n) => n + 1)
        return yield* Ref.get(ref)
      }), false], // Ref's operations are `Sync`s
    ["Effect.gen that sleeps halfway", () =>
      Effect.gen(function* () {
        const a = yield* Effect.succeed(1)
        yield* Effect.sleep(1)
        const b = yield* Effect.succeed(2)
        return a + b
      }), true],
    ["Effect.gen resuming with the value of a promise", () =>
      Effect.gen(function* () {
        const a = yield* Effect.promise(() => Promise.resolve(5))
        return a + (yield* Effect.succeed(1))
      }), true],
    ["Effect.gen that yields to the scheduler", () =>
      Effect.gen(function* () {
        yield* Effect.yieldNow
        return "yielded"
      }), true],
    ["Effect.gen reading a Reference", () =>
      Effect.gen(function* () {
        return yield* References.CurrentLogLevel
      }), true],
    ["Effect.gen yielding Effect.serviceOption", () =>
      Effect.gen(function* () {
        return Option.isNone(yield* Effect.serviceOption(Counter))
      }), true],
    ["Effect.map of an Exit", () => Effect.map(Effect.succeed(1), (n) => n + 1), true], // not stepped here
    ["Effect.fnUntraced with a pipeable", () =>
      Effect.fnUntraced(
        function* (n: number) {
          return n * 2
        },
        Effect.map((n) => n + 1)
      )(20), true],
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
    ["Effect.gen failing with a yielded error after a sleep", () =>
      Effect.gen(function* () {
        yield* Effect.sleep(1)
        return yield* new Boom({ n: 11 })
      }), true],
    ["Effect.gen throwing after a sleep in a nested Effect.gen", () =>
      Effect.gen(function* () {
        const inner = Effect.gen(function* () {
          yield* Effect.sleep(1)
          return 1
        })
        const a = yield* inner
        if (a === 1) throw new Error("thrown after the nested sleep")
        return a
      }), true],
    ["Effect.gen whose nested Effect.gen sleeps, then the outer one fails", () =>
      Effect.gen(function* () {
        const inner = Effect.gen(function* () {
          const a = yield* Effect.succeed(1)
          yield* Effect.sleep(1)
          return a + (yield* Effect.sync(() => 1))
        })
        const two = yield* inner
        return yield* new Boom({ n: two })
      }), true]
  ]
  for (const [name, make, suspends] of cases) {
    it(`${name}: the same Exit as a fiber's${suspends ? ", the rest handed to a fiber" : ", in place"}`, async () => {
      const got = await inline(make())
      const want = await inFiber(make())
      expect(got.suspended).toBe(suspends)
      expect(Exit.isSuccess(got.exit)).toBe(Exit.isSuccess(want))
      if (Exit.isSuccess(got.exit) && Exit.isSuccess(want)) expect(got.exit.value).toEqual(want.value)
      if (Exit.isFailure(got.exit) && Exit.isFailure(want)) {
        expect(Cause.hasDies(got.exit.cause)).toBe(Cause.hasDies(want.cause))
        expect(Cause.hasFails(got.exit.cause)).toBe(Cause.hasFails(want.cause))
        expect(Cause.hasInterrupts(got.exit.cause)).toBe(Cause.hasInterrupts(want.cause))
        expect(got.exit.cause.reasons.length).toBe(want.cause.reasons.length)
        expect(Cause.squash(got.exit.cause)).toEqual(Cause.squash(want.cause))
      }
    })
  }

  it("a yielded error fails with the error itself, as a fiber does", () => {
    const error = new Boom({ n: 5 })
    const result = runInline(Effect.gen(function* () {
      return yield* error
    }))
    expect(Exit.isExit(result)).toBe(true)
    const failure = Exit.isExit(result) && Exit.isFailure(result) ? Cause.findErrorOption(result.cause) : Option.none()
    expect(Option.isSome(failure) && failure.value).toBe(error)
  })

  it("a generator runs once: side effects before the first suspension are not repeated", () => {
    let before = 0
    let after = 0
    const effect = Effect.gen(function* () {
      before++
      yield* Effect.yieldNow
      after++
      return before + after
    })
    const result = runInline(effect)
    expect(Exit.isExit(result)).toBe(false)
    expect(before).toBe(1)
    expect(after).toBe(0)
    const exit = Effect.runSyncExit(result as Effect.Effect<number>)
    expect(exit).toEqual(Exit.succeed(2))
    expect([before, after]).toEqual([1, 1])
  })

  it("a nested generator that suspends resumes its own rest, then its caller's", async () => {
    const steps: Array<string> = []
    const inner = (n: number) =>
      Effect.gen(function* () {
        steps.push(`inner ${n} before`)
        const value = yield* Effect.promise(() => Promise.resolve(n * 10))
        steps.push(`inner ${n} after`)
        return value
      })
    const effect = Effect.gen(function* () {
      steps.push("outer start")
      const a = yield* inner(1)
      steps.push("outer between")
      const b = yield* inner(2)
      steps.push("outer end")
      return a + b
    })
    const result = runInline(effect)
    expect(Exit.isExit(result)).toBe(false)
    expect(steps).toEqual(["outer start", "inner 1 before"])
    const exit = await Effect.runPromiseExit(result as Effect.Effect<number>)
    expect(exit).toEqual(Exit.succeed(30))
    expect(steps).toEqual([
      "outer start",
      "inner 1 before",
      "inner 1 after",
      "outer between",
      "inner 2 before",
      "inner 2 after",
      "outer end"
    ])
  })

  it("Effects that need a fiber are handed back, not run", () => {
    const effects: ReadonlyArray<Effect.Effect<unknown, unknown, unknown>> = [
      Effect.sleep(1),
      Effect.never,
      Effect.yieldNow,
      Effect.log("x"),
      Effect.promise(() => new Promise(() => {})),
      Effect.service(Counter),
      Effect.service(References.CurrentLogLevel)
    ]
    for (const effect of effects) expect(Exit.isExit(runInline(effect))).toBe(false)
  })

  it.effect("a service handler needs its fiber: the engine runs the rest with the pipeline's context", () =>
    Effect.gen(function* () {
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
      // The service lookup needs a fiber; one that finishes at once does not suspend the read.
      const step = engine.push(encodeTexts(["a", "b"]))
      const bytes = step instanceof Uint8Array ? step : yield* step
      expect(decodeTexts(bytes)).toEqual(["A:1", "B:2"])
    }).pipe(Effect.scoped, Effect.provide(CounterLive)))

  it.effect("a typed failure from an inline generator reaches the pipeline's recovery", () =>
    Effect.gen(function* () {
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
      const step = engine.push(encodeTexts(["1", "-5", "3"]))
      // Every handler, the failing one included, finished in place.
      expect(step instanceof Uint8Array).toBe(true)
      const bytes = step instanceof Uint8Array ? step : yield* step
      expect(decodeTexts(bytes).map(Number)).toEqual([2, -1005, 6])
    }).pipe(Effect.scoped))

  it.effect("Handler.gen: one generator function for every message, typed errors and requirements inferred", () =>
    Effect.gen(function* () {
      const handler: Handler.Handler<string, string, Boom, Counter> = Handler.gen(function* (text: string) {
        if (text === "boom") return yield* new Boom({ n: 9 })
        if (text === "count") return `count:${yield* (yield* Counter).next}`
        return text.toUpperCase()
      })
      const pipeline = Pipeline.make({ framer, codec: Packet.utf8, handler }).pipe(
        Pipeline.catchTag("Boom", (error) => Effect.succeed(`boom:${error.n}`))
      )
      const engine = yield* Pipeline.engine(pipeline)
      const step = engine.push(encodeTexts(["a", "boom", "count", "b"]))
      const bytes = step instanceof Uint8Array ? step : yield* step
      expect(decodeTexts(bytes)).toEqual(["A", "boom:9", "count:1", "B"])
      // A message that only computes is answered in place, without a fiber.
      const quick = engine.push(Frame.encode(framer, Bytes.fromString("c")))
      expect(quick instanceof Uint8Array).toBe(true)
    }).pipe(Effect.scoped, Effect.provide(CounterLive)))
})

describe("runInline in the engine: every step of a handler runs exactly once", () => {
  /** Pushes `input` and, when the engine hands back an Effect, runs it. */
  const pushAll = <E>(engine: Pipeline.Engine<E>, input: Uint8Array) =>
    Effect.suspend(() => {
      const step = engine.push(input)
      return step instanceof Uint8Array ? Effect.succeed({ bytes: step, suspended: false }) : Effect.map(
        step,
        (bytes) => ({ bytes, suspended: true })
      )
    })

  const waits: ReadonlyArray<[string, Effect.Effect<void>]> = [
    ["Effect.sleep", Effect.sleep("1 millis")],
    ["Effect.promise", Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, 1)))]
  ]

  for (const [waitName, wait] of waits) {
    it.live(`Handler.gen with side effects around a yield* of ${waitName}`, () =>
      Effect.gen(function* () {
        const log: Array<string> = []
        let before = 0
        let after = 0
        const pipeline = Pipeline.make({
          framer,
          codec: Packet.utf8,
          handler: Handler.gen(function* (text: string) {
            before++
            log.push(`before ${text}`)
            yield* wait
            after++
            log.push(`after ${text}`)
            return `${text}:${before}:${after}`
          })
        })
        const engine = yield* Pipeline.engine(pipeline)
        const { bytes, suspended } = yield* pushAll(engine, encodeTexts(["a", "b", "c"]))
        expect(suspended).toBe(true)
        expect(decodeTexts(bytes)).toEqual(["a:1:1", "b:2:2", "c:3:3"])
        expect([before, after]).toEqual([3, 3])
        expect(log).toEqual(["before a", "after a", "before b", "after b", "before c", "after c"])
      }).pipe(Effect.scoped))

    it.live(`Handler.effect(Effect.gen) with side effects around a yield* of ${waitName}, in a nested Effect.gen`, () =>
      Effect.gen(function* () {
        const counts = { outerBefore: 0, innerBefore: 0, innerAfter: 0, outerAfter: 0 }
        const pipeline = Pipeline.make({
          framer,
          codec: Packet.utf8,
          handler: Handler.effect((text: string) =>
            Effect.gen(function* () {
              counts.outerBefore++
              const inner = yield* Effect.gen(function* () {
                counts.innerBefore++
                yield* wait
                counts.innerAfter++
                return text.toUpperCase()
              })
              counts.outerAfter++
              return inner
            })
          )
        })
        const engine = yield* Pipeline.engine(pipeline)
        const { bytes, suspended } = yield* pushAll(engine, encodeTexts(["x", "y"]))
        expect(suspended).toBe(true)
        expect(decodeTexts(bytes)).toEqual(["X", "Y"])
        expect(counts).toEqual({ outerBefore: 2, innerBefore: 2, innerAfter: 2, outerAfter: 2 })
      }).pipe(Effect.scoped))
  }

  it.live("a concurrent handler's side effects around a sleep also run exactly once", () =>
    Effect.gen(function* () {
      let before = 0
      let after = 0
      const replies: Array<Uint8Array> = []
      const pipeline = Pipeline.make({
        framer,
        codec: Packet.utf8,
        handler: Handler.gen(function* (text: string) {
          before++
          yield* Effect.sleep("1 millis")
          after++
          return text.toUpperCase()
        }).pipe(Handler.concurrent(2))
      })
      const engine = yield* Pipeline.engine(pipeline, { onReply: (bytes) => replies.push(bytes.slice()) })
      const { bytes } = yield* pushAll(engine, encodeTexts(["a", "b", "c"]))
      replies.unshift(bytes.slice())
      const end = engine.end()
      replies.push((end instanceof Uint8Array ? end : yield* end).slice())
      expect(decodeTexts(Bytes.concat(replies))).toEqual(["A", "B", "C"])
      expect([before, after]).toEqual([3, 3])
    }).pipe(Effect.scoped))
})

describe("runInline in the engine: the fast path is taken", () => {
  it.effect("a Handler.gen that only computes answers push with bytes, not an Effect", () =>
    Effect.gen(function* () {
      const pipeline = Pipeline.make({
        framer,
        codec: Packet.utf8,
        handler: Handler.gen(function* (text: string) {
          const upper = yield* Effect.succeed(text.toUpperCase())
          const length = yield* Effect.sync(() => text.length)
          const suffix = yield* Effect.gen(function* () {
            return `:${yield* Effect.succeed(length)}`
          })
          return upper + suffix
        })
      })
      const engine = yield* Pipeline.engine(pipeline)
      const step = engine.push(encodeTexts(["ab", "cde"]))
      expect(step).toBeInstanceOf(Uint8Array)
      expect(decodeTexts(step as Uint8Array)).toEqual(["AB:2", "CDE:3"])
      // And again on the same engine.
      const again = engine.push(encodeTexts(["f"]))
      expect(again).toBeInstanceOf(Uint8Array)
      expect(decodeTexts(again as Uint8Array)).toEqual(["F:1"])
    }).pipe(Effect.scoped))

  it.effect("a Handler.effect(Effect.gen) that only computes answers push with bytes, not an Effect", () =>
    Effect.gen(function* () {
      const pipeline = Pipeline.make({
        framer,
        codec: Packet.utf8,
        handler: Handler.effect((text: string) =>
          Effect.gen(function* () {
            const upper = yield* Effect.succeed(text.toUpperCase())
            const reversed = yield* Effect.sync(() => Array.from(text).reverse().join(""))
            const nested = yield* Effect.gen(function* () {
              return yield* Effect.sync(() => `${upper}/${reversed}`)
            })
            return nested
          })
        )
      })
      const engine = yield* Pipeline.engine(pipeline)
      const step = engine.push(encodeTexts(["ab", "xyz"]))
      expect(step).toBeInstanceOf(Uint8Array)
      expect(decodeTexts(step as Uint8Array)).toEqual(["AB/ba", "XYZ/zyx"])
    }).pipe(Effect.scoped))

  it.live("for contrast: a handler that yields Effect.sleep makes push return an Effect", () =>
    Effect.gen(function* () {
      const pipeline = Pipeline.make({
        framer,
        codec: Packet.utf8,
        handler: Handler.gen(function* (text: string) {
          const upper = yield* Effect.succeed(text.toUpperCase())
          yield* Effect.sleep("1 millis")
          return upper
        })
      })
      const engine = yield* Pipeline.engine(pipeline)
      const step = engine.push(encodeTexts(["ab", "cd"]))
      expect(step).not.toBeInstanceOf(Uint8Array)
      expect(Effect.isEffect(step)).toBe(true)
      const bytes = yield* (step as Effect.Effect<Uint8Array>)
      expect(decodeTexts(bytes)).toEqual(["AB", "CD"])
    }).pipe(Effect.scoped))
})
