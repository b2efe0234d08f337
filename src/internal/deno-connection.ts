import { TransportError } from "../Errors.ts"
import type { Address, Connection, ConnectionHandler } from "../Transport.ts"
import { formatAddress } from "./address.ts"

// --- The slice of the Deno namespace this file uses --------------------------------------------

export interface DenoAddr {
  readonly transport: string
  readonly hostname?: string
  readonly port?: number
  readonly path?: string | null
}

export interface DenoConn {
  readonly localAddr: DenoAddr
  readonly remoteAddr: DenoAddr
  read(buffer: Uint8Array): Promise<number | null>
  write(bytes: Uint8Array): Promise<number>
  closeWrite(): Promise<void>
  close(): void
  /** TCP connections only. */
  readonly setNoDelay?: (noDelay?: boolean) => void
  /** TLS connections only. */
  readonly handshake?: () => Promise<unknown>
}

export interface DenoListener {
  readonly addr: DenoAddr
  accept(): Promise<DenoConn>
  close(): void
}

export interface DenoNamespace {
  listen(
    options:
      | { readonly transport: "tcp"; readonly hostname: string; readonly port: number; readonly reusePort?: boolean }
      | { readonly transport: "unix"; readonly path: string }
  ): DenoListener
  listenTls(options: {
    readonly hostname: string
    readonly port: number
    readonly cert: string
    readonly key: string
    readonly reusePort?: boolean
  }): DenoListener
  connect(
    options:
      | { readonly hostname: string; readonly port: number; readonly signal: AbortSignal }
      | { readonly transport: "unix"; readonly path: string }
  ): Promise<DenoConn>
  connectTls(
    options: { readonly hostname: string; readonly port: number; readonly caCerts?: Array<string> | undefined }
  ): Promise<DenoConn>
  startTls(
    conn: DenoConn,
    options: { readonly hostname: string; readonly caCerts?: Array<string> | undefined }
  ): Promise<DenoConn>
  readonly errors: { readonly BadResource: abstract new (...args: Array<never>) => Error }
  /** Present only with `--unstable-net`: tells whether unstable net options are allowed. */
  readonly listenDatagram?: unknown
}

// --- Tuning -------------------------------------------------------------------------------------

/** First and smallest size of a connection's read buffer: what an idle connection holds. */
const MIN_READ_BUFFER = 8 * 1024
/** Largest read buffer (one `conn.read` reads at most this much). */
const MAX_READ_BUFFER = 64 * 1024
/** Small reads (or flushes) in a row before a buffer shrinks: one small read alone is no trend. */
const SHRINK_AFTER = 4
/** Smallest write buffer allocated when bytes must be queued. */
const MIN_WRITE_BUFFER = 4 * 1024
/** A write buffer up to this size is kept for good; a bigger one only while big writes go on. */
const SMALL_WRITE_BUFFER = 16 * 1024
/** A flushed write buffer up to this size is kept for reuse; larger ones are dropped at once. */
const MAX_SPARE_WRITE_BUFFER = 256 * 1024
/** Pause of the accept loop after an accept error other than "closed" (EMFILE, say). */
export const ACCEPT_RETRY_MILLIS = 50
/** A TLS client that has not finished its handshake by then is dropped (`tls.handshakeTimeout`). */
export const TLS_HANDSHAKE_TIMEOUT_MILLIS = 10_000

const EMPTY = new Uint8Array(0)

export const closeQuietly = (conn: DenoConn): void => {
  try {
    conn.close()
  } catch {
    // already closed
  }
}

export const toAddress = (addr: DenoAddr, unixPath: string | undefined): Address =>
  addr.transport === "unix" || addr.transport === "unixpacket"
    ? { _tag: "Unix", path: addr.path ?? unixPath ?? "" }
    : { _tag: "Tcp", host: addr.hostname ?? "", port: addr.port ?? 0 }

// --- Connection ---------------------------------------------------------------------------------

export class DenoConnection implements Connection {
  readonly remoteAddress: Address
  readonly localAddress: Address
  private handler: ConnectionHandler | undefined = undefined

  // reading
  private reading = false
  /** Reads in a row that used at most a quarter of the read buffer. */
  private smallReads = 0
  private paused = false
  private wake: (() => void) | undefined = undefined
  private eof = false

