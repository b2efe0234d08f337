/**
 * Byte buffers for the hot path: a growable, reusable `Writer` that encoders write into, so that all
 * replies to one read end up in one buffer and one write (DESIGN §4).
 *
 * @since 0.1.0
 */

import { runtime } from "./internal/runtime.ts"

const encoder = new TextEncoder()

/**
 * The empty byte array, shared.
 *
 * @since 0.1.0
 * @category constants
 */
export const empty: Uint8Array = new Uint8Array(0)

/**
 * A growable byte buffer that is reused across writes. `take()` hands out a view of what was written
 * and rewinds: the view stays valid until the next write into the same `Writer`. A transport that
 * keeps the bytes after its write call returns (Node's `socket.write`) must copy them.
 *
 * @since 0.1.0
 * @category models
 */
export class Writer {
  /** The backing array; `bytes.subarray(0, length)` has been written. */
  bytes: Uint8Array
  /** How many bytes have been written since the last `take` or `reset`. */
  length = 0
  /** Made on first use: most writers never write a multi-byte integer. */
  private view: DataView | undefined = undefined
  private readonly initialCapacity: number
  private readonly retainCapacity: number

  constructor(options?: { readonly initialCapacity?: number; readonly retainCapacity?: number }) {
    // Small to start with and little kept after a burst: a server holds one per connection.
    this.initialCapacity = Math.max(options?.initialCapacity ?? 512, 16)
    this.retainCapacity = options?.retainCapacity ?? 256 * 1024
    this.bytes = new Uint8Array(this.initialCapacity)
  }

  /** Makes room for `n` more bytes. */
  ensure(n: number): void {
    const need = this.length + n
    if (need <= this.bytes.length) return
    let capacity = this.bytes.length * 2
    while (capacity < need) capacity *= 2
    const next = new Uint8Array(capacity)
    next.set(this.bytes.subarray(0, this.length))
    this.bytes = next
    this.view = undefined
  }

  /** Appends bytes. */
  write(bytes: Uint8Array): void {
    this.ensure(bytes.length)
    this.bytes.set(bytes, this.length)
    this.length += bytes.length
  }

  /** Appends the UTF-8 encoding of a string and returns how many bytes that took. */
  writeUtf8(text: string): number {
    // A UTF-16 code unit encodes to at most 3 bytes.
    this.ensure(text.length * 3)
    const { written } = encoder.encodeInto(text, this.bytes.subarray(this.length))
    this.length += written
    return written
  }

  /** Appends one byte. */
  writeUint8(value: number): void {
    this.ensure(1)
    this.bytes[this.length++] = value
  }

  /** Reserves `n` bytes (to be filled later, e.g. a length header) and returns their offset. */
  reserve(n: number): number {
    this.ensure(n)
    const at = this.length
    this.length += n
    return at
  }

  /** Writes an unsigned integer of `size` bytes (1, 2, 3, 4 or 8) at `offset`. */
  setUint(offset: number, size: 1 | 2 | 3 | 4 | 8, value: number, littleEndian: boolean): void {
    const view = this.view ??= new DataView(this.bytes.buffer)
    switch (size) {
      case 1:
        view.setUint8(offset, value)
        return
      case 2:
        view.setUint16(offset, value, littleEndian)
        return
      case 3:
        if (littleEndian) {
          view.setUint16(offset, value & 0xffff, true)
          view.setUint8(offset + 2, value >>> 16)
        } else {
          view.setUint8(offset, value >>> 16)
          view.setUint16(offset + 1, value & 0xffff, false)
        }
        return
      case 4:
        view.setUint32(offset, value, littleEndian)
        return
      case 8: {
        const high = Math.floor(value / 0x1_0000_0000)
        const low = value >>> 0
        view.setUint32(offset, littleEndian ? low : high, littleEndian)
        view.setUint32(offset + 4, littleEndian ? high : low, littleEndian)
        return
      }
    }
  }

  /** A view of the bytes written so far (valid until the next write). */
  written(): Uint8Array {
    return this.bytes.subarray(0, this.length)
  }

