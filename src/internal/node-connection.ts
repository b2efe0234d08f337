import { Buffer } from "node:buffer"
import * as net from "node:net"
import process from "node:process"
import { TransportError } from "../Errors.ts"
import type { Address, Connection, ConnectionHandler } from "../Transport.ts"
import { formatAddress, makeAddress } from "./address.ts"

// --- Reads into a buffer of the connection's own --------------------------------------------------

/** First and smallest size of a connection's read buffer: what an idle connection holds. */
const MIN_READ_BUFFER = 2 * 1024
/** Largest read buffer (one read takes at most this much; node:net's own reads take 64 KiB). */
const MAX_READ_BUFFER = 64 * 1024
/** Small reads in a row before a buffer shrinks: one small read alone is no trend. */
const SHRINK_AFTER = 4

/**
 * The keys under which a `net.Socket` keeps its `onread` option (Node's `kBuffer`, `kBufferCb` and
 * `kBufferGen`), read off a socket made with that option; `undefined` where there are none (Bun's and
 * Deno's node:net).
 *
 * Why: without `onread`, node:net reads each chunk into an `ArrayBuffer` of its own. Those are
 * external memory to V8, and a process that has loaded Effect's modules starts with a young
 * generation at its largest size, which scavenges so seldom that the chunks pile up until they
 * trigger full mark-compacts: at 50 connections x 4 in flight x 4 KiB, about ten a second, each a
 * pause of several milliseconds (docs/bench/README.md). With `onread`, each connection reads into a
 * buffer it reuses, and the chunks cost V8 nothing. `onread` is public for sockets a program
 * creates, but `net.Server` has no option for it, so accepted sockets get it the way Node's own
 * constructor sets it up: these keys, then `useUserBuffer` on the handle.
 */
interface ReadBufferKeys {
  readonly buffer: symbol
  readonly callback: symbol
  readonly generator: symbol
}

let readBufferKeys: ReadBufferKeys | null | undefined
const keysOfOnread = (): ReadBufferKeys | undefined => {
  if (readBufferKeys !== undefined) return readBufferKeys ?? undefined
  readBufferKeys = null
  try {
    const probe = new net.Socket({ onread: { buffer: new Uint8Array(1), callback: () => true } })
    const keys = new Map(Object.getOwnPropertySymbols(probe).map((key) => [key.description, key]))
    probe.destroy()
    const buffer = keys.get("kBuffer")
    const callback = keys.get("kBufferCb")
    const generator = keys.get("kBufferGen")
    if (buffer !== undefined && callback !== undefined && generator !== undefined) {
      readBufferKeys = { buffer, callback, generator }
    }
  } catch {
    // no `onread` here: node:net's own reads
  }
  return readBufferKeys ?? undefined
}

/** The slice of a libuv stream handle used here. */
interface StreamHandle {
  readonly useUserBuffer?: (buffer: Uint8Array) => void
}

// --- The connection -------------------------------------------------------------------------------

/**
 * A `node:net` (or `node:tls`) socket as a `Connection`. Where its reads go:
 *
 * | mode       | reads go to                                        | when                                  |
 * | ---------- | -------------------------------------------------- | ------------------------------------- |
 * | own buffer | `onRead`, in `readBuffer`                           | TCP and Unix sockets, where `onread` is |
 * | streamed   | node:net's buffers, then the `data` event          | TLS sockets; a node:net without `onread` |
 *
 * With its own buffer, a read that comes while nothing may be delivered (before `start`, or when
 * node:net reads once more after `pause`) is kept (a copy) and reading stops; `resume` hands the
 * kept reads over first. Accepted sockets wait paused (`pauseOnConnect`) until `start`.
 *
 * `SLUICE_NODE_READS=streamed` in the environment keeps node:net's own reads everywhere: a switch for
 * comparing the two (bench/README.md), not a setting to deploy with.
 */
export class NodeConnection implements Connection {
  readonly remoteAddress: Address
  readonly localAddress: Address
  private handler: ConnectionHandler | undefined = undefined
  private closed = false
  private ending = false
  private failure: TransportError | undefined = undefined
  /** A `write` returned false: `onDrain` is owed once nothing is queued. */
  private drainOwed = false
  /** `pause` was called, and `resume` not since. */
  private paused = false
  /** What the next read goes into; `undefined` when node:net allocates each read (streamed). */
  private readBuffer: Uint8Array | undefined = undefined
  /** Bytes of the last read, and how many reads in a row used at most a quarter of the buffer. */
  private lastRead = 0
  private smallReads = 0
  /** Reads that came while nothing could be delivered, in order (copies). */
  private kept: Array<Uint8Array> | undefined = undefined

  constructor(readonly socket: net.Socket, unixPath: string | undefined) {
    this.remoteAddress = unixPath !== undefined
      ? { _tag: "Unix", path: unixPath }
      : makeAddress(socket.remoteAddress, socket.remotePort)
    this.localAddress = unixPath !== undefined
      ? { _tag: "Unix", path: unixPath }
      : makeAddress(socket.localAddress, socket.localPort)
    // Half-open by default (see `listen` for TLS servers, which cannot be created with it).
    socket.allowHalfOpen = true
    // From the start: an `error` without a listener (a reset before `start`, say) would crash the process.
    socket.on("error", (cause) => {
      this.failure ??= new TransportError({ operation: "read", address: formatAddress(this.remoteAddress), cause })
    })
    socket.setNoDelay(true)
    this.readIntoOwnBuffer()
  }

