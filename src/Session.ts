/**
 * A session is one connection at run time: its own Scope, its pipeline engine, bounded outbound
 * bytes with high and low water marks, time-outs, and lifecycle hooks.
 *
 * - Reads are decoded and handled synchronously in the transport's callback; a handler that
 *   suspends pauses reading until it completes, so replies keep their order and nothing queues up.
 * - Replies to one read are encoded into one buffer and written at once; bytes written while the
 *   socket is busy are coalesced into its next write.
 * - When the bytes queued for the peer pass `highWaterMark`, the session stops reading from that
 *   peer until they drain below `lowWaterMark`. A peer that does not read is closed by
 *   `writeTimeout`. Memory per connection is bounded by `maxFrameLength + highWaterMark +
 *   maxOutboundBytes` (plus one read).
 * - Time-outs are checked by one sweeper fiber per server or client, never per read.
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import type {
  ConnectionClosed,
  FrameError,
  HandlerTimeout,
  IdleTimeout,
  OutboundOverflow,
  PacketEncodeError,
  TransportError,
  WriteTimeout
} from "./Errors.ts"
import type * as Handler from "./Handler.ts"
import * as internal from "./internal/session.ts"
import type * as Pipeline from "./Pipeline.ts"
import type * as Transport from "./Transport.ts"

/**
 * Why a session ended.
 *
 * - `PeerClosed`: the peer closed its side after its requests were answered.
 * - `Closed`: `close` was called (or the server forced it).
 * - `Shutdown`: the server shut down gracefully.
 * - `Failed`: an error ended it: a frame error, an unrecovered packet or handler error, a time-out
 *   (`IdleTimeout`, `WriteTimeout`, `HandlerTimeout`), a transport error, or a failed hook.
 *
 * @since 0.1.0
 * @category models
 */
export type CloseReason =
  | { readonly _tag: "PeerClosed" }
  | { readonly _tag: "Closed" }
  | { readonly _tag: "Shutdown" }
  | { readonly _tag: "Failed"; readonly error: unknown }

/**
 * What `send` can fail with.
 *
 * @since 0.1.0
 * @category errors
 */
export type SendError = ConnectionClosed | OutboundOverflow | PacketEncodeError | FrameError

/**
 * The errors a session adds to its pipeline's.
 *
 * @since 0.1.0
 * @category errors
 */
export type SessionError = IdleTimeout | WriteTimeout | HandlerTimeout | TransportError

/**
 * One connection, as handlers and hooks see it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Session<in out Out = unknown, in out S = unknown> extends Handler.Context {
  readonly id: string
  readonly remoteAddress: Transport.Address
  readonly localAddress: Transport.Address
  /** Per-session state, as `onOpen` returned it; handlers may replace it. */
  state: S
  /** Encodes a message and queues it for the peer (server push; from any fiber). */
  send(message: Out): Effect.Effect<void, SendError>
  /** Ends the session gracefully: queued bytes are flushed, then the connection closes. */
  readonly close: Effect.Effect<void>
  /** Whether the session is still open. */
  readonly isOpen: boolean
  /** Bytes queued for the peer, not yet handed to the OS. */
  readonly queuedBytes: number
  /** Bytes read from the peer. */
  readonly bytesIn: number
  /** Bytes written to the peer (queued included). */
  readonly bytesOut: number
}

/**
 * Lifecycle hooks. `onOpen` runs before the first read and yields the session's state; it may
 * acquire resources in the session's Scope, released when the session ends. `onError` runs once if
 * the session ends with an error, then `onClose` once, however it ends. `onCron` runs on its
 * schedule (a heartbeat, say) while the session lives; a failure ends the session.
 *
 * @since 0.1.0
 * @category models
 */
export interface Hooks<Out, S, E, HE, R> {
  readonly onOpen?: ((session: Session<Out, S>) => Effect.Effect<S, HE, R | Scope.Scope>) | undefined
  readonly onError?:
    | ((session: Session<Out, S>, error: E | SessionError | HE) => Effect.Effect<void, never, R>)
    | undefined
  readonly onClose?: ((session: Session<Out, S>, reason: CloseReason) => Effect.Effect<void, never, R>) | undefined
  readonly onCron?:
    | {
      // deno-lint-ignore no-explicit-any
      readonly schedule: Schedule.Schedule<any, unknown>
      readonly run: (session: Session<Out, S>) => Effect.Effect<void, HE, R>
    }
    | undefined
}

/**
 * Limits and time-outs of every session, with their defaults.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** No bytes from the peer for this long closes it with `IdleTimeout`. Default 5 minutes. */
  readonly readIdleTimeout?: Duration.Input | undefined
  /** Queued bytes that make no progress for this long close it with `WriteTimeout`. Default 30 s. */
  readonly writeTimeout?: Duration.Input | undefined
  /** A handler that suspends for longer fails with `HandlerTimeout`. Default 30 s. */
  readonly handlerTimeout?: Duration.Input | undefined
  /** Queued outbound bytes above which reading from the peer pauses. Default 1 MiB. */
  readonly highWaterMark?: number | undefined
  /** Queued outbound bytes below which reading resumes. Default 256 KiB. */
  readonly lowWaterMark?: number | undefined
  /** Queued outbound bytes above which `send` fails with `OutboundOverflow`. Default 16 MiB. */
  readonly maxOutboundBytes?: number | undefined
  /** How long closing may wait for queued bytes to flush before the socket is dropped. Default 5 s. */
  readonly closeTimeout?: Duration.Input | undefined
}

/**
 * Options of `run`.
 *
 * @since 0.1.0
 * @category models
 */
export interface RunOptions<In, Out, E, R, S, HE, HR> extends Options, Hooks<Out, S, E, HE, HR> {
  readonly pipeline:
    | Pipeline.Pipeline<In, Out, E, R>
    | ((session: Session<Out, S>) => Pipeline.Pipeline<In, Out, E, R>)
}

/**
 * Runs a pipeline over one connection until it ends, and says why it ended. Servers and clients
 * do this for every connection; use it directly for a connection made elsewhere, e.g.
 * `fromSocket` (`sluice/socket`) of an Effect 4 WebSocket.
 *
 * @since 0.1.0
 * @category running
 */
export const run = <In, Out, E, R, S = void, HE = never, HR = never>(
  connection: Transport.Connection,
  options: RunOptions<In, Out, E, R, S, HE, HR>
): Effect.Effect<CloseReason, never, R | HR> =>
  Effect.suspend(() => {
    const limits = internal.limitsOf(options)
    const sweeper = new internal.Sweeper(limits)
    return Effect.scoped(
      Effect.andThen(
        Effect.forkScoped(sweeper.run),
        internal.run(connection, {
          pipeline: options.pipeline,
          hooks: options,
          limits,
          sweeper,
          prefix: "x"
        })
      )
    )
  })
