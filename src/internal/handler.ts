import type * as Handler from "../Handler.ts"

/** Where a handler keeps how it runs: not part of its public interface. */
export const SpecKey: unique symbol = Symbol.for("sluice/Handler/spec")

/** How a handler runs, as the engine reads it. */
export interface Spec {
  /** `"sync"`: `run` returns the reply itself; `"effect"`: `run` returns an Effect of it. */
  readonly kind: "sync" | "effect"
  /** Whether `run` yields an iterable of replies (zero, one or many) rather than one reply. */
  readonly many: boolean
  readonly run: (message: unknown, context: unknown) => unknown
}

/** The spec of a handler made by the `Handler` module. */
export const specOf = (handler: Handler.Handler.Any): Spec =>
  (handler as unknown as { readonly [SpecKey]: Spec })[SpecKey]
