import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"

/**
 * Runs the synchronous start of a handler's Effect in place, without a fiber, for the shapes whose
 * start a fiber would run the same way: an `Exit` (`Effect.succeed`, `Effect.fail`), `Effect.sync`,
 * `Effect.suspend`, a yielded error, and `Effect.gen` / `Effect.fnUntraced` generators. A generator
 * is stepped exactly as the fiber runtime's own loop steps it: `next` with the value of each
 * `yield*` of an `Exit`, a failure ends it, and the first `yield*` of anything else (a sleep, a
 * service, a log, a reference) hands the rest to a fiber, which resumes the same generator: no
 * step runs twice.
 *
 * Returns the `Exit` when the Effect finished in place, or the Effect a fiber must run for the rest.
 * A throw becomes a defect, as it would in a fiber. Anything not recognised is returned untouched.
 *
 * Why: a fiber per message costs about a microsecond before the handler does anything, and an
 * `Effect.gen` handler that only computes never needed one. `bench/codec.ts` measures this against
 * `Effect.runSyncExit` and `Effect.fnUntracedEager` on every runtime.
 *
 * This is the one place that reads Effect's primitives: the string keys below are Effect 4's own
 * (`effect/internal/core`: `identifier` and `args` of `EffectTypeId`), as are the op names. An op
 * this file does not know simply goes to a fiber, and test/Inline.test.ts compares the Exit of
 * every shape with what a real fiber gives, so a change of those internals fails there first.
 */
export const runInline = <A, E, R>(effect: Effect.Effect<A, E, R>): Exit.Exit<A, E> | Effect.Effect<A, E, R> => {
  const first = resolve(effect)
  return isGenerator(first)
    ? step(first.iterator, first.initial, undefined, isNative(first.iterator)) as never
    : first as never
}

/**
 * Runs a generator as `Effect.gen` would, from its first step, in place: what `Handler.gen` does with
 * each message's generator, without the primitives `Effect.gen` allocates around it.
 */
export const runGenerator = <A, E, R>(
  generator: Iterator<Effect.Effect<unknown, E, R>, A, unknown>
): Exit.Exit<A, E> | Effect.Effect<A, E, R> => step(generator as Steps, undefined, undefined, false) as never

/** `Exit.isExit` for a value known to be an Effect or an Exit: one property read. */
export const isExitEffect = <A, E, R>(effect: Effect.Effect<A, E, R> | Exit.Exit<A, E>): effect is Exit.Exit<A, E> => {
  const op = (effect as Primitive | undefined)?.[OP]
  return op === "Success" || op === "Failure"
}

/** The key of an Effect primitive's op name (Effect 4: `${EffectTypeId}/identifier`). */
const OP = "~effect/Effect/identifier"
/** The key of a primitive's argument (Effect 4: `${EffectTypeId}/args`). */
const ARGS = "~effect/Effect/args"

interface Primitive {
  readonly [OP]?: string
  readonly [ARGS]?: unknown
}

/** The primitive `Effect.gen` makes: a generator and the value its first `next` gets. */
interface IteratorPrimitive extends Primitive {
  readonly iterator: Steps
  readonly initial: unknown
}

/** A generator of an `Effect.gen`, as stepped here. */
type Steps = Iterator<unknown, unknown, unknown>

/**
 * Steps the innermost generator from `value` until the outermost one returns or fails, or one
 * yields an Effect that needs a fiber: then the rest is that Effect followed by this same loop.
 * `outer` holds the generators that `yield*`ed the current one, made only when one does. `native`:
 * the current one is stepped with the built-in `next` (see `isNative`).
 */
const step = (
  current: Steps,
  value: unknown,
  outer: Array<Steps> | undefined,
  native: boolean
): Exit.Exit<unknown, unknown> | Effect.Effect<unknown, unknown, unknown> => {
  for (;;) {
    let next: Primitive | undefined
    try {
      const state = native ? generatorNext.call(current, value) : current.next(value)
      if (state.done === true) {
        if (outer === undefined || outer.length === 0) return Exit.succeed(state.value)
        current = outer.pop()!
        native = isNative(current)
        value = state.value
        continue
      }
      next = resolve(state.value)
    } catch (defect) {
      return Exit.die(defect)
    }
    switch (next?.[OP]) {
      case "Success":
        value = (next as unknown as Exit.Success<unknown, unknown>).value
        continue
      case "Failure":
        return next as unknown as Exit.Failure<unknown, unknown>
    }
    if (isGenerator(next)) {
      ;(outer ??= []).push(current)
      current = next.iterator
      native = isNative(current)
      value = next.initial
      continue
    }
    const resumed = current
    const stack = outer
    const resumedNative = native
    return Effect.flatMap(
      next as unknown as Effect.Effect<unknown>,
      (result) => step(resumed, result, stack, resumedNative)
    )
  }
}

/** Suspensions followed in a row before giving up (a suspend that returns a suspend, and so on). */
const MAX_SUSPENDS = 8

/**
 * One step as a fiber would take it: an `Exit` as it is, a `Sync` run, a `Suspend` evaluated, a
 * yielded error failed. Anything else (a generator for the caller to step, or an Effect for a
 * fiber) as it is.
 */
const resolve = (effect: unknown): Primitive | undefined => {
  let current = effect as Primitive | undefined
  for (let i = 0; i < MAX_SUSPENDS; i++) {
    switch (current?.[OP]) {
      case "Sync":
        try {
          return Exit.succeed((current[ARGS] as () => unknown)()) as Primitive
        } catch (defect) {
          return Exit.die(defect) as Primitive
        }
      case "Suspend":
        try {
          current = (current[ARGS] as () => Primitive)()
        } catch (defect) {
          return Exit.die(defect) as Primitive
        }
        continue
      case "YieldableError":
        return Exit.fail(current) as Primitive
      default:
        return current // an Exit, a generator, or an Effect for a fiber
    }
  }
  return current
}

/**
 * An `Effect.gen`'s generator, as the fiber runtime would step it. Only an iterator is looked for:
 * one whose `next` is missing fails when stepped, in place here as in a fiber.
 */
const isGenerator = (effect: Primitive | undefined): effect is IteratorPrimitive => {
  if (effect?.[OP] !== "Iterator") return false
  const iterator = (effect as IteratorPrimitive).iterator
  return typeof iterator === "object" && iterator !== null
}

/**
 * `%GeneratorPrototype%`, and its `next`. The generator function made per message inside
 * `Effect.gen(function* () { ... })` gives its generators a prototype, and so a shape, of their own:
 * every property read on one misses the engine's inline caches, and the read of `next` is one of
 * them. Calling the built-in `next` from here reads nothing on the generator. (Handler.gen's
 * generators, from one function, keep one shape and are stepped with their `next` as usual.)
 */
const GeneratorPrototype: object = Object.getPrototypeOf(function* () {}).prototype
const generatorNext = (GeneratorPrototype as Steps).next

/**
 * A native generator made by a generator function, stepped with the built-in `next`. (A `next`
 * assigned on such a function's `prototype` would be bypassed: no generator of `Effect.gen` has one.)
 */
const isNative = (iterator: unknown): iterator is Steps =>
  typeof iterator === "object" && iterator !== null &&
  Object.getPrototypeOf(Object.getPrototypeOf(iterator)) === GeneratorPrototype
