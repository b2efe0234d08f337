/**
 * A pipeline joins a framer, a packet codec and a handler:
 *
 * ```text
 * bytes -> Frame decode -> Packet decode -> Handler -> Packet encode -> Frame encode -> bytes
 * ```
 *
 * Its error type is the union of its stages' errors. Frame errors always end the connection (the
 * byte stream can no longer be trusted); any other error ends it too unless `catchTag` turns it
 * into a reply, after which the connection carries on.
 *
 * The core is a synchronous push engine (`engine`): feed it a chunk and it returns the reply bytes
 * for that chunk, or an Effect when a handler really suspends. Transports drive it from their I/O
 * callbacks; `transform` runs it over any `Stream` of byte chunks, which is how it is tested.
 *
 * @example
 * ```ts
 * import { Frame, Handler, Packet, Pipeline } from "sluice"
 *
 * const upper = Pipeline.make({
 *   framer: Frame.lines({ maxLength: 1024 }),
 *   codec: Packet.utf8,
 *   handler: Handler.sync((line: string) => line.toUpperCase())
 * })
 * ```
 *
 * @since 0.1.0
 */
import type * as Cause from "effect/Cause"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { dual } from "effect/Function"
import * as Queue from "effect/Queue"
import { type Pipeable, pipeArguments } from "effect/Pipeable"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as Bytes from "./Bytes.ts"
import type * as Codec from "./Codec.ts"
import type { FrameError, HandlerError } from "./Errors.ts"
import type * as Frame from "./Frame.ts"
import type * as Handler from "./Handler.ts"
import { Engine as EngineImpl, type Recover, type Step } from "./internal/engine.ts"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("sluice/Pipeline")

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * A protocol stack from bytes to a handler and back. `In` is what the handler receives, `Out` what
 * it answers, `E` the union of every stage's error, `R` what the handler needs.
 *
 * @since 0.1.0
 * @category models
 */
export interface Pipeline<in out In, in out Out, out E = never, out R = never> extends Pipeable {
  readonly [TypeId]: TypeId
  readonly framer: Frame.Framer
  // deno-lint-ignore no-explicit-any
  readonly codec: Codec.Codec<Uint8Array, In, Out, any, any>
  // deno-lint-ignore no-explicit-any
  readonly handler: Handler.Handler<In, Out, any, R>
  /** The recoveries added by `catchTag`, as one function. */
  readonly recover: Recover | undefined
  /** Phantom: the error type. */
  readonly _E?: (_: never) => E
}

/**
 * @since 0.1.0
 */
export declare namespace Pipeline {
  /**
   * @since 0.1.0
   */
  // deno-lint-ignore no-explicit-any
  export type Any = Pipeline<any, any, any, any>
}

const Proto = {
  [TypeId]: TypeId,
  pipe() {
    return pipeArguments(this, arguments)
  }
}

const build = <In, Out, E, R>(
  framer: Frame.Framer,
  // deno-lint-ignore no-explicit-any
  codec: Codec.Codec<Uint8Array, In, Out, any, any>,
  // deno-lint-ignore no-explicit-any
  handler: Handler.Handler<In, Out, any, R>,
  recover: Recover | undefined
): Pipeline<In, Out, E, R> => {
  const pipeline = Object.create(Proto)
  pipeline.framer = framer
  pipeline.codec = codec
  pipeline.handler = handler
  pipeline.recover = recover
  return pipeline
}

/**
 * Joins a framer, a codec and a handler.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <In, Out, DE, EE, HE, R>(options: {
  readonly framer: Frame.Framer
  readonly codec: Codec.Codec<Uint8Array, In, Out, DE, EE>
  readonly handler: Handler.Handler<In, Out, HE, R>
}): Pipeline<In, Out, FrameError | DE | EE | HE | HandlerError, R> =>
  build(options.framer, options.codec, options.handler, undefined)

/**
 * The tags of errors that a pipeline may recover from: all but the frame errors, after which the
 * byte stream cannot be trusted.
 *
 * @since 0.1.0
 * @category models
 */
export type RecoverableTag<E> = E extends { readonly _tag: infer K extends string }
  ? K extends "FrameTooLarge" | "MalformedFrame" ? never : K
  : never

/**
 * Turns errors with the given tag into a reply; the connection then carries on. The recovery runs
 * per failed message, in its place: replies keep their order.
 *
 * @example
 * ```ts
 * import { Pipeline } from "sluice"
 * import { Effect } from "effect"
 *
 * declare const resp: Pipeline.Pipeline<Array<string>, string, import("sluice").Errors.PacketDecodeError>
 * const forgiving = resp.pipe(
 *   Pipeline.catchTag("PacketDecodeError", (e) => Effect.succeed(`-ERR ${e.message}`))
 * )
 * ```
 *
 * @since 0.1.0
 * @category error handling
 */
