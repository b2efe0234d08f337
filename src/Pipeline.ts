/**
 * A pipeline joins a framer, a packet codec and a handler:
 *
 * ```text
 * bytes -> Frame decode -> Packet decode -> Handler -> Packet encode -> Frame encode -> bytes
 * ```
 *
 * Its error type is the union of its stages' errors. Frame errors always end the connection (the
 * byte stream can no longer be trusted), after one last reply where `onFrameError` gives one; any
 * other error ends it too unless `catchTag` turns it into a reply, after which the connection
 * carries on.
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
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import { type Pipeable, pipeArguments } from "effect/Pipeable"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as Codec from "./Codec.ts"
import type { FrameError, HandlerError, HandlerTimeout, PacketDecodeError, PacketEncodeError } from "./Errors.ts"
import type * as Frame from "./Frame.ts"
import type * as Handler from "./Handler.ts"
import type { LastReply, Recover } from "./internal/engine/index.ts"
import { type Recovery, RecoveryKey, recoveryOf } from "./internal/pipeline.ts"
import * as internalStream from "./internal/stream.ts"

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
 * it answers, `E` the union of every stage's error, `R` what the handler needs, and `C` what its
 * handlers need to see of their connection (`Handler.Context`, `Session.Session`, or `unknown`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Pipeline<in out In, in out Out, out E = never, out R = never, in C = unknown> extends Pipeable {
  readonly [TypeId]: TypeId
  readonly framer: Frame.Framer
  // deno-lint-ignore no-explicit-any
  readonly codec: Codec.Codec<Uint8Array, In, Out, any, any>
  // deno-lint-ignore no-explicit-any
  readonly handler: Handler.Handler<In, Out, any, R, C>
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
  export type Any = Pipeline<any, any, any, any, any>
}

const Proto = {
  [TypeId]: TypeId,
  pipe() {
    return pipeArguments(this, arguments)
  }
}

const build = <In, Out, E, R, C>(
  framer: Frame.Framer,
  // deno-lint-ignore no-explicit-any
  codec: Codec.Codec<Uint8Array, In, Out, any, any>,
  // deno-lint-ignore no-explicit-any
  handler: Handler.Handler<In, Out, any, R, C>,
  recovery: Recovery
): Pipeline<In, Out, E, R, C> => {
  const pipeline = Object.create(Proto)
  pipeline.framer = framer
  pipeline.codec = codec
  pipeline.handler = handler
  pipeline[RecoveryKey] = recovery
  return pipeline
}

/**
 * Joins a framer, a codec and a handler. Its error type is the union of what each stage can fail
 * with: the frame errors, the codec's own errors, the handler's, `HandlerError` (a handler that threw
 * or died), `HandlerTimeout` (a message over the session's `handlerTimeout`), and the packet errors
 * a codec's stray exception is wrapped in.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <In, Out, DE, EE, HE, R, C>(options: {
  readonly framer: Frame.Framer
  readonly codec: Codec.Codec<Uint8Array, In, Out, DE, EE>
  readonly handler: Handler.Handler<In, Out, HE, R, C>
}): Pipeline<
  In,
  Out,
  FrameError | DE | EE | HE | HandlerError | HandlerTimeout | PacketDecodeError | PacketEncodeError,
  R,
  C
> => build(options.framer, options.codec, options.handler, { recover: undefined, lastReply: undefined })

/**
 * The tags of errors that a pipeline may recover from: all but the frame errors, after which the
 * byte stream cannot be trusted.
 *
 * @since 0.1.0
 * @category models
 */
export type RecoverableTag<E> = E extends { readonly _tag: infer K extends string }
  ? K extends "FrameTooLarge" | "MalformedFrame" | "FrameTimeout" ? never : K
  : never

