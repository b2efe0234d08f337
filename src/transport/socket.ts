/**
 * Any `@effect/platform` `Socket` (a WebSocket, a socket from `@effect/platform-node`, ...) as a
 * sluice `Connection`, so that a session can run a pipeline over it.
 *
 * The platform `Socket` has no way to stop reading: while the session pauses, messages that arrive
 * are held here and delivered on `resume`. Writes are sent one by one, each as one message (a
 * WebSocket message per frame with `Frame.datagram`).
 *
 * @since 0.1.0
 */
import type * as Socket from "@effect/platform/Socket"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"
import { TransportError } from "../Errors.ts"
import type { Address, Connection, ConnectionHandler } from "../Transport.ts"
import { formatAddress } from "../Transport.ts"

class SocketConnection implements Connection {
  queuedBytes = 0
  private handler: ConnectionHandler | undefined = undefined
  private paused = false
  private held: Array<Uint8Array> = []
  private closed = false
  private reader: Fiber.RuntimeFiber<void, unknown> | undefined = undefined

  constructor(
    readonly socket: Socket.Socket,
    readonly send: (chunk: Uint8Array) => Effect.Effect<void, Socket.SocketError>,
    readonly runFork: <A, E>(effect: Effect.Effect<A, E>) => Fiber.RuntimeFiber<A, E>,
    readonly remoteAddress: Address,
    readonly localAddress: Address
  ) {}

  start(handler: ConnectionHandler): void {
    this.handler = handler
    const reader = this.runFork(this.socket.run((data) => {
      if (this.paused) this.held.push(data.slice())
      else handler.onData(data)
    }))
    this.reader = reader
    reader.addObserver((exit) => {
      if (this.closed) return
      this.closed = true
      if (Exit.isSuccess(exit) || Exit.isInterrupted(exit)) {
        handler.onEnd()
        handler.onClose(undefined)
      } else {
        handler.onClose(
          new TransportError({ operation: "read", address: formatAddress(this.remoteAddress), cause: exit.cause })
        )
      }
    })
  }

  write(bytes: Uint8Array): boolean {
    if (this.closed) return false
    const copy = bytes.slice()
    this.queuedBytes += copy.length
    this.runFork(this.send(copy)).addObserver(() => {
      this.queuedBytes -= copy.length
      if (this.queuedBytes === 0) this.handler?.onDrain()
    })
    return false
  }

  pause(): void {
    this.paused = true
  }

  resume(): void {
    this.paused = false
    while (!this.paused && this.held.length > 0) this.handler?.onData(this.held.shift()!)
  }

  end(): void {
    this.destroy()
  }

  destroy(): void {
    const reader = this.reader
    if (reader !== undefined) this.runFork(reader.interruptAsFork(reader.id()))
  }
}

const unknownAddress: Address = { _tag: "Tcp", host: "socket", port: 0 }

/**
 * Adapts an `@effect/platform` `Socket`. The connection lives in the current scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromSocket = (
  socket: Socket.Socket,
  options?: { readonly remoteAddress?: Address | undefined; readonly localAddress?: Address | undefined }
): Effect.Effect<Connection, never, Scope.Scope> =>
  Effect.gen(function* () {
    const send = yield* socket.writer
    const runtime = yield* Effect.runtime<never>()
    return new SocketConnection(
      socket,
      send,
      Runtime.runFork(runtime),
      options?.remoteAddress ?? unknownAddress,
      options?.localAddress ?? unknownAddress
    )
  })