export const catchTag: {
  <E, K extends RecoverableTag<E>, Out, E2, R2>(
    tag: K,
    f: (error: Extract<E, { readonly _tag: K }>) => Effect.Effect<Out, E2, R2>
  ): <In, R>(self: Pipeline<In, Out, E, R>) => Pipeline<In, Out, Exclude<E, { readonly _tag: K }> | E2, R | R2>
  <In, Out, E, R, K extends RecoverableTag<E>, E2, R2>(
    self: Pipeline<In, Out, E, R>,
    tag: K,
    f: (error: Extract<E, { readonly _tag: K }>) => Effect.Effect<Out, E2, R2>
  ): Pipeline<In, Out, Exclude<E, { readonly _tag: K }> | E2, R | R2>
} = dual(3, <In, Out, E, R, K extends RecoverableTag<E>, E2, R2>(
  self: Pipeline<In, Out, E, R>,
  tag: K,
  // deno-lint-ignore no-explicit-any
  f: (error: any) => Effect.Effect<Out, E2, R2>
): Pipeline<In, Out, Exclude<E, { readonly _tag: K }> | E2, R | R2> => {
  const previous = self.recover
  const recover: Recover = (error) => {
    if (typeof error === "object" && error !== null && (error as { _tag?: unknown })._tag === tag) return f(error)
    return previous === undefined ? undefined : previous(error)
  }
  return build(self.framer, self.codec, self.handler, recover)
})

/**
 * The push engine of one connection. See the module's documentation.
 *
 * @since 0.1.0
 * @category models
 */
export interface Engine<E> {
  /**
   * Feeds one chunk and returns the reply bytes for it (a view, valid until the next call), or an
   * Effect yielding them when a handler suspends; do not push again before it completes. The chunk
   * must stay unchanged until then. After writing the bytes, check `error`.
   */
  push(chunk: Uint8Array): Uint8Array | Effect.Effect<Uint8Array>
  /** The input ended: reports a partial frame, waits for concurrent handlers, flushes. */
  end(): Uint8Array | Effect.Effect<Uint8Array>
  /** The first error not recovered: once set, the connection must end after writing the replies. */
  readonly error: E | undefined
  /** Messages whose reply is not yet written (concurrent handlers). */
  readonly inFlight: number
  /** Bytes held for a partial frame. */
  readonly buffered: number
  /** Interrupts handlers still running. */
  interrupt(): Effect.Effect<void>
}

/**
 * Options of `engine`.
 *
 * @since 0.1.0
 * @category models
 */
export interface EngineOptions<E> {
  readonly context?: Handler.Context | undefined
  /** Replies produced outside `push` (concurrent handlers): written in order, synchronously. */
  readonly onReply?: ((bytes: Uint8Array) => void) | undefined
  /** The failure of a concurrent handler, met outside `push`. */
  readonly onFailure?: ((error: E) => void) | undefined
  /** Per-message deadline for handlers that suspend; a miss fails with `HandlerTimeout`. */
  readonly handlerTimeout?: Duration.Input | undefined
  /** The buffer replies are encoded into (reused; one per connection). */
  readonly writer?: Bytes.Writer | undefined
}

class EngineView<E, R> implements Engine<E> {
  constructor(readonly impl: EngineImpl<R>) {}
  push(chunk: Uint8Array): Uint8Array | Effect.Effect<Uint8Array> {
    return this.impl.push(chunk) as Step as Uint8Array | Effect.Effect<Uint8Array>
  }
  end(): Uint8Array | Effect.Effect<Uint8Array> {
    return this.impl.end() as Uint8Array | Effect.Effect<Uint8Array>
  }
  get error(): E | undefined {
    return this.impl.error as E | undefined
  }
  get inFlight(): number {
    return this.impl.inFlight
  }
  get buffered(): number {
    return this.impl.decoder.buffered
  }
  interrupt(): Effect.Effect<void> {
    return this.impl.interrupt()
  }
}

/**
 * A push engine for one connection, living in the current scope: closing it interrupts handlers
 * still running.
 *
 * @since 0.1.0
 * @category constructors
 */
export const engine = <In, Out, E, R>(
  self: Pipeline<In, Out, E, R>,
  options: EngineOptions<E> = {}
): Effect.Effect<Engine<E>, never, R | Scope.Scope> =>
  Effect.flatMap(Effect.context<R>(), (context) => {
    const impl = new EngineImpl<R>(self, {
      handlerContext: options.context ?? { id: "stream" },
      context,
      onReply: options.onReply,
      onFailure: options.onFailure as ((error: unknown) => void) | undefined,
      handlerTimeout: options.handlerTimeout,
      writer: options.writer
    })
    return Effect.as(Effect.addFinalizer(() => impl.interrupt()), new EngineView<E, R>(impl))
  })

