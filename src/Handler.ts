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
import * as Stream from "effect/Stream"
import type { SendError } from "./Errors.ts"
import { SpecKey, specOf } from "./internal/handler.ts"
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
 * What a handler sees of where its message came from, and what it may do there. In a server or a
 * client this is the connection's `Session.Session` (which adds the addresses and byte counts); under
 * `Pipeline.transform`, with no socket, it is a stream's context: id `"stream"`, the `state` given to
 * `transform`, `send` into the output stream, and `close` to end it.
 *
 * A handler types its second parameter with what it needs, `Session.Session<Out, S>` or
 * `Handler.Context<Out, S>`; a pipeline then runs only where that is what its handlers get.
 *
 * @since 0.1.0
 * @category models
 */
export interface Context<in out Out = unknown, in out S = unknown> {
  /** The connection's id (`"stream"` for a pipeline run over an in-memory stream). */
  readonly id: string
  /** Per-connection state, as `onOpen` returned it (or as given to `transform`); handlers may replace it. */
  state: S
  /**
   * Encodes a message and queues it for the peer. Sent while a message is handled, it goes out after
   * the replies to the messages before that one, and before that message's own reply; sent from
   * anywhere else (a broadcast), it goes out between replies, never inside one. Fails with
   * `OutboundOverflow` when `maxOutboundBytes` are queued.
   */
  send(message: Out): Effect.Effect<void, SendError>
  /**
   * `send`, but when the outbound bytes are over the high-water mark it waits until they drain to
   * the low-water mark instead of failing: a broadcaster (or a handler streaming a large reply) slows
   * down to the peer's pace.
   */
  sendWait(message: Out): Effect.Effect<void, SendError>
  /**
   * Ends the session. From a handler (or a recovery): every reply up to and including this
   * message's is written, later messages are not handled (under `concurrent(n)`, handlers already
   * running for later messages are interrupted), then the connection closes (FIN). From anywhere
   * else: reading stops, handlers still running are interrupted, what is queued is written, then
   * the connection closes.
   */
  readonly close: Effect.Effect<void>
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
 * Handles each message `In` of a connection, answering with `Out`, failing with `E`, needing `R`, and
 * seeing its connection as `C` (`Context`, `Session.Session`, or `unknown` when it does not look).
 *
 * @since 0.1.0
 * @category models
 */
export interface Handler<in In, out Out, out E = never, out R = never, in C = unknown> extends Pipeable {
  readonly [TypeId]: TypeId
  readonly concurrency: Concurrency
  /** Phantom: the message, reply, error, requirement and context types. */
  readonly _types?: (_: { readonly in: In; readonly context: C }) => {
    readonly out: Out
    readonly error: E
    readonly requirements: R
  }
}

/**
 * @since 0.1.0
 */
export declare namespace Handler {
  /**
   * @since 0.1.0
   */
  // deno-lint-ignore no-explicit-any
  export type Any = Handler<any, any, any, any, any>
}

const Proto = {
  [TypeId]: TypeId,
  pipe() {
    return pipeArguments(this, arguments)
  }
}

const sequentialConcurrency: Concurrency = { _tag: "Sequential" }

const make = <In, Out, E, R, C>(
  kind: "sync" | "effect",
  many: boolean,
  run: (message: In, context: C) => unknown,
  concurrency: Concurrency
): Handler<In, Out, E, R, C> => {
  const handler = Object.create(Proto)
  handler.concurrency = concurrency
  handler[SpecKey] = { kind, many, run }
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
export const sync = <In, Out, C = unknown>(f: (message: In, context: C) => Out): Handler<In, Out, never, never, C> =>
  make("sync", false, f, sequentialConcurrency)

/**
 * A synchronous handler that answers each message with zero, one or many replies.
 *
 * @since 0.1.0
 * @category constructors
 */
export const syncMany = <In, Out, C = unknown>(
  f: (message: In, context: C) => Iterable<Out>
): Handler<In, Out, never, never, C> => make("sync", true, f, sequentialConcurrency)

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
export const effect = <In, Out, E = never, R = never, C = unknown>(
  f: (message: In, context: C) => Effect.Effect<Out, E, R>
): Handler<In, Out, E, R, C> => make("effect", false, f, sequentialConcurrency)

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
export const gen = <In, Y extends Yieldable, Out, C = unknown>(
  f: (message: In, context: C) => Generator<Y, Out, never>
): Handler<In, Out, GenError<Y>, GenContext<Y>, C> =>
  make("effect", false, (message: In, context: C) => runGenerator(f(message, context)), sequentialConcurrency)

/**
 * An Effect handler that answers each message with zero, one or many replies.
 *
 * @since 0.1.0
 * @category constructors
 */
export const effectMany = <In, Out, E = never, R = never, C = unknown>(
  f: (message: In, context: C) => Effect.Effect<Iterable<Out>, E, R>
): Handler<In, Out, E, R, C> => make("effect", true, f, sequentialConcurrency)

const noReplies: ReadonlyArray<never> = []

/**
 * A handler that answers each message with a `Stream` of replies: an HTTP chunked body, a large
 * result set, a file. The stream's elements are written in order, before the reply to the next
 * message, and pulled only as fast as the peer reads: while the outbound bytes are over the
 * high-water mark, pulling stops (and so does reading from the peer) until they drain to the
 * low-water mark. When the session ends first (the peer goes away), the stream is interrupted and
 * its finalizers run.
 *
 * @example
 * ```ts
 * import { Handler } from "sluice"
 * import { Stream } from "effect"
 *
 * // Every request is answered with the numbers 1 to n, one message each.
 * const count = Handler.stream((n: number) => Stream.range(1, n))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const stream = <In, Out, E = never, R = never, C = unknown>(
  f: (message: In, context: C) => Stream.Stream<Out, E, R>
): Handler<In, Out, E, R, C> =>
  make(
    "effect",
    true,
    (message: In, context: C) =>
      Effect.as(
        Stream.runForEach(f(message, context), (reply) => (context as unknown as Context<Out>).sendWait(reply)),
        noReplies
      ),
    sequentialConcurrency
  )

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
  ): <In, Out, E, R, C>(self: Handler<In, Out, E, R, C>) => Handler<In, Out, E, R, C>
  <In, Out, E, R, C>(
    self: Handler<In, Out, E, R, C>,
    limit: number,
    options?: { readonly ordered?: boolean | undefined }
  ): Handler<In, Out, E, R, C>
} = dual(
  (args) => isHandler(args[0]),
  <In, Out, E, R, C>(
    self: Handler<In, Out, E, R, C>,
    limit: number,
    options?: { readonly ordered?: boolean | undefined }
  ): Handler<In, Out, E, R, C> => {
    if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`concurrency limit must be >= 1, got ${limit}`)
    const spec = specOf(self)
    return make(spec.kind, spec.many, spec.run, { _tag: "Concurrent", limit, ordered: options?.ordered ?? true })
  }
)

/**
 * Handles one message at a time (the default).
 *
 * @since 0.1.0
 * @category combinators
 */
export const sequential = <In, Out, E, R, C>(self: Handler<In, Out, E, R, C>): Handler<In, Out, E, R, C> => {
  const spec = specOf(self)
  return make(spec.kind, spec.many, spec.run, sequentialConcurrency)
}

/**
 * @since 0.1.0
 * @category guards
 */
export const isHandler = (u: unknown): u is Handler.Any => typeof u === "object" && u !== null && TypeId in u
