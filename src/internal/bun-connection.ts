import { TransportError } from "../Errors.ts"
import type { Address, Connection, ConnectionHandler } from "../Transport.ts"
import { formatAddress, makeAddress } from "./address.ts"

/** The part of Bun's socket API the adapter uses (bun-types: `Bun.Socket`). */
export interface BunSocket {
  data: BunConnection | undefined
  readonly remoteAddress: string | null | undefined
  readonly remotePort: number | null | undefined
  readonly localAddress: string | null | undefined
  readonly localPort: number | null | undefined
  /** Bytes taken (possibly fewer than asked), or -1 when the socket is closed or shutting down. */
  write(data: Uint8Array, byteOffset?: number, byteLength?: number): number
  /** Sends FIN; reading goes on. */
  shutdown(): void
  /** Closes at once (SO_LINGER 0: the peer sees a reset). */
  terminate(): void
  pause(): void
  resume(): void
  setNoDelay(noDelay?: boolean): boolean
}

/**
 * The life of a Bun connection: one field, and every transition in this table. Reading (paused or
 * not, chunks held back) and the peer's FIN are not phases: they are what `onData` and `onEnd`
 * deliver while the connection is `Open` to `Shut`.
 *
 * | phase       | event                                                  | next        |
 * | ----------- | ------------------------------------------------------ | ----------- |
 * | `Accepted`  | `start(handler)`                                       | `Open`      |
 * | `Open`      | `end()` with nothing queued: FIN at once               | `Shut`      |
 * | `Open`      | `end()` with bytes queued                              | `Ending`    |
 * | `Ending`    | `drain` wrote the last queued byte: FIN                | `Shut`      |
 * | below `Destroyed` | `destroy()`: the socket is terminated            | `Destroyed` |
 * | below `Gone` | the socket closed (Bun's `close`)                     | `Gone`      |
 * | `Gone`      | what was held back, the end and the close delivered    | `Closed`    |
 *
 * Before `start`, the socket is paused (`held`) unless it was started from inside the accept
 * callback, and what arrives waits in the backlog.
 */
export const Phase = {
  Accepted: 0,
  Open: 1,
  Ending: 2,
  Shut: 3,
  Destroyed: 4,
  Gone: 5,
  Closed: 6
} as const

export type Phase = typeof Phase[keyof typeof Phase]

const EMPTY = new Uint8Array(0)
/** A write buffer that grew past this is dropped once it is empty, so idle connections stay small. */
const RETAINED_CAPACITY = 64 * 1024
const MIN_CAPACITY = 4 * 1024

/**
 * One Bun socket as a `Connection`. What it relies on of Bun (checked on Bun 1.4.5, see
 * test/transport-bun.test.ts): every `data` callback gets a fresh array, never reused; `write` may
 * take fewer bytes than asked (the rest is buffered here and flushed in one `write` per `drain`);
 * `shutdown()` is the half-close; after our own shutdown a plain TCP socket reports the peer's FIN
 * as a clean `close` without `end`; a reset is `close(socket, error)`.
 */
export class BunConnection implements Connection {
  readonly remoteAddress: Address
  readonly localAddress: Address
  phase: Phase = Phase.Accepted
  private handler: ConnectionHandler | undefined = undefined

  // Reading. Chunks that arrive while they cannot be delivered (before `start`, or while paused:
  // TLS may hand over several decrypted records from one read) wait in `backlog`.
  private paused = false
  /** The socket is paused until `start` (it was not started from inside the accept callback). */
  private held = false
  private backlog: Array<Uint8Array> | undefined = undefined
  private deliveryScheduled = false
  private peerEnded = false
  private endDelivered = false

  // Writing: bytes the socket did not take, in unsent[head, tail).
  private unsent: Uint8Array = EMPTY
  private head = 0
  private tail = 0

  private failure: TransportError | undefined = undefined
  /** Set while this class calls into the socket, which may close it synchronously. */
  private inSocketCall = false