  start(handler: ConnectionHandler): void {
    if (this.handler !== undefined) return
    this.handler = handler
    const socket = this.socket
    // Nothing but `onClose` once the socket is destroyed: Bun's node:net emits `end` after `destroy()`.
    if (this.readBuffer === undefined) {
      socket.on("data", (chunk: Uint8Array) => {
        if (!socket.destroyed) handler.onData(chunk)
      })
    }
    socket.on("end", () => {
      if (!socket.destroyed) handler.onEnd()
    })
    socket.on("close", () => this.reportClose())
    if (socket.destroyed) return this.reportClose()
    if (!this.paused) this.resume()
  }

  /** Switches reading to a buffer of the connection's own (`onread`), where node:net allows it. */
  private readIntoOwnBuffer(): void {
    const keys = process.env.SLUICE_NODE_READS === "streamed" ? undefined : keysOfOnread()
    // TLS sockets read through their TLS layer: they keep node:net's reads.
    const handle = (this.socket as unknown as { readonly _handle?: StreamHandle })._handle
    if (keys === undefined || handle?.useUserBuffer === undefined || "encrypted" in this.socket) return
    const buffer = new Uint8Array(MIN_READ_BUFFER)
    this.readBuffer = buffer
    const socket = this.socket as unknown as Record<symbol, unknown>
    socket[keys.buffer] = buffer
    socket[keys.callback] = this.onRead
    socket[keys.generator] = this.nextReadBuffer
    handle.useUserBuffer(buffer)
  }

  /** A read into `readBuffer` (node:net calls it with the byte count and the buffer; false stops reading). */
  private readonly onRead = (n: number, buffer: Uint8Array): boolean => {
    this.lastRead = n
    if (this.socket.destroyed) return false
    const chunk = buffer.subarray(0, n)
    if (this.handler === undefined || this.paused || this.kept !== undefined) {
      ;(this.kept ??= []).push(chunk.slice())
      return false
    }
    this.handler.onData(chunk)
    return true
  }

  /**
   * The buffer of the next read, after each read (node:net asks): a read that filled the buffer
   * doubles it (more may be waiting), a run of reads that used at most a quarter of it halves it,
   * like netty's `AdaptiveRecvByteBufAllocator`. Otherwise the same buffer: the contract keeps a
   * chunk valid only until `onData` returns, or until `resume` when reading was paused from inside
   * `onData`, and nothing is read into it while the socket is paused.
   */
  private readonly nextReadBuffer = (): Uint8Array => {
    const buffer = this.readBuffer!
    const size = buffer.length
    const n = this.lastRead
    if (n === size) {
      this.smallReads = 0
      if (size < MAX_READ_BUFFER) this.readBuffer = new Uint8Array(size * 2)
    } else if (n > size / 4 || size === MIN_READ_BUFFER) {
      this.smallReads = 0
    } else if (++this.smallReads >= SHRINK_AFTER) {
      this.smallReads = 0
      this.readBuffer = new Uint8Array(size / 2)
    }
    return this.readBuffer!
  }

  private reportClose(): void {
    if (this.closed || this.handler === undefined) return
    this.closed = true
    this.handler.onClose(this.failure)
  }

  /**
   * Called by node:net for each write once it is flushed (with the bytes' count already taken off
   * `writableLength`): `onProgress` while later writes are still queued, `onDrain` once none is.
   * Node's own `drain` event comes only after a write that passed its 16 KiB high-water mark, while
   * the contract owes `onDrain` after every `write` that returned false.
   * A write that failed is no drain: node:net calls back every queued write with the error (a reset
   * peer) before the socket is destroyed, and a drain then would let a streamed reply go on writing
   * into a dead socket, from inside that callback, until it is closed.
   */
  private readonly afterWrite = (error?: Error | null): void => {
    if (error != null) return
    if (!this.drainOwed || this.closed || this.socket.destroyed) return
    if (this.socket.writableLength !== 0) {
      // This write is handed over and later ones are still queued.
      this.handler?.onProgress?.()
      return
    }
    this.drainOwed = false
    this.handler?.onDrain()
  }

  write(bytes: Uint8Array): boolean {
    if (this.closed || this.ending || this.socket.destroyed) return false
    const socket = this.socket
    // node:net keeps a reference to what it is given until it is flushed: give it a copy, from
    // Node's buffer pool for small writes rather than a new ArrayBuffer each time.
    socket.write(Buffer.from(bytes), this.afterWrite)
    // node:net's own answer is "below 16 KiB queued"; the contract's is "nothing queued".
    if (socket.writableLength === 0) return true
    this.drainOwed = true
    return false
  }

  writeNoCopy(bytes: Uint8Array): boolean {
    if (this.closed || this.ending || this.socket.destroyed) return false
    const socket = this.socket
    socket.write(bytes, this.afterWrite)
    // Nothing queued: the kernel took every byte inside `write`, and node:net holds no reference.
    if (socket.writableLength === 0) return false
    this.drainOwed = true
    return true
  }

  get queuedBytes(): number {
    return this.socket.writableLength
  }

  pause(): void {
    this.paused = true
    this.socket.pause()
  }

  resume(): void {
    this.paused = false
    const handler = this.handler
    if (handler === undefined) return // `start` resumes
    // Reads kept while nothing could be delivered go first; `onData` may pause again.
    while (this.kept !== undefined && !this.paused && !this.socket.destroyed) {
      const chunk = this.kept.shift()!
      if (this.kept.length === 0) this.kept = undefined
      handler.onData(chunk)
    }
    if (!this.paused) this.socket.resume()
  }

  end(): void {
    if (this.ending) return
    this.ending = true
    this.socket.end()
  }

  destroy(): void {
    this.socket.destroy()
  }
}
