// Waiting in socket tests: bounded in time, with a label that says what never came.
import { Effect } from "effect"

/** Waits for a promise, failing the test after `millis`. */
export const within = <A>(label: string, promise: () => Promise<A>, millis = 10_000): Effect.Effect<A> =>
  Effect.promise(promise).pipe(
    Effect.timeoutOrElse({
      duration: millis,
      orElse: () => Effect.fail(new Error(`timed out after ${millis} ms: ${label}`))
    }),
    Effect.orDie
  )

/** Polls `condition` every 10 ms, failing the test after `millis`. */
export const eventually = (label: string, condition: () => boolean, millis = 10_000): Effect.Effect<void> =>
  Effect.gen(function* () {
    for (let i = 0; i * 10 < millis; i++) {
      if (condition()) return
      yield* Effect.sleep("10 millis")
    }
    if (!condition()) return yield* Effect.die(new Error(`timed out after ${millis} ms waiting for ${label}`))
  })

/** Whether a promise has settled, as a flag. */
export const flag = (promise: Promise<unknown>): { done: boolean } => {
  const state = { done: false }
  void promise.then(() => (state.done = true))
  return state
}
