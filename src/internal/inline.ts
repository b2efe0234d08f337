import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { yieldWrapGet } from "effect/Utils"

/**
 * Runs the synchronous start of a handler's Effect in place, without a fiber, for the shapes whose
 * start a fiber would run the same way: `Effect.sync`, `Effect.suspend`, `Effect.gen` (and
 * `Effect.fnUntraced`), and any committable value (whose `commit` a fiber calls first thing). A generator is stepped exactly as the fiber runtime's own loop steps it:
 * `next` with the value of each `yield*` of an `Exit`, a failure ends it, and the first `yield*` of
 * anything else (a sleep, a service, a log, a fiber ref) hands the rest to a fiber.
 *
 * Returns the `Exit` when the Effect finished in place, or the Effect a fiber must run for the rest.
 * A throw becomes a defect, as it would in a fiber. Anything not recognised is returned untouched.
 *
 * Why: a fiber per read costs about 1 us on Bun before the handler does anything, and an
 * `Effect.gen` handler that only computes never needed one.
 */
export const runInline = <A, E, R>(effect: Effect.Effect<A, E, R>): Exit.Exit<A, E> | Effect.Effect<A, E, R> => {
  const first = resolve(effect)
  return first instanceof Generators ? first.run(undefined) as Exit.Exit<A, E> | Effect.Effect<A, E, R> : first as never
}

/** `Exit.isExit` for a value known to be an Effect: one property read instead of three checks. */
export const isExitEffect = <A, E, R>(effect: Effect.Effect<A, E, R> | Exit.Exit<A, E>): effect is Exit.Exit<A, E> => {
  const op = (effect as Primitive | undefined)?._op
  return op === "Success" || op === "Failure"
}

interface Primitive {
  readonly _op?: string
  readonly effect_instruction_i0?: unknown
}

/** Commits followed in a row before giving up (a commit that yields a commit, and so on). */
const MAX_COMMITS = 8

/**
 * One step as a fiber would take it: an `Exit` as it is, a `Sync` run, a `Commit` committed, a
 * generator started. Anything else is returned as it is, for a fiber.
 */
const resolve = (effect: unknown): unknown => {
  let current = effect as Primitive
  for (let i = 0; i < MAX_COMMITS; i++) {
    switch (current?._op) {
      case "Success":
      case "Failure":
        return current // an Exit

      case "Sync":
        try {
          return Exit.succeed((current.effect_instruction_i0 as () => unknown)())
        } catch (defect) {
          return Exit.die(defect)
        }
      case "Commit":
        try {
          current = (current as { commit(): Primitive }).commit()
        } catch (defect) {
          return Exit.die(defect)
        }
        continue
      case "Iterator": {
        const iterator = current.effect_instruction_i0
        return isIterator(iterator) ? new Generators(iterator) : current
      }
      default:
        return current
    }
  }
  return current
}

const isIterator = (value: unknown): value is Iterator<unknown, unknown, unknown> =>
  typeof (value as { next?: unknown } | undefined)?.next === "function"

/** The generators of an `Effect.gen` and of those it `yield*`s, innermost last. */
class Generators {
  private readonly stack: Array<Iterator<unknown, unknown, unknown>>

  constructor(first: Iterator<unknown, unknown, unknown>) {
    this.stack = [first]
  }

  /**
   * Steps from `value` until the outermost generator returns or fails, or one yields an Effect
   * that needs a fiber: then the rest is that Effect followed by this same loop.
   */
  run(value: unknown): Exit.Exit<unknown, unknown> | Effect.Effect<unknown, unknown, unknown> {
    const stack = this.stack
    for (;;) {
      let yielded: unknown
      try {
        const state = stack[stack.length - 1]!.next(value)
        if (state.done === true) {
          stack.pop()
          if (stack.length === 0) return Exit.succeed(state.value)
          value = state.value
          continue
        }
        yielded = yieldWrapGet(state.value as never)
      } catch (defect) {
        return Exit.die(defect)
      }
      const next = resolve(yielded)
      if (next instanceof Generators) {
        stack.push(next.stack[0]!)
        value = undefined
      } else if ((next as Primitive | undefined)?._op === "Success") {
        value = (next as Exit.Success<unknown, unknown>).value
      } else if ((next as Primitive | undefined)?._op === "Failure") {
        return next as Exit.Failure<unknown, unknown>
      } else {
        return Effect.flatMap(next as Effect.Effect<unknown, unknown, unknown>, (value) => this.run(value))
      }
    }
  }
}