/**
 * Turns errors with the given tag into a reply; the connection then carries on. The recovery runs
 * per failed message, in its place: replies keep their order. It gets the error, the message that
 * failed (`undefined` when there is none: a packet that could not be decoded) and the handler's
 * context, so that it can answer with the message's id, or `close` after its reply.
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
  <E, K extends RecoverableTag<E>, In, Out, C, E2, R2>(
    tag: K,
    f: (error: Extract<E, { readonly _tag: K }>, request: In | undefined, context: C) => Effect.Effect<Out, E2, R2>
  ): <R>(self: Pipeline<In, Out, E, R, C>) => Pipeline<In, Out, Exclude<E, { readonly _tag: K }> | E2, R | R2, C>
  <In, Out, E, R, C, K extends RecoverableTag<E>, E2, R2>(
    self: Pipeline<In, Out, E, R, C>,
    tag: K,
    f: (error: Extract<E, { readonly _tag: K }>, request: In | undefined, context: C) => Effect.Effect<Out, E2, R2>
  ): Pipeline<In, Out, Exclude<E, { readonly _tag: K }> | E2, R | R2, C>
} = dual(3, <In, Out, E, R, C, K extends RecoverableTag<E>, E2, R2>(
  self: Pipeline<In, Out, E, R, C>,
  tag: K,
  // deno-lint-ignore no-explicit-any
  f: (error: any, request: any, context: any) => Effect.Effect<Out, E2, R2>
): Pipeline<In, Out, Exclude<E, { readonly _tag: K }> | E2, R | R2, C> => {
  const recovery = recoveryOf(self)
  const previous = recovery.recover
  const recover: Recover = (error, request, context) => {
    if (typeof error === "object" && error !== null && (error as { _tag?: unknown })._tag === tag) {
      return f(error, request, context)
    }
    return previous === undefined ? undefined : previous(error, request, context)
  }
  return build(self.framer, self.codec, self.handler, { ...recovery, recover })
})

/**
 * One last reply to a frame error (bytes that break framing: RESP's `-ERR Protocol error`, HTTP's
 * 400, 413 or 431), written after the replies to every message before it; then the connection
 * closes, as it always does after a frame error, and the session ends with that error. A failure
 * of the reply's Effect leaves the connection to close without it.
 *
 * @example
 * ```ts
 * import { Frame, Handler, Packet, Pipeline } from "sluice"
 * import { Effect } from "effect"
 *
 * const lines = Pipeline.make({
 *   framer: Frame.lines({ maxLength: 80 }),
 *   codec: Packet.utf8,
 *   handler: Handler.sync((line: string) => `ok ${line}`)
 * }).pipe(Pipeline.onFrameError((error) => Effect.succeed(`error: ${error.message}`)))
 * ```
 *
 * @since 0.1.0
 * @category error handling
 */
export const onFrameError: {
  <Out, C, E2, R2>(
    f: (error: FrameError, context: C) => Effect.Effect<Out, E2, R2>
  ): <In, E, R>(self: Pipeline<In, Out, E, R, C>) => Pipeline<In, Out, E, R | R2, C>
  <In, Out, E, R, C, E2, R2>(
    self: Pipeline<In, Out, E, R, C>,
    f: (error: FrameError, context: C) => Effect.Effect<Out, E2, R2>
  ): Pipeline<In, Out, E, R | R2, C>
} = dual(2, <In, Out, E, R, C, E2, R2>(
  self: Pipeline<In, Out, E, R, C>,
  f: (error: FrameError, context: C) => Effect.Effect<Out, E2, R2>
): Pipeline<In, Out, E, R | R2, C> =>
  build(self.framer, self.codec, self.handler, {
    ...recoveryOf(self),
    lastReply: f as unknown as LastReply
  }))

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
   * must stay unchanged until then. After writing the bytes, check `error` and `closed`.
   */
  push(chunk: Uint8Array): Uint8Array | Effect.Effect<Uint8Array>
  /** The input ended: reports a partial frame, waits for handlers still running, flushes. */
  end(): Uint8Array | Effect.Effect<Uint8Array>
  /** The first error not recovered: once set, the connection must end after writing the replies. */
  readonly error: E | undefined
  /** A handler closed its connection after its reply: nothing after it is handled. */
  readonly closed: boolean
  /** Messages read whose reply is not yet written. */
  readonly inFlight: number
  /** Bytes held for a partial frame. */
  readonly buffered: number
  /** Interrupts handlers still running. */
  interrupt(): Effect.Effect<void>
}

