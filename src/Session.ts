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
 * - Its life is one state machine (docs/sessions.md has the table): `Opening` (`onOpen` runs; what
 *   the peer sends waits), `Open`, `Finishing` (no new message is handled; those read are answered),
 *   `LastWords` (`onError` runs and may still `send`), `Closing` (FIN sent, waiting for the socket to
 *   close), `Closed` (`onClose` has run, the scope is closed).
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import type { HandlerTimeout, IdleTimeout, SendError as SendErrors, TransportError, WriteTimeout } from "./Errors.ts"
import type * as Handler from "./Handler.ts"
import * as lifecycle from "./internal/lifecycle.ts"
import { limitsOf, Sweeper } from "./internal/sweeper.ts"
import type * as Pipeline from "./Pipeline.ts"
import type * as Transport from "./Transport.ts"

/**
 * Why a session ended.
 *
 * - `PeerClosed`: the peer closed its side after its requests were answered.
 * - `Closed`: `close` was called (by a handler after its reply, a hook, or from outside), or the
 *   server forced it.
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
  | { readonly _tag: "Defect"; readonly defect: unknown }

/**
 * What `send` can fail with.
 *
 * @since 0.1.0
 * @category errors
 */
export type SendError = SendErrors

/**
 * The errors a session adds to its pipeline's.
 *
 * @since 0.1.0
 * @category errors
 */
export type SessionError = IdleTimeout | WriteTimeout | HandlerTimeout | TransportError

/**
 * One connection, as handlers and hooks see it: a handler's `Handler.Context` with the connection's
 * addresses and byte counts. A handler that needs them types its second parameter as
 * `Session.Session<Out, S>`.
 *
 * @example
 * ```ts
 * import { Frame, Handler, Packet, Pipeline, Server, type Session } from "sluice"
 * import { Effect } from "effect"
 *
 * // Numbers each line of a connection, and tells who sent it.
 * const numbered = Pipeline.make({
 *   framer: Frame.lines({ maxLength: 1024 }),
 *   codec: Packet.utf8,
 *   handler: Handler.sync((line: string, session: Session.Session<string, { count: number }>) =>
 *     `${++session.state.count} from ${session.remoteAddress._tag === "Tcp" ? session.remoteAddress.host : "?"}: ${line}`
 *   )
 * })
 * const server = Server.serve({ pipeline: numbered, port: 0, onOpen: () => Effect.succeed({ count: 0 }) })
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Session<in out Out = unknown, in out S = unknown> extends Handler.Context<Out, S> {
  readonly remoteAddress: Transport.Address
  readonly localAddress: Transport.Address
  /** Whether the session is still open (not yet finishing). */
  readonly isOpen: boolean
  /** Bytes queued for the peer, not yet handed to the OS. */
  readonly queuedBytes: number
  /** Bytes read from the peer. */
  readonly bytesIn: number
  /** Bytes written to the peer (queued included). */
  readonly bytesOut: number
}

/**
 * Lifecycle hooks.
 *
 * - `onOpen` runs first, with the connection already accepted: it may `send` (a greeting goes out
 *   before any reply), and what the peer sends meanwhile waits. Its result becomes `session.state`;
 *   resources it acquires live in the session's Scope, released when the session ends. If it fails,
 *   the session ends at once with that error.
 * - `onError` runs once if the session ends with an error (a time-out included), before the socket
 *   closes: it may still `send` its last words (an HTTP 408, "idle, bye").
 * - `onClose` runs once, however the session ends, after the socket has closed.
 * - `onCron` runs on its schedule (a heartbeat, say) while the session is open, and stops when the
 *   schedule ends; a failure ends the session.
 *
 * Where a session can be seen before `onOpen` has finished (in `onOpen` itself, `onError`,
 * `onClose`, `Server.sessions`), its state is typed `S | undefined`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Hooks<Out, S, E, HE, R> {
  readonly onOpen?: ((session: Session<Out, S | undefined>) => Effect.Effect<S, HE, R | Scope.Scope>) | undefined
  readonly onError?:
    | ((session: Session<Out, S | undefined>, error: E | SessionError | HE) => Effect.Effect<void, never, R>)
    | undefined
  readonly onClose?:
    | ((session: Session<Out, S | undefined>, reason: CloseReason) => Effect.Effect<void, never, R>)
    | undefined
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
  /**
   * A message whose handler has run in a fiber for this long fails with `HandlerTimeout` (which a
   * recovery may answer); the others go on. A handler that answers without a fiber is never timed.
   * Default 30 s.
   */
  readonly handlerTimeout?: Duration.Input | undefined
  /**
   * A frame (or a head) not complete this long after its first byte ends the session with
   * `FrameTimeout`, after the pipeline's last reply to frame errors (an HTTP 408): a peer that sends
   * a request a byte at a time keeps the idle time-out happy, not this one. A body streamed in
   * chunks is not one frame: each chunk a framer hands out is complete as soon as its bytes are
   * there, so a large upload that keeps coming is bounded by `readIdleTimeout` instead. Not counted
   * while reading is paused. Default 30 s.
   */
  readonly frameTimeout?: Duration.Input | undefined
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
  readonly pipeline: Pipeline.Pipeline<In, Out, E, R, Session<Out, S>>
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
    const limits = limitsOf(options)
    const sweeper = new Sweeper(limits)
    return Effect.scoped(
      Effect.andThen(
        Effect.forkScoped(sweeper.run),
        lifecycle.run(connection, {
          pipeline: options.pipeline,
          hooks: options,
          limits,
          sweeper,
          prefix: "x",
          pool: undefined
        })
      )
    )
  })