  constructor(readonly socket: BunSocket, unixPath: string | undefined) {
    if (unixPath !== undefined) {
      this.remoteAddress = { _tag: "Unix", path: unixPath }
      this.localAddress = this.remoteAddress
    } else {
      this.remoteAddress = makeAddress(socket.remoteAddress, socket.remotePort)
      this.localAddress = makeAddress(socket.localAddress, socket.localPort)
      socket.setNoDelay(true)
    }
  }

  /** Pauses the socket until `start`, when it was not started synchronously. */
  holdUntilStart(): void {
    if (this.phase !== Phase.Accepted) return
    this.held = true
    this.socket.pause()
  }

  start(handler: ConnectionHandler): void {
    if (this.handler !== undefined) return
    this.handler = handler
    if (this.phase === Phase.Accepted) this.phase = Phase.Open
    if (this.held) {
      this.held = false
      if (!this.paused && this.phase < Phase.Gone) this.socket.resume()
    }
    if (this.backlog !== undefined || this.phase === Phase.Gone || this.peerEnded) this.scheduleDelivery()
  }

  get queuedBytes(): number {
    return this.tail - this.head
  }

  write(bytes: Uint8Array): boolean {
    return this.writeRange(bytes, bytes.byteLength)
  }

  writeRange(buffer: Uint8Array, length: number): boolean {
    if (this.phase >= Phase.Ending) return false
    if (this.tail > this.head) {
      // Something is waiting for `drain`: coalesce into it.
      this.append(buffer, 0, length)
      return false
    }
    if (length === 0) return true
    // Bun's offset and length count from the start of the view given.
    const written = this.socket.write(buffer, 0, length)
    if (written === length) return true
    if (written < 0) return false // closed or shutting down: `close` follows
    this.append(buffer, written, length)
    return false
  }

  pause(): void {
    if (this.paused) return
    this.paused = true
    if (this.phase < Phase.Gone && !this.held) this.socket.pause()
  }

  resume(): void {
    if (!this.paused) return
    this.paused = false
    if (this.phase < Phase.Gone && !this.held) this.socket.resume()
    if (this.handler !== undefined && (this.backlog !== undefined || this.phase === Phase.Gone || this.peerEnded)) {
      this.scheduleDelivery()
    }
  }

  end(): void {
    if (this.phase >= Phase.Ending) return
    this.phase = Phase.Ending
    if (this.tail === this.head) this.shutdown()
    // else: `drain` shuts down once the last queued byte is written.
  }

  destroy(): void {
    if (this.phase === Phase.Gone) {
      // Closed already, not yet delivered: what was held back is dropped, as after a destroy.
      this.wasDestroyed = true
      this.backlog = undefined
      return
    }
    if (this.phase >= Phase.Destroyed) return
    this.phase = Phase.Destroyed
    this.dropUnsent()
    this.backlog = undefined
    this.callSocket(() => this.socket.terminate())
  }

  // --- socket events ---

  onSocketData(chunk: Uint8Array): void {
    if (this.handler !== undefined && !this.paused && this.backlog === undefined) {
      this.handler.onData(chunk)
    } else if (this.phase !== Phase.Destroyed) {
      ;(this.backlog ??= []).push(chunk)
    }
  }

  onSocketDrain(): void {
    const queued = this.tail - this.head
    if (queued === 0) return // Bun also calls `drain` when nothing was held back
    const written = this.socket.write(this.unsent, this.head, queued)
    if (written < 0) return
    this.head += written
    if (this.head < this.tail) {
      if (written > 0) this.handler?.onProgress?.()
      return
    }
    this.dropUnsent()
    if (this.phase === Phase.Ending) this.shutdown()
    this.handler?.onDrain()
  }

  onSocketEnd(): void {
    this.peerEnded = true
    if (this.ready()) this.deliverEnd()
  }

  onSocketError(error: Error): void {
    this.failure ??= new TransportError({ operation: "read", address: formatAddress(this.remoteAddress), cause: error })
    // A throwing handler leaves Bun's socket open; a connection in an unknown state is closed.
    if (this.phase < Phase.Gone) this.callSocket(() => this.socket.terminate())
  }