  // writing: one `conn.write` in flight at most; bytes written meanwhile gather in `unsent`
  private writing = false
  private inFlight = 0
  private unsent: Uint8Array = EMPTY
  private unsentLength = 0
  private spare: Uint8Array | undefined = undefined
  /** Flushes in a row whose writes would all have fit a small buffer. */
  private smallFlushes = 0
  private ending = false
  private writeShut = false

  // closing
  private closed = false
  private reported = false
  private failure: TransportError | undefined = undefined

  constructor(private readonly conn: DenoConn, unixPath: string | undefined) {
    this.remoteAddress = toAddress(conn.remoteAddr, unixPath)
    this.localAddress = toAddress(conn.localAddr, unixPath)
    if (typeof conn.setNoDelay === "function") {
      try {
        conn.setNoDelay(true)
      } catch {
        // not a TCP socket after all; nothing to tune
      }
    }
  }

  start(handler: ConnectionHandler): void {
    if (this.handler !== undefined) return
    this.handler = handler
    if (this.closed) {
      queueMicrotask(() => this.finish())
      return
    }
    this.reading = true
    void this.readLoop(handler)
  }

  private async readLoop(handler: ConnectionHandler): Promise<void> {
    // The buffer is reused from read to read: the loop never reads while `onData` runs or while
    // reading is paused, which is exactly as long as the contract keeps a chunk valid.
    let buffer: Uint8Array = new Uint8Array(MIN_READ_BUFFER)
    try {
      while (!this.closed) {
        if (this.paused) {
          await this.resumed()
          continue
        }
        let n: number | null
        try {
          n = await this.conn.read(buffer)
        } catch (cause) {
          if (!this.closed) this.fail("read", cause)
          break
        }
        // Paused from outside `onData` while the read was pending: hold what was read until resumed.
        while (this.paused && !this.closed) await this.resumed()
        if (this.closed) break
        if (n === null) {
          this.eof = true
          handler.onEnd()
          if (this.writeShut) this.closeResource()
          break
        }
        if (n > 0) {
          handler.onData(buffer.subarray(0, n))
          buffer = this.nextReadBuffer(buffer, n)
        }
      }
    } catch (defect) {
      // `onData` or `onEnd` threw: a bug above; it ends this connection only.
      this.fail("read", defect)
    }
    this.reading = false
    this.finish()
  }

  /**
   * Fits the read buffer to the traffic, like netty's `AdaptiveRecvByteBufAllocator`: a read that
   * filled it doubles it (more may be waiting), a run of reads that used at most a quarter halves it.
   * A resized buffer is a new one: the chunk just handed to `onData` is never written over.
   */
  private nextReadBuffer(buffer: Uint8Array, n: number): Uint8Array {
    const size = buffer.length
    if (n === size) {
      this.smallReads = 0
      return size < MAX_READ_BUFFER ? new Uint8Array(size * 2) : buffer
    }
    if (n > size / 4 || size === MIN_READ_BUFFER) {
      this.smallReads = 0
      return buffer
    }
    if (++this.smallReads < SHRINK_AFTER) return buffer
    this.smallReads = 0
    return new Uint8Array(size / 2)
  }