/**
 * The context handlers see under `Pipeline.transform` and `Pipeline.engine`, where there is no
 * socket: id `"stream"`, the `state` given, `send` and `sendWait` into the output (in order with the
 * replies), and `close`, which ends the output after the current reply.
 *
 * @since 0.1.0
 * @category models
 */
export type StreamContext<Out, S = undefined> = Handler.Context<Out, S>

/**
 * Options of `engine`.
 *
 * @since 0.1.0
 * @category models
 */
export interface EngineOptions<E, S = undefined> {
  /** The state handlers see in their context. */
  readonly state?: S | undefined
  /** Replies produced outside `push` (after a handler suspended, or by `send`), in order. */
  readonly onReply?: ((bytes: Uint8Array) => void) | undefined
  /** The engine stopped outside `push`: its `error`, or `undefined` after a close. */
  readonly onStop?: ((error: E | undefined) => void) | undefined
}

/**
 * A push engine for one connection, living in the current scope: closing it interrupts handlers
 * still running. Its handlers see a `StreamContext`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const engine = <In, Out, E, R, S = undefined>(
  self: Pipeline<In, Out, E, R, StreamContext<Out, S>>,
  options: EngineOptions<E, S> = {}
): Effect.Effect<Engine<E>, never, R | Scope.Scope> =>
  Effect.flatMap(Effect.context<R | Scope.Scope>(), (context) => {
    const engine = internalStream.streamEngine(self, context as Context.Context<unknown>, options, {
      queuedBytes: () => 0,
      lowWater: Effect.void
    })
    return Effect.as(Effect.addFinalizer(() => engine.interrupt()), engine as unknown as Engine<E>)
  })

/**
 * Options of `transform`.
 *
 * @since 0.1.0
 * @category models
 */
export interface TransformOptions<S = undefined> {
  /** The state handlers see in their context. */
  readonly state?: S | undefined
  /** A handler that runs in a fiber for longer fails with `HandlerTimeout`. Default: no time-out. */
  readonly handlerTimeout?: Duration.Input | undefined
}

/**
 * Runs a pipeline over a stream of byte chunks (one element per read) and yields the reply bytes,
 * one element per batch. Needs no socket: this is how pipelines are tested, and how they run over
 * anything that is a stream of bytes. Handlers see a `StreamContext`; a handler's `close` ends the
 * output after its reply.
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
  <In, Out, E, R, S = undefined>(
    pipeline: Pipeline<In, Out, E, R, StreamContext<Out, S>>,
    options?: TransformOptions<S>
  ): <E1, R1>(input: Stream.Stream<Uint8Array, E1, R1>) => Stream.Stream<Uint8Array, E | E1, R | R1>
  <E1, R1, In, Out, E, R, S = undefined>(
    input: Stream.Stream<Uint8Array, E1, R1>,
    pipeline: Pipeline<In, Out, E, R, StreamContext<Out, S>>,
    options?: TransformOptions<S>
  ): Stream.Stream<Uint8Array, E | E1, R | R1>
} = dual(
  (args) => Stream.isStream(args[0]),
  <E1, R1, In, Out, E, R, S>(
    input: Stream.Stream<Uint8Array, E1, R1>,
    pipeline: Pipeline<In, Out, E, R, StreamContext<Out, S>>,
    options?: TransformOptions<S>
  ): Stream.Stream<Uint8Array, E | E1, R | R1> => internalStream.transform(input, pipeline, options)
)
