/**
 * What runs for each message. A handler is a plain synchronous function (the fast path: no Effect is
 * allocated per message) or an Effect with a typed error; it answers with exactly one message
 * (`sync`, `effect`) or with zero or many (`syncMany`, `effectMany`). Per connection, messages are
 * handled one at a time (`sequential`, the default) or up to n at once (`concurrent`), with replies
 * in request order (default) or as they finish.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import { type Pipeable, pipeArguments } from "effect/Pipeable"
import { runGenerator } from "./internal/inline.ts"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("sluice/Handler")

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * What a handler sees of the connection a message came from.
 *
 * @since 0.1.0
 * @category models
 */
export interface Context {
  /** The connection's id (`"stream"` for a pipeline run over an in-memory stream). */
  readonly id: string
}

/**
 * How the messages of one connection are scheduled.
 *
 * @since 0.1.0
 * @category models
 */
export type Concurrency =
  | { readonly _tag: "Sequential" }
  | { readonly _tag: "Concurrent"; readonly limit: number; readonly ordered: boolean }

/**
 * @since 0.1.0
 * @category models
 */
export interface Handler<in In, out Out, out E = never, out R = never> extends Pipeable {
  readonly [TypeId]: TypeId
  /** `"sync"`: `run` returns the reply itself; `"effect"`: `run` returns an Effect of it. */
  readonly kind: "sync" | "effect"
  /** Whether `run` yields an iterable of replies (zero, one or many) rather than one reply. */
  readonly many: boolean
  readonly run: (message: In, context: Context) => unknown
  readonly concurrency: Concurrency
  /** Phantom: the reply, error and requirement types. */
  readonly _types?: (_: never) => { readonly out: Out; readonly error: E; readonly requirements: R }
}

/**
 * @since 0.1.0
 */
export declare namespace Handler {
  /**
   * @since 0.1.0
   */
  // deno-lint-ignore no-explicit-any
  export type Any = Handler<any, any, any, any>
}

const Proto = {
  [TypeId]: TypeId,
  pipe() {
    return pipeArguments(this, arguments)
  }
}

const sequentialConcurrency: Concurrency = { _tag: "Sequential" }

const make = <In, Out, E, R>(
  kind: "sync" | "effect",
  many: boolean,
  run: (message: In, context: Context) => unknown,
  concurrency: Concurrency
): Handler<In, Out, E, R> => {
  const handler = Object.create(Proto)
  handler.kind = kind
  handler.many = many
  handler.run = run
  handler.concurrency = concurrency
  return handler
}

/**
 * A synchronous handler that answers each message with one reply. Allocates nothing per message
 * beyond what it does itself. What it throws becomes a `HandlerError`.
 *
 * @example
 * ```ts
 * import { Handler } from "sluice"
 *
 * const upper = Handler.sync((line: string) => line.toUpperCase())
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const sync = <In, Out>(f: (message: In, context: Context) => Out): Handler<In, Out> =>
  make("sync", false, f, sequentialConcurrency)

/**
 * A synchronous handler that answers each message with zero, one or many replies.
 *
 * @since 0.1.0
 * @category constructors
 */
export const syncMany = <In, Out>(f: (message: In, context: Context) => Iterable<Out>): Handler<In, Out> =>
  make("sync", true, f, sequentialConcurrency)

/**
 * An Effect handler that answers each message with one reply. Its typed error `E` reaches the
 * pipeline's error channel as it is; a defect becomes a `HandlerError`. A handler that returns an
 * Effect that is already complete (`Effect.succeed`, `Effect.fail`) costs no fiber.
 *
 * @example
 * ```ts
 * import { Handler } from "sluice"
 * import { Effect } from "effect"
 *
 * const echo = Handler.effect((bytes: Uint8Array) => Effect.succeed(bytes))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const effect = <In, Out, E = never, R = never>(
  f: (message: In, context: Context) => Effect.Effect<Out, E, R>
): Handler<In, Out, E, R> => make("effect", false, f, sequentialConcurrency)

/**
 * What a handler written as a generator may `yield*`: any Effect, as with `Effect.gen`.
 *
 * @since 0.1.0
 * @category models
 */