  private resumed(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.wake = resolve
    })
  }

  write(bytes: Uint8Array): boolean {
    if (this.closed || this.ending) return false
    if (bytes.length === 0) return !this.writing
    this.enqueue(bytes)
    if (!this.writing) {
      this.writing = true
      void this.flush()
    }
    // Deno writes complete asynchronously: the bytes are not handed over yet. `onDrain` follows.
    return false
  }

  /** Copies bytes to the end of the unsent buffer (the caller may reuse `bytes` at once). */
  private enqueue(bytes: Uint8Array): void {
    const length = this.unsentLength + bytes.length
    if (length > this.unsent.length) {
      const spare = this.spare
      if (this.unsentLength === 0 && spare !== undefined && spare.length >= length) {
        this.unsent = spare
        this.spare = undefined
      } else {
        const grown = new Uint8Array(Math.max(length, this.unsent.length * 2, MIN_WRITE_BUFFER))
        if (this.unsentLength > 0) grown.set(this.unsent.subarray(0, this.unsentLength))
        this.unsent = grown
      }
    }
    this.unsent.set(bytes, this.unsentLength)
    this.unsentLength = length
  }

  private async flush(): Promise<void> {
    let largest = 0
    try {
      while (this.unsentLength > 0) {
        // Take everything unsent as one write; later writes gather in the other buffer.
        const buffer = this.unsent
        const chunk = buffer.subarray(0, this.unsentLength)
        this.unsent = this.spare ?? EMPTY
        this.spare = undefined
        this.unsentLength = 0
        this.inFlight = chunk.length
        if (chunk.length > largest) largest = chunk.length
        let offset = 0
        while (offset < chunk.length) {
          const written = await this.conn.write(offset === 0 ? chunk : chunk.subarray(offset))
          if (this.closed) return
          if (written <= 0) throw new Error("the socket accepted no bytes")
          offset += written
          this.inFlight = chunk.length - offset
          // Handed over, with more still queued: the session may resume at its low-water mark.
          if (this.queuedBytes > 0) this.handler?.onProgress?.()
          if (this.closed) return
        }
        if (this.spare === undefined && buffer.length <= MAX_SPARE_WRITE_BUFFER) this.spare = buffer
      }
    } catch (cause) {
      if (!this.closed) this.fail("write", cause)
      return
    }
    this.shrinkWriteBuffers(largest)
    this.writing = false
    if (this.ending) {
      void this.shutdown()
      return
    }
    try {
      this.handler?.onDrain()
    } catch (defect) {
      // A bug above; like a throwing `onData`, it ends this connection only.
      this.fail("write", defect)
    }
  }

  /**
   * Called once all is written: drops big write buffers after a run of flushes that did not need
   * them. Not at once: traffic whose every burst is big (pipelined 4 KiB replies) would allocate
   * them anew each time, which roughly halved its throughput when measured.
   */
  private shrinkWriteBuffers(largest: number): void {
    if (largest > SMALL_WRITE_BUFFER) {
      this.smallFlushes = 0
      return
    }
    if (++this.smallFlushes < SHRINK_AFTER) return
    this.smallFlushes = 0
    if (this.unsent.length > SMALL_WRITE_BUFFER) this.unsent = EMPTY
    if (this.spare !== undefined && this.spare.length > SMALL_WRITE_BUFFER) this.spare = undefined
  }

  get queuedBytes(): number {
    return this.closed ? 0 : this.inFlight + this.unsentLength
  }

  pause(): void {
    this.paused = true
  }

  resume(): void {
    if (!this.paused) return
    this.paused = false
    this.wakeReader()
  }

  private wakeReader(): void {
    const wake = this.wake
    this.wake = undefined
    if (wake !== undefined) wake()
  }

  end(): void {
    if (this.ending || this.closed) return
    this.ending = true
    if (!this.writing) void this.shutdown()
  }

  private async shutdown(): Promise<void> {
    try {
      await this.conn.closeWrite()
    } catch (cause) {
      if (!this.closed) this.fail("write", cause)
      return
    }
    this.writeShut = true
    // Both directions are finished once the peer's end has been read too.
    if (this.eof) this.closeResource()
  }

  destroy(): void {
    this.closeResource()
  }

  private fail(operation: "read" | "write", cause: unknown): void {
    if (this.closed) return
    this.failure = new TransportError({ operation, address: formatAddress(this.remoteAddress), cause })
    this.closeResource()
  }

  /** Closes the socket at once; pending reads and writes reject and their loops end quietly. */
  private closeResource(): void {
    if (this.closed) return
    this.closed = true
    closeQuietly(this.conn)
    this.unsent = EMPTY
    this.unsentLength = 0
    this.spare = undefined
    this.inFlight = 0
    this.wakeReader()
    // Not from inside the caller's `destroy()`: `onClose` comes on a later tick.
    if (!this.reading) queueMicrotask(() => this.finish())
  }

  /** Reports the close once both the read loop has ended and the socket is closed. */
  private finish(): void {
    if (this.reported || this.reading || !this.closed || this.handler === undefined) return
    this.reported = true
    this.handler.onClose(this.failure)
  }
}
