/**
 * Any Effect 4 `Socket` (`effect/socket`: a WebSocket, a socket of `@effect/platform-node`, ...) as a
 * sluice `Connection`, so that a session can run a pipeline over it. Its own entry point,
 * `sluice/socket`, because `effect/socket` is marked unstable.
 *
 * - Reading pulls one batch at a time from the socket's reader. While the session pauses, nothing
 *   is pulled: what is held is at most the rest of the batch being delivered, never an unbounded
 *   array, and the socket's own backpressure reaches the peer.
 * - Writes are queued (copied) and handed to the socket's writer in order, several at once when
 *   they queued up, each as its own message (a WebSocket message per frame with `Frame.datagram`).
 * - A clean close by the peer (a FIN, WebSocket close code 1000) is the end of the input: the
 *   session ends as `PeerClosed`. Any other close or error is a `TransportError`.
 * - `end` flushes what is queued, then releases the writer, which half-closes a TCP socket; a
 *   WebSocket cannot half-close, so with `halfClose: false` it sends a close frame (code 1000)
 *   instead.
 *
 * @example
 * ```ts
 * import { Frame, Handler, Packet, Pipeline, Session } from "sluice"
 * import { fromSocket } from "sluice/socket"
 * import { Effect } from "effect"
 * import * as Socket from "effect/socket/Socket"
 *
 * const echo = Pipeline.make({
 *   framer: Frame.datagram(),
 *   codec: Packet.bytes,
 *   handler: Handler.sync((bytes: Uint8Array) => bytes)
 * })
 *
 * const program = Effect.gen(function* () {
 *   const socket = yield* Socket.makeWebSocket("ws://127.0.0.1:8080")
 *   const connection = yield* fromSocket(socket, { halfClose: false })
 *   return yield* Session.run(connection, { pipeline: echo })
 * }).pipe(Effect.scoped, Effect.provide(Socket.layerWebSocketConstructorGlobal))
 * ```
 *
 * @since 0.1.0
 */
import type * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as Scope from "effect/Scope"
import * as Socket from "effect/socket/Socket"
import { TransportError } from "../Errors.ts"
import type { Address, Connection, ConnectionHandler } from "../Transport.ts"
import { formatAddress } from "../internal/address.ts"

/**
 * Options of `fromSocket`.
 *
 * @since 0.1.0
 * @category models
 */
export interface FromSocketOptions {
  readonly remoteAddress?: Address | undefined
  readonly localAddress?: Address | undefined
  /**
   * Whether `end` half-closes (releases the writer: a FIN on TCP) and then waits for the peer to
   * close. Default true. For a WebSocket, which cannot half-close, set false: `end` sends a close
   * frame with code 1000 once the queued messages are written.
   */
  readonly halfClose?: boolean | undefined
}

class SocketConnection implements Connection {
  queuedBytes = 0
  private handler: ConnectionHandler | undefined = undefined
  private paused = false
  /** The rest of the batch being delivered when the session paused. */
  private held: Array<Uint8Array> = []
  /** Resumes the reader once the session resumes. */
  private wake: (() => void) | undefined = undefined
  private queue: Array<Uint8Array> = []
  private writing = false
  /** The peer closed cleanly: nothing more will be read. */
  private inputEnded = false
  private ending = false
  private writerReleased = false
  private closed = false

  constructor(
    private readonly socket: Socket.Socket,
    private readonly scope: Scope.Closeable,
    private readonly writer: Socket.Writer,
    private readonly writerScope: Scope.Closeable,
    private readonly runFork: <A, E>(effect: Effect.Effect<A, E>) => Fiber.Fiber<A, E>,
    private readonly halfClose: boolean,
    readonly remoteAddress: Address,
    readonly localAddress: Address
  ) {}

  start(handler: ConnectionHandler): void {
    if (this.handler !== undefined) return
    this.handler = handler
    const reader = Effect.flatMap(Socket.readerBytes(this.socket), (pull) => this.readLoop(pull))
    this.runFork(Scope.provide(reader, this.scope)).addObserver((exit) => {
      if (Exit.isSuccess(exit)) return
      const error = Exit.findErrorOption(exit)
      if (error._tag === "Some" && isCleanClose(error.value)) this.onInputEnd()
      else this.fail(error._tag === "Some" ? error.value : exit.cause)
    })
  }

