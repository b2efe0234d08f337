import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { yieldWrapGet } from "effect/Utils"

/**
 * Runs the synchronous start of a handler's Effect in place, without a fiber, for the shapes whose
 * start a fiber would run the same way: `Effect.sync`, `Effect.suspend`, `Effect.gen` (and
 * `Effect.fnUntraced`), and any committable value (whose `commit` a fiber calls first thing). A
 * generator is stepped exactly as the fiber runtime's own loop steps it: `next` with the value of
 * each `yield*` of an `Exit`, a failure ends it, and the first `yield*` of anything else (a sleep,
 * a service, a log, a fiber ref) hands the rest to a fiber.
 *
 * Returns the `Exit` when the Effect finished in place, or the Effect a fiber must run for the rest.
 * A throw becomes a defect, as it would in a fiber. Anything not recognised is returned untouched.
 *
 * Why: a fiber per read costs about 1 us on Bun before the handler does anything, and an
 * `Effect.gen` handler that only computes never needed one.
 *
 * It reads Effect's primitives (`_op`, `effect_instruction_i0`: Effect 3.x's run loop reads the
 * same). test/Inline.test.ts compares the Exit of every shape with a fiber's, so a change of
 * those internals fails there first; an op code it does not know simply goes to a fiber.
 */
export const runInline = <A, E, R>(effect: Effect.Effect<A, E, R>): Exit.Exit<A, E> | Effect.Effect<A, E, R> => {
  const first = resolve(effect) as Primitive | undefined
  return isGenerator(first) ? step(first.effect_instruction_i0 as Steps, undefined, undefined) as never : first as never
}

/** A generator of an `Effect.gen`, as stepped here. */
type Steps = Iterator<unknown, unknown, unknown>

/**
 * Steps the innermost generator from `value` until the outermost one returns or fails, or one
 * yields an Effect that needs a fiber: then the rest is that Effect followed by this same loop.
 * `outer` holds the generators that `yield*`ed the current one, made only when one does.
 */
const step = (
  current: Steps,
  value: unknown,
  outer: Array<Steps> | undefined
): Exit.Exit<unknown, unknown> | Effect.Effect<unknown, unknown, unknown> => {
  for (;;) {
    let next: Primitive | undefined
    try {
      const state = current.next(value)
      if (state.done === true) {
        if (outer === undefined || outer.length === 0) return Exit.succeed(state.value)
        current = outer.pop()!
        value = state.value
        continue
      }
      next = resolve(yieldWrapGet(state.value as never)) as Primitive | undefined
    } catch (defect) {
      return Exit.die(defect)
    }
    switch (next?._op) {
      case "Success":
        value = (next as unknown as Exit.Success<unknown, unknown>).value
        continue
      case "Failure":
        return next as unknown as Exit.Failure<unknown, unknown>
    }
    if (isGenerator(next)) {
      ;(outer ??= []).push(current)
      current = next.effect_instruction_i0 as Steps
      value = undefined
      continue
    }
    const resumed = current
    const stack = outer
    return Effect.flatMap(next as unknown as Effect.Effect<unknown>, (result) => step(resumed, result, stack))
  }
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
 * One step as a fiber would take it: an `Exit` as it is, a `Sync` run, a `Commit` committed.
 * Anything else (a generator for the caller to step, or an Effect for a fiber) as it is.
 */
const resolve = (effect: unknown): unknown => {
  let current = effect as Primitive | undefined
  for (let i = 0; i < MAX_COMMITS; i++) {
    switch (current?._op) {
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
      default:
        return current // an Exit, or an Effect for a fiber
    }
  }
  return current
}

/** An `Effect.gen`'s generator, as the fiber runtime would step it. */
const isGenerator = (effect: Primitive | undefined): effect is Primitive =>
  effect?._op === "Iterator" &&
  typeof (effect.effect_instruction_i0 as { next?: unknown } | undefined)?.next === "function"
