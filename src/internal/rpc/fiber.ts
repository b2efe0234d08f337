import type * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"

/**
 * Runs `effect` at once in a fiber of its own with `context`, and returns its `Exit` when it finished
 * synchronously, or else an Effect that waits for it (and interrupts it if interrupted itself).
 *
 * Why: a handler that returns an `Exit` costs the engine no fiber, and effect/rpc's work per message
 * (handing a request to `RpcServer`, a reply to `RpcClient`) nearly always finishes synchronously.
 * Running it in a fiber of one `context` for the whole server, rather than in the engine's fiber for
 * each message (whose context is new every time), lets `RpcServer` reuse the context it builds per
 * handler and fiber context. Answers sent meanwhile are sent from inside the engine's handler, so
 * that they join the replies of the read being handled: one write for all.
 */
export const runNow = <A, E>(
  context: Context.Context<never>,
  effect: Effect.Effect<A, E>
): Exit.Exit<A, E> | Effect.Effect<A, E> => {
  const fiber = Effect.runForkWith(context)(effect)
  const exit = fiber.pollUnsafe()
  if (exit !== undefined) return exit
  return Effect.onInterrupt(Fiber.join(fiber), () => Fiber.interrupt(fiber))
}