  private readLoop(
    pull: Effect.Effect<ReadonlyArray<Uint8Array>, Socket.SocketError>
  ): Effect.Effect<never, Socket.SocketError> {
    const waitForResume = Effect.callback<void>((resume) => {
      if (!this.paused) return resume(Effect.void)
      this.wake = () => resume(Effect.void)
    })
    const deliver = (batch: ReadonlyArray<Uint8Array>): void => {
      for (let i = 0; i < batch.length; i++) {
        if (this.closed) return
        if (this.paused) {
          for (let j = i; j < batch.length; j++) this.held.push(batch[j]!)
          return
        }
        this.handler!.onData(batch[i]!)
      }
    }
    return Effect.suspend(() => this.paused ? waitForResume : Effect.void).pipe(
      Effect.andThen(pull),
      Effect.map(deliver),
      Effect.forever
    )
  }

  write(bytes: Uint8Array): boolean {
    if (this.closed || this.ending || bytes.length === 0) return this.queuedBytes === 0
    this.queue.push(bytes.slice())
    this.queuedBytes += bytes.length
    if (!this.writing) this.flush()
    return false
  }

  /** Hands everything queued to the writer, in order, until the queue is empty. */
  private flush(): void {
    this.writing = true
    const next = (): Effect.Effect<void, Socket.SocketError> =>
      Effect.suspend(() => {
        if (this.queue.length === 0 || this.closed) return Effect.void
        const batch = this.queue
        this.queue = []
        let size = 0
        for (const chunk of batch) size += chunk.length
        return Effect.flatMap(
          this.writer.writeAll(batch as unknown as readonly [Uint8Array, ...Array<Uint8Array>]),
          () => {
            this.queuedBytes -= size
            return next()
          }
        )
      })
    this.runFork(next()).addObserver((exit) => {
      this.writing = false
      if (Exit.isFailure(exit)) {
        const error = Exit.findErrorOption(exit)
        this.fail(error._tag === "Some" ? error.value : exit.cause, "write")
        return
      }
      if (this.closed) return
      this.handler?.onDrain()
      if (this.ending) this.releaseWriter()
    })
  }

  pause(): void {
    this.paused = true
  }

  resume(): void {
    if (!this.paused) return
    this.paused = false
    while (!this.paused && !this.closed && this.held.length > 0) this.handler?.onData(this.held.shift()!)
    if (this.paused) return
    const wake = this.wake
    this.wake = undefined
    wake?.()
  }

  end(): void {
    if (this.ending || this.closed) return
    this.ending = true
    if (!this.writing) this.releaseWriter()
  }

  destroy(): void {
    this.close(undefined)
  }

  private releaseWriter(): void {
    if (this.writerReleased) return
    this.writerReleased = true
    const release = this.halfClose
      ? Scope.close(this.writerScope, Exit.void)
      : Effect.ignore(this.writer.write(new Socket.CloseEvent(1000)))
    this.runFork(release).addObserver(() => {
      // Done once the peer has closed too (a half-closed TCP socket), or at once when it already has.
      if (this.inputEnded || !this.halfClose) this.close(undefined)
    })
  }

  private onInputEnd(): void {
    if (this.closed || this.inputEnded) return
    this.inputEnded = true
    this.handler?.onEnd()
    if (this.writerReleased) this.close(undefined)
  }

  private fail(cause: unknown, operation: "read" | "write" = "read"): void {
    if (this.closed) return
    this.close(new TransportError({ operation, address: formatAddress(this.remoteAddress), cause }))
  }

  private close(error: TransportError | undefined): void {
    if (this.closed) return
    this.closed = true
    this.queue = []
    this.held = []
    this.queuedBytes = 0
    const wake = this.wake
    this.wake = undefined
    wake?.()
    this.runFork(Scope.close(this.scope, Exit.void))
    this.handler?.onClose(error)
  }
}

/** A close that ends the input without an error: a FIN, or a WebSocket close with code 1000. */
const isCleanClose = (error: unknown): boolean =>
  Socket.isSocketError(error) && error.reason._tag === "SocketCloseError" && error.reason.code === 1000

const unknownAddress: Address = { _tag: "Tcp", host: "socket", port: 0 }

/**
 * Adapts an Effect 4 `Socket` into a `Connection` living in the current scope; run a pipeline over
 * it with `Session.run`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromSocket = (
  socket: Socket.Socket,
  options?: FromSocketOptions
): Effect.Effect<Connection, never, Scope.Scope> =>
  Effect.gen(function* () {
    const parent = yield* Effect.scope
    const scope = yield* Scope.fork(parent)
    const writerScope = yield* Scope.fork(scope)
    const writer = yield* Scope.provide(socket.writer, writerScope)
    const context = yield* Effect.context<never>()
    return new SocketConnection(
      socket,
      scope,
      writer,
      writerScope,
      Effect.runForkWith(context as Context.Context<never>),
      options?.halfClose ?? true,
      options?.remoteAddress ?? unknownAddress,
      options?.localAddress ?? unknownAddress
    )
  })