  onSocketClose(error: Error | undefined): void {
    if (this.phase >= Phase.Gone) return
    const destroyed = this.phase === Phase.Destroyed
    const shut = this.phase === Phase.Shut
    this.phase = Phase.Gone
    this.shutSent = shut
    this.wasDestroyed = destroyed
    if (error !== undefined) {
      this.failure ??= new TransportError({
        operation: "read",
        address: formatAddress(this.remoteAddress),
        cause: error
      })
    }
    this.dropUnsent()
    // A failed connection is reported at once, paused or not, dropping what was held back (as
    // node:net does); a clean close waits for the held-back chunks and the end.
    if (destroyed || this.failure !== undefined) this.backlog = undefined
    if (this.handler === undefined) return // `start` delivers it
    // Closed from inside one of our calls (`destroy`, `end`): tell the handler once that call has
    // returned, as node:net does.
    if (this.inSocketCall) this.scheduleDelivery()
    else if (this.ready()) this.deliverClose()
  }

  // --- internals ---

  /** Whether the FIN had been sent, and whether the socket had been destroyed, when it closed. */
  private shutSent = false
  private wasDestroyed = false

  private shutdown(): void {
    this.phase = Phase.Shut
    this.callSocket(() => this.socket.shutdown())
  }

  private callSocket(f: () => void): void {
    this.inSocketCall = true
    try {
      f()
    } finally {
      this.inSocketCall = false
    }
  }

  /** Whether events can go to the handler now (started, not paused, nothing held back). */
  private ready(): boolean {
    return this.handler !== undefined && this.backlog === undefined &&
      (!this.paused || (this.phase === Phase.Gone && (this.wasDestroyed || this.failure !== undefined)))
  }

  private deliverEnd(): void {
    if (this.endDelivered || this.phase === Phase.Destroyed || this.wasDestroyed) return
    this.endDelivered = true
    this.handler!.onEnd()
  }

  private deliverClose(): void {
    if (this.phase === Phase.Closed) return
    // After our own shutdown Bun reports the peer's FIN as a clean close, without `end`.
    if (!this.wasDestroyed && this.failure === undefined && (this.peerEnded || this.shutSent)) this.deliverEnd()
    this.phase = Phase.Closed
    this.handler!.onClose(this.failure)
  }

  private scheduleDelivery(): void {
    if (this.deliveryScheduled) return
    this.deliveryScheduled = true
    queueMicrotask(() => {
      this.deliveryScheduled = false
      this.deliver()
    })
  }

  /** Hands over what was held back, in order: chunks, then the end, then the close. */
  private deliver(): void {
    const handler = this.handler
    if (handler === undefined || this.phase === Phase.Closed) return
    while (this.backlog !== undefined && !this.paused && this.phase !== Phase.Destroyed) {
      const chunk = this.backlog.shift()!
      if (this.backlog.length === 0) this.backlog = undefined
      handler.onData(chunk)
    }
    if (!this.ready()) return
    if (this.phase === Phase.Gone) this.deliverClose()
    else if (this.peerEnded) this.deliverEnd()
  }

  /** Queues bytes[from, to). */
  private append(bytes: Uint8Array, from: number, to: number): void {
    const size = to - from
    if (size <= 0) return
    const live = this.tail - this.head
    if (this.tail + size > this.unsent.byteLength) {
      if (live + size <= this.unsent.byteLength) {
        this.unsent.copyWithin(0, this.head, this.tail)
      } else {
        const grown = new Uint8Array(Math.max(this.unsent.byteLength * 2, live + size, MIN_CAPACITY))
        grown.set(this.unsent.subarray(this.head, this.tail))
        this.unsent = grown
      }
      this.head = 0
      this.tail = live
    }
    this.unsent.set(from === 0 && to === bytes.byteLength ? bytes : bytes.subarray(from, to), this.tail)
    this.tail += size
  }

  private dropUnsent(): void {
    this.head = 0
    this.tail = 0
    if (this.unsent.byteLength > RETAINED_CAPACITY) this.unsent = EMPTY
  }
}