// deno-lint-ignore no-explicit-any
export type Yieldable = Effect.Effect<any, any, any>

/**
 * The error type of a handler written as a generator: the union of what its `yield*`s can fail with.
 *
 * @since 0.1.0
 * @category models
 */
export type GenError<Y> = [Y] extends [never] ? never
  : [Y] extends [Effect.Effect<infer _A, infer E, infer _R>] ? E
  : never

/**
 * The requirements of a handler written as a generator.
 *
 * @since 0.1.0
 * @category models
 */
export type GenContext<Y> = [Y] extends [never] ? never
  : [Y] extends [Effect.Effect<infer _A, infer _E, infer R>] ? R
  : never

/**
 * An Effect handler written as a generator, as with `Effect.gen`, but made once: every message
 * runs the same generator function, started eagerly, in place: the generator runs up to its first
 * `yield*` of something that needs a fiber (a sleep, a service, a log), and a handler that never
 * waits on anything costs no fiber at all. Writing
 * `Handler.effect((m) => Effect.gen(function* () { ... }))` works too, but makes a new generator
 * function per message, which costs more, on V8 (Node, Deno) most of all: `npm run bench:codec`
 * measures both.
 *
 * @example
 * ```ts
 * import { Handler } from "sluice"
 * import { Effect } from "effect"
 *
 * const echo = Handler.gen(function* (text: string) {
 *   yield* Effect.annotateCurrentSpan("length", text.length)
 *   return text.toUpperCase()
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const gen = <In, Y extends Yieldable, Out>(
  f: (message: In, context: Context) => Generator<Y, Out, never>
): Handler<In, Out, GenError<Y>, GenContext<Y>> =>
  make(
    "effect",
    false,
    (message: In, context: Context) => runGenerator(f(message, context)),
    sequentialConcurrency
  )

/**
 * An Effect handler that answers each message with zero, one or many replies.
 *
 * @since 0.1.0
 * @category constructors
 */
export const effectMany = <In, Out, E = never, R = never>(
  f: (message: In, context: Context) => Effect.Effect<Iterable<Out>, E, R>
): Handler<In, Out, E, R> => make("effect", true, f, sequentialConcurrency)

/**
 * Runs up to `limit` messages of one connection at once. Replies keep request order unless
 * `ordered: false`, in which case each is written as soon as it is ready. With ordered replies, a
 * message holds its slot until its reply is written, so a slow message never lets the reorder
 * buffer grow past `limit`.
 *
 * @since 0.1.0
 * @category combinators
 */
export const concurrent: {
  (
    limit: number,
    options?: { readonly ordered?: boolean | undefined }
  ): <In, Out, E, R>(self: Handler<In, Out, E, R>) => Handler<In, Out, E, R>
  <In, Out, E, R>(
    self: Handler<In, Out, E, R>,
    limit: number,
    options?: { readonly ordered?: boolean | undefined }
  ): Handler<In, Out, E, R>
} = dual(
  (args) => isHandler(args[0]),
  <In, Out, E, R>(
    self: Handler<In, Out, E, R>,
    limit: number,
    options?: { readonly ordered?: boolean | undefined }
  ): Handler<In, Out, E, R> => {
    if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`concurrency limit must be >= 1, got ${limit}`)
    return make(self.kind, self.many, self.run, { _tag: "Concurrent", limit, ordered: options?.ordered ?? true })
  }
)

/**
 * Handles one message at a time (the default).
 *
 * @since 0.1.0
 * @category combinators
 */
export const sequential = <In, Out, E, R>(self: Handler<In, Out, E, R>): Handler<In, Out, E, R> =>
  make(self.kind, self.many, self.run, sequentialConcurrency)

/**
 * @since 0.1.0
 * @category guards
 */
export const isHandler = (u: unknown): u is Handler.Any => typeof u === "object" && u !== null && TypeId in u
