import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Bytes from "../Bytes.ts"
import type { TransportError } from "../Errors.ts"
import * as Metrics from "../Metrics.ts"
import type * as Transport from "../Transport.ts"
import { formatAddress } from "./address.ts"
import { type EngineCore, type Host, SUSPENDED } from "./engine/index.ts"
import type { TaskPool } from "./pool.ts"
import type { Limits } from "./sweeper.ts"

/** Why reading is paused: a bit each, so that one cause resuming does not undo another. */
export const Paused = {
  /** `onOpen` runs: what the peer sends waits. */
  Opening: 1,
  /** A push returned `SUSPENDED`: a handler runs in a fiber, or dispatch waits for a slot. */
  Handler: 2,
  /** The outbound bytes are over the high-water mark. */
  Outbound: 4,
  /** The session finishes: nothing more is handled. */
  Finishing: 8
} as const

let nextId = 0

/**
 * A session's I/O: it is the connection's handler (reads, drains, the peer's end, the close) and
 * its engine's host (writes with water marks, `send`, waiting for the low-water mark). The
 * lifecycle (`lifecycle.ts`) decides what the events mean.
 */
export abstract class SessionIo implements Transport.ConnectionHandler, Host {
  readonly id: string
  bytesIn = 0
  bytesOut = 0
  /** Drains seen: the sweeper's sign that queued bytes make progress. */
  drains = 0
  readonly remote: string
  readonly engine: EngineCore
  /** The peer sent its FIN: nothing more will be read. */
  protected inputEnded = false
  /** The socket is closed: nothing can be written. */
  protected socketClosed = false
  protected paused: number = Paused.Opening
  /** Chunks read while reading was paused, handled in order on resume. */
  private backlog: Array<Uint8Array> = []
  private lowWaiters: Array<() => void> = []
  private readonly clock: Clock.Clock

  constructor(
    readonly connection: Transport.Connection,
    readonly limits: Limits,
    readonly context: Context.Context<unknown>,
    readonly pool: TaskPool | undefined,
    prefix: string,
    makeEngine: (host: Host) => EngineCore
  ) {
    this.id = `${prefix}-${++nextId}`
    this.remote = formatAddress(connection.remoteAddress)
    this.clock = Context.get(context as Context.Context<never>, Clock.Clock)
    this.engine = makeEngine(this)
  }

  get sessionId(): string {
    return this.id
  }

  /** The handlers' context: the session itself. */
  get handlerContext(): unknown {
    return this
  }

  get remoteAddress(): Transport.Address {
    return this.connection.remoteAddress
  }

  get localAddress(): Transport.Address {
    return this.connection.localAddress
  }

  get queuedBytes(): number {
    return this.connection.queuedBytes
  }

  // --- what the lifecycle decides --------------------------------------------------------------------

  /** Whether chunks are still handled (not finishing or closing). */
  protected abstract get reading(): boolean
  /** The engine stopped: an error it could not recover from, or a close after a reply. */
  protected abstract engineStopped(): void
  /** A push that waited for its handlers is done, and nothing else pauses reading. */
  protected abstract engineIdle(): void
  /** The peer sent its FIN and every chunk before it has been handled. */
  protected abstract peerEnded(): void
  /** The socket closed (`error` when it failed). */
  protected abstract socketGone(error: TransportError | undefined): void
  /** A bug ends the session. */
  abstract die(defect: unknown): void

  // --- reading ---------------------------------------------------------------------------------------

  onData(chunk: Uint8Array): void {
    this.bytesIn += chunk.length
    if (!this.reading) return
    if (this.paused !== 0) {
      // Bytes the transport had already read when reading was paused (or before `onOpen` was done).
      this.backlog.push(chunk.slice())
      return
    }
    this.process(chunk)
  }

  onEnd(): void {
    this.inputEnded = true
    if (this.paused === 0 && this.reading) this.peerEnded()
  }

  onClose(error: TransportError | undefined): void {
    this.socketClosed = true
    this.releaseLowWaiters()
    this.socketGone(error)
  }

  private process(chunk: Uint8Array): void {
    let step
    try {
      step = this.engine.pushChunk(chunk)
    } catch (defect) {
      // A bug below the engine's own checks: the replies encoded so far go out, the session ends with a
      // `Defect`, the server goes on.
      this.engine.stopped = "failed"
      const writer = this.engine.writer
      if (writer.length > 0) this.write(writer)
      this.die(defect)
      return
    }
    if (step === SUSPENDED) {
      this.pause(Paused.Handler)
      return
    }
    this.afterStep(step)
  }

  private afterStep(writer: Bytes.Writer): void {
    if (writer.length > 0) this.write(writer)
    if (this.engine.stopped !== undefined) this.engineStopped()
  }