/**
 * Runs a pipeline over a stream of byte chunks (one element per read) and yields the reply bytes,
 * one element per batch. Needs no socket: this is how pipelines are tested, and how they run over
 * anything that is a stream of bytes.
 *
 * @example
 * ```ts
 * import { Frame, Handler, Packet, Pipeline } from "sluice"
 * import { Effect, Stream } from "effect"
 *
 * const pipeline = Pipeline.make({
 *   framer: Frame.lines({ maxLength: 100 }),
 *   codec: Packet.utf8,
 *   handler: Handler.sync((line: string) => line.length.toString())
 * })
 * const replies = Stream.make(new TextEncoder().encode("ab\nabc\n")).pipe(Pipeline.transform(pipeline))
 * ```
 *
 * @since 0.1.0
 * @category running
 */
export const transform: {
  <In, Out, E, R>(
    pipeline: Pipeline<In, Out, E, R>,
    options?: { readonly handlerTimeout?: Duration.Input | undefined }
  ): <E1, R1>(input: Stream.Stream<Uint8Array, E1, R1>) => Stream.Stream<Uint8Array, E | E1, R | R1>
  <E1, R1, In, Out, E, R>(
    input: Stream.Stream<Uint8Array, E1, R1>,
    pipeline: Pipeline<In, Out, E, R>,
    options?: { readonly handlerTimeout?: Duration.Input | undefined }
  ): Stream.Stream<Uint8Array, E | E1, R | R1>
} = dual(
  (args) => Stream.isStream(args[0]),
  <E1, R1, In, Out, E, R>(
    input: Stream.Stream<Uint8Array, E1, R1>,
    pipeline: Pipeline<In, Out, E, R>,
    options?: { readonly handlerTimeout?: Duration.Input | undefined }
  ): Stream.Stream<Uint8Array, E | E1, R | R1> =>
    Stream.unwrap(Effect.gen(function* () {
      // Bounded: the input is read no further ahead than a few batches of replies.
      const mailbox = yield* Queue.make<Uint8Array, E | E1 | Cause.Done>({ capacity: 16 })
      // Replies of concurrent handlers arrive outside the producer: when the mailbox is full they
      // wait here, in order (at most the concurrency limit's worth), until the producer moves them.
      const overflow: Array<Uint8Array> = []
      const onReply = (bytes: Uint8Array): void => {
        const copy = bytes.slice()
        if (overflow.length > 0 || !Queue.offerUnsafe(mailbox, copy)) overflow.push(copy)
      }
      const engine = yield* pipeline.pipe(
        engine_({
          onReply,
          onFailure: (error) => {
            // After the replies still waiting in `overflow`.
            Effect.runFork(Effect.andThen(flushOverflow, Queue.fail(mailbox, error)))
          },
          handlerTimeout: options?.handlerTimeout
        })
      )
      const flushOverflow: Effect.Effect<void> = Effect.suspend(() =>
        overflow.length === 0 ? Effect.void : Effect.asVoid(Queue.offerAll(mailbox, overflow.splice(0)))
      )
      const offer = (bytes: Uint8Array): Effect.Effect<void, E> =>
        Effect.andThen(
          flushOverflow,
          Effect.suspend(() => {
            const error = engine.error
            const sent = bytes.length > 0 ? Effect.asVoid(Queue.offer(mailbox, bytes.slice())) : Effect.void
            return error === undefined ? sent : Effect.andThen(sent, Effect.fail(error as E))
          })
        )
      const step = (result: Uint8Array | Effect.Effect<Uint8Array>): Effect.Effect<void, E> =>
        result instanceof Uint8Array ? offer(result) : Effect.flatMap(result, offer)
      yield* input.pipe(
        Stream.runForEach((chunk) => step(engine.push(chunk))),
        Effect.andThen(Effect.suspend(() => step(engine.end()))),
        Effect.andThen(flushOverflow),
        Effect.exit,
        Effect.flatMap((exit) => Exit.isSuccess(exit) ? Queue.end(mailbox) : Queue.failCause(mailbox, exit.cause)),
        Effect.forkScoped
      )
      return Stream.fromQueue(mailbox)
    }))
)

const engine_ =
  <E>(options: EngineOptions<E>) =>
  <In, Out, R>(pipeline: Pipeline<In, Out, E, R>): Effect.Effect<Engine<E>, never, R | Scope.Scope> =>
    engine(pipeline, options)
