/**
 * The pieces every engine module shares: what a pipeline and a host give an engine, and the slot of
 * a message whose handler runs in a fiber.
 */
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import type * as Bytes from "../../Bytes.ts"
import type * as Codec from "../../Codec.ts"
import { type FrameError, HandlerError } from "../../Errors.ts"
import type * as Frame from "../../Frame.ts"
import type * as Handler from "../../Handler.ts"
import type { TaskPool } from "../pool.ts"
import type { EngineOutput } from "./output.ts"

/** Turns an error into a reply Effect, or `undefined` when no recovery covers it. */
export type Recover = (
  error: unknown,
  request: unknown,
  context: unknown
) => Effect.Effect<unknown, unknown, unknown> | undefined

/** The last reply to a frame error, written before the connection closes. */
export type LastReply = (error: FrameError, context: unknown) => Effect.Effect<unknown, unknown, unknown>

/** What the engine needs of a pipeline. */
export interface Spec {
  readonly framer: Frame.Framer
  readonly codec: Codec.Codec.Any
  readonly handler: Handler.Handler.Any
  readonly recover: Recover | undefined
  readonly lastReply: LastReply | undefined
}

/**
 * The session (or stream) an engine runs for. The engine never does I/O: it hands bytes to `write`,
 * and tells its host when a suspended push is done and when it has stopped.
 */
export interface Host {
  /** The handlers' second argument: the session, or a stream's context. */
  readonly handlerContext: unknown
  /** The services handlers run with. */
  readonly context: Context.Context<unknown>
  /**
   * Writes what `writer` holds to the peer now, and rewinds it (it detaches if the transport keeps
   * its buffer).
   */
  write(writer: Bytes.Writer): void
  /** A push (or `finishInput`) that returned `SUSPENDED` is done; every reply it owed is written. */
  resumed(): void
  /**
   * The engine stopped (an error it could not recover from, or a close after a reply) outside a
   * push, after its last reply was written. Inside a push, the caller reads `stopped` itself.
   */
  stopped(): void
  /** `close` from outside any message. */
  closeRequested(): void
  /** Outbound bytes not yet handed to the OS. */
  outboundBytes(): number
  /** Done once the outbound bytes are at most the low-water mark. */
  readonly lowWater: Effect.Effect<void>
  readonly highWaterMark: number
  readonly maxOutboundBytes: number
  /** Whether messages can still be written (the connection has not been closed). */
  canWrite(): boolean
  /** The connection's id and remote address, for errors. */
  readonly sessionId: string
  readonly remote: string
  /** The time in milliseconds, from Effect's `Clock` (the sweeper's). */
  now(): number
  /** The server's task pool, if it has one: handlers that run in a fiber take a slot of it. */
  readonly pool: TaskPool | undefined
}

/** `pushChunk` and `finishInput`: the handlers went on in a fiber; `Host.resumed` follows. */
export const SUSPENDED: unique symbol = Symbol.for("sluice/Engine/suspended")
/**
 * What `pushChunk`, `finishInput` and `abortFrame` return: the engine's writer, holding the replies
 * owed (for the caller to write, `Host.write`), or `SUSPENDED`. The writer rather than a view of its
 * bytes: on JavaScriptCore a view per read cost ~4% of the 50 x 16 x 64 B echo.
 */
export type Step = Bytes.Writer | typeof SUSPENDED

/** One message whose handler runs in a fiber (every message, under `concurrent(n)`). */
export class Slot {
  fiber: Fiber.Fiber<unknown, unknown> | undefined = undefined
  /** When its handler started in a fiber; 0 while it has not. */
  startedAt = 0
  timedOut = false
  /** Its reply has been written (or dropped): later sends from its fibers are broadcasts. */
  settled = false
  /** Interrupted because the session closed after an earlier message: its reply is dropped. */
  discarded = false
  /** It has written part of its reply (a send): sends from elsewhere wait until it is done. */
  open = false
  /** Sends made while messages before it are not yet answered (ordered concurrency). */
  out: Bytes.Writer | undefined = undefined
  /** Its outcome, waiting for its turn (ordered concurrency). */
  exit: Exit.Exit<unknown, unknown> | undefined = undefined
  many: boolean
  /** Cancels its wait for a slot of the task pool. */
  cancelWait: (() => void) | undefined = undefined
  /** Resumes a `sendWait` that waits for this slot to become the oldest unanswered message. */
  headWaiter: (() => void) | undefined = undefined
  constructor(
    readonly engine: EngineOutput,
    readonly seq: number,
    readonly request: unknown,
    /** False for a recovery or a last reply: its failure is final. */
    readonly recoverable: boolean,
    many: boolean
  ) {
    this.many = many
  }
}

/** The slot of the message whose handler runs in the current fiber, if any. */
export const CurrentSlot: Context.Reference<Slot | undefined> = Context.Reference<Slot | undefined>(
  "sluice/Engine/CurrentSlot",
  { defaultValue: () => undefined }
)

/**
 * The message whose handler (or recovery) runs synchronously right now, on any engine: JavaScript
 * runs one thing at a time, so a `send` or `close` evaluated meanwhile comes from it (or, when its
 * engine is another one, is a broadcast from it).
 */
export const running: { engine: EngineOutput | undefined; seq: number; slot: Slot | undefined } = {
  engine: undefined,
  seq: 0,
  slot: undefined
}

/** Whether a thrown value is a typed error (a tagged one), as codecs and framers must throw. */
export const isTagged = (error: unknown): boolean =>
  typeof error === "object" && error !== null && typeof (error as { _tag?: unknown })._tag === "string"

/** The error a failed handler reports: its typed failure, or a `HandlerError` for a defect. */
export const causeToError = (cause: Cause.Cause<unknown>): unknown => {
  const failure = Cause.findErrorOption(cause)
  if (failure._tag === "Some") return failure.value
  return new HandlerError({ cause: Cause.squash(cause) })
}