  /** Whether reading is paused, for whatever reason. */
  get readingPaused(): boolean {
    return this.paused !== 0
  }

  protected pause(flag: number): void {
    if (this.paused === 0 && !this.socketClosed) this.connection.pause()
    this.paused |= flag
  }

  /** Clears one reason to pause; once none is left, the backlog is handled and reading resumes. */
  protected unpause(flag: number): void {
    if ((this.paused & flag) === 0) return
    this.paused &= ~flag
    while (this.paused === 0 && this.backlog.length > 0 && this.reading && this.engine.stopped === undefined) {
      this.process(this.backlog.shift()!)
    }
    if (this.paused !== 0 || !this.reading) return
    if (this.inputEnded) this.peerEnded()
    else if (!this.socketClosed) this.connection.resume()
  }

  /** Drops what was read and not handled (the session finishes). */
  protected dropBacklog(): void {
    this.backlog = []
  }

  // --- the engine's host -----------------------------------------------------------------------------

  resumed(): void {
    this.unpause(Paused.Handler)
    if ((this.paused & Paused.Handler) === 0) this.engineIdle()
  }

  stopped(): void {
    this.unpause(Paused.Handler)
    this.engineStopped()
  }

  closeRequested(): void {
    this.requestClose({ _tag: "Closed" })
  }

  /** Ends the session gracefully (see the lifecycle). */
  abstract requestClose(reason: { readonly _tag: "Closed" | "Shutdown" }): void

  get highWaterMark(): number {
    return this.limits.highWaterMark
  }

  get maxOutboundBytes(): number {
    return this.limits.maxOutboundBytes
  }

  outboundBytes(): number {
    return this.connection.queuedBytes
  }

  now(): number {
    return this.clock.currentTimeMillisUnsafe()
  }

  /** Whether bytes can still be written: the socket is open and no FIN has been sent. */
  abstract canWrite(): boolean

  /** Writes what `writer` holds and rewinds it; it gives its buffer up if the transport keeps it. */
  write(writer: Bytes.Writer): void {
    if (!this.canWrite()) {
      writer.reset()
      return
    }
    this.bytesOut += writer.length
    const connection = this.connection
    if (connection.writeRange !== undefined) {
      connection.writeRange(writer.bytes, writer.length)
      writer.reset()
    } else {
      const bytes = writer.take()
      if (connection.writeNoCopy === undefined) connection.write(bytes)
      else if (connection.writeNoCopy(bytes)) writer.detach()
    }
    if (connection.queuedBytes > this.limits.highWaterMark) this.pause(Paused.Outbound)
  }

  onDrain(): void {
    this.drains++
    this.onProgress()
  }

  /** Bytes were handed over: at the low-water mark, `sendWait` returns and reading resumes. */
  onProgress(): void {
    if (this.connection.queuedBytes > this.limits.lowWaterMark) return
    this.releaseLowWaiters()
    if ((this.paused & Paused.Outbound) !== 0) this.unpause(Paused.Outbound)
  }

  /** Done once the outbound bytes are at most the low-water mark (or the socket is gone). */
  readonly lowWater: Effect.Effect<void> = Effect.callback<void>((resume) => {
    if (this.socketClosed || this.connection.queuedBytes <= this.limits.lowWaterMark) return resume(Effect.void)
    const waiter = () => resume(Effect.void)
    this.lowWaiters.push(waiter)
    return Effect.sync(() => {
      const at = this.lowWaiters.indexOf(waiter)
      if (at !== -1) this.lowWaiters.splice(at, 1)
    })
  })

  private releaseLowWaiters(): void {
    const waiters = this.lowWaiters
    if (waiters.length === 0) return
    this.lowWaiters = []
    for (const waiter of waiters) waiter()
  }

  // --- metrics, once per sweep ----------------------------------------------------------------------

  private reportedBytesIn = 0
  private reportedBytesOut = 0
  private reportedFrames = 0

  /** Adds what happened since the last report to the metrics of `context`. */
  report(context: Context.Context<never>): void {
    if (this.bytesIn !== this.reportedBytesIn) {
      Metrics.bytesIn.updateUnsafe(this.bytesIn - this.reportedBytesIn, context)
      this.reportedBytesIn = this.bytesIn
    }
    if (this.bytesOut !== this.reportedBytesOut) {
      Metrics.bytesOut.updateUnsafe(this.bytesOut - this.reportedBytesOut, context)
      this.reportedBytesOut = this.bytesOut
    }
    const frames = this.engine.framesIn
    if (frames !== this.reportedFrames) {
      Metrics.framesIn.updateUnsafe(frames - this.reportedFrames, context)
      this.reportedFrames = frames
    }
  }
}