  /**
   * Returns a view of the bytes written and rewinds; the view is valid until the next write. A buffer
   * that grew past `retainCapacity` (one large reply) is let go here: the view keeps it alive only as
   * long as somebody holds the view, and the writer starts again small.
   */
  take(): Uint8Array {
    const out = this.bytes.subarray(0, this.length)
    this.length = 0
    if (this.bytes.length > this.retainCapacity) {
      this.bytes = new Uint8Array(this.initialCapacity)
      this.view = undefined
    }
    return out
  }

  /** The size of the backing array: what the writer holds on to. */
  get capacity(): number {
    return this.bytes.length
  }

  /** Returns a copy of the bytes written (`copy`: a small one shares a slab on V8) and rewinds. */
  takeCopy(): Uint8Array {
    const out = copy(this.bytes.subarray(0, this.length))
    this.reset()
    return out
  }

  /**
   * Gives up the backing array, which somebody else now holds a view of (a transport that queued
   * it without a copy), and starts on a fresh one of the same size (at most `retainCapacity`).
   */
  detach(): void {
    const capacity = this.bytes.length > this.retainCapacity ? this.initialCapacity : this.bytes.length
    const next = new Uint8Array(Math.max(capacity, this.length))
    if (this.length > 0) next.set(this.bytes.subarray(0, this.length))
    this.bytes = next
    this.view = undefined
  }

  /** Rewinds, and gives back memory above `retainCapacity` so one large burst is not held forever. */
  reset(): void {
    this.length = 0
    if (this.bytes.length > this.retainCapacity) {
      this.bytes = new Uint8Array(this.initialCapacity)
      this.view = undefined
    }
  }
}

/** Copies up to this size are carved out of a shared slab (see `copy`). */
const SLAB_COPY_MAX = 512
const SLAB_SIZE = 16 * 1024
/** JavaScriptCore allocates small arrays as fast as it makes views: no slab there. */
const useSlab = runtime !== "bun"
let slab: Uint8Array = empty
let slabUsed = 0

/**
 * A copy of `bytes` that nothing else writes to: for bytes kept after the buffer they came from is
 * reused (a read buffer, a `Writer`).
 *
 * On V8 (Deno, Node) every `ArrayBuffer` is memory outside the JavaScript heap, and making one costs
 * about 1 µs on Deno whatever its size, and on Node above 64 bytes: thirty to forty times a view.
 * Copies of up to 512 bytes are therefore carved out of a shared 16 KiB slab, as Node's
 * `Buffer.allocUnsafe` does with its pool: the copy is a view, with a `byteOffset`, into a buffer
 * that other copies share, and while any of them is kept the whole slab stays in memory. Code that
 * reads `.buffer` must use `byteOffset` and `byteLength` with it. On Bun this is `bytes.slice()`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const copy = (bytes: Uint8Array): Uint8Array => {
  const length = bytes.length
  if (!useSlab || length > SLAB_COPY_MAX) return bytes.slice()
  if (slabUsed + length > slab.length) {
    slab = new Uint8Array(SLAB_SIZE)
    slabUsed = 0
  }
  const at = slabUsed
  slabUsed += length
  const out = slab.subarray(at, at + length)
  if (length <= 64) {
    for (let i = 0; i < length; i++) out[i] = bytes[i]!
  } else {
    out.set(bytes)
  }
  return out
}

/**
 * Concatenates byte arrays into a new one.
 *
 * @since 0.1.0
 * @category constructors
 */
export const concat = (chunks: ReadonlyArray<Uint8Array>): Uint8Array => {
  let size = 0
  for (const chunk of chunks) size += chunk.length
  const out = new Uint8Array(size)
  let at = 0
  for (const chunk of chunks) {
    out.set(chunk, at)
    at += chunk.length
  }
  return out
}

/**
 * The UTF-8 bytes of a string.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromString = (text: string): Uint8Array => encoder.encode(text)

const decoder = new TextDecoder()

/**
 * Decodes UTF-8 bytes into a string (invalid sequences become U+FFFD).
 *
 * @since 0.1.0
 * @category conversions
 */
export const toString = (bytes: Uint8Array): string => decoder.decode(bytes)
