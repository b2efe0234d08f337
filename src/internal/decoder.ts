import * as Bytes from "../Bytes.ts"
import { type FrameError, MalformedFrame } from "../Errors.ts"
import type { Cursor, Framer } from "../Frame.ts"
import { runtime } from "./runtime.ts"
import { Status } from "./status.ts"

/**
 * The engine's `copyMax`: frames up to this size are handed out as copies on JavaScriptCore (Bun),
 * views elsewhere.
 * JavaScriptCore makes a view of a typed array it allocated natively (Bun's read chunk) by first
 * moving that array's storage into an ArrayBuffer of its own, and the views cost a GC more than
 * small copies do: at 50 connections x 16 in flight x 64 B, copies took the Bun echo server from
 * ~0.98M to ~1.13M msg/s. V8 makes views cheaply and copies slowly (about 1.5-6x a view per 64 B
 * frame), and on either engine a copy of a 4 KiB frame costs more than a view.
 */
export const COPY_MAX = runtime === "bun" ? 256 : 0
const makeCursor = (): Cursor => ({
  frameStart: 0,
  frameEnd: 0,
  next: 0,
  need: 0,
  offset: 0,
  resume: 0,
  error: undefined
})

/**
 * The incremental frame decoder: owns the cumulation buffer for one byte stream and drives a
 * framer's `read` over it. Pull-based so that a caller can stop between frames (a handler that
 * suspends) and carry on later without losing its place.
 *
 * Frames that lie inside the fed chunk are views of it; frames that span chunks are assembled in
 * the cumulation buffer and handed out as arrays of their own.
 */
export class FrameDecoder {
  /** The first error met; once set, the decoder yields nothing more. */
  error: FrameError | undefined = undefined
  /** Total bytes needed for the frame in progress, when its header told (0 otherwise). */
  need = 0
  /** Bytes of the stream consumed by decoded frames. */
  consumed = 0

  private readonly cursor: Cursor = makeCursor()
  private cum: Uint8Array = Bytes.empty
  private cumStart = 0
  private cumEnd = 0
  private input: Uint8Array = Bytes.empty
  private inPos = 0
  /** How many bytes at the end of the cumulation were moved there from the current input. */
  private fromInput = 0
  private resume = 0

  /**
   * `copyMax`: frames inside one chunk and at most this long are copies rather than views (see
   * `COPY_MAX`); 0, the default, for views only.
   */
  constructor(readonly framer: Framer, private readonly copyMax = 0) {}

  /** Bytes held in the cumulation buffer (a partial frame). */
  get buffered(): number {
    return this.cumEnd - this.cumStart
  }

  /** Sets the next chunk of input. Call `next()` until it returns `undefined` before feeding again. */
  feed(chunk: Uint8Array): void {
    this.input = chunk
    this.inPos = 0
    this.fromInput = 0
  }

  /**
   * The next whole frame, or `undefined` when more bytes are needed (the rest of the input is then
   * kept) or an error was met (`error` tells).
   */
  next(): Uint8Array | undefined {
    if (this.error !== undefined) return undefined
    return this.cumEnd > this.cumStart ? this.nextFromCumulation() : this.nextFromInput()
  }

  /** Ends the stream: a partial frame left over is `MalformedFrame` with reason `"Truncated"`. */
  end(): FrameError | undefined {
    if (this.error !== undefined) return this.error
    const left = this.buffered + (this.input.length - this.inPos)
    if (left > 0) {
      this.error = new MalformedFrame({
        framer: this.framer.name,
        reason: "Truncated",
        offset: this.consumed,
        detail: `the input ended ${left} bytes into a frame` +
          (this.need > 0 ? ` of ${this.need} bytes` : " whose header was incomplete")
      })
      return this.error
    }
    return undefined
  }

  private nextFromInput(): Uint8Array | undefined {
    const input = this.input
    const start = this.inPos
    const end = input.length
    if (start === end) {
      if (end > 0) {
        // Used up: let go of the read now, not at the next one. Held by every idle connection, the
        // last read of each survives young-generation collections and is promoted, and old-space
        // garbage is what it then becomes: on Bun at 50 x 4 x 4 KiB that tripled the page faults
        // and cost ~20% of the throughput.
        this.input = Bytes.empty
        this.inPos = 0
        this.fromInput = 0
      }
      return undefined
    }
    const cursor = this.cursor
    cursor.offset = this.consumed
    cursor.resume = this.resume
    switch (this.framer.read(input, start, end, cursor)) {
      case Status.Complete: {
        this.inPos = cursor.next
        this.consumed += cursor.next - start
        this.resume = 0
        return cursor.frameEnd - cursor.frameStart <= this.copyMax
          ? input.slice(cursor.frameStart, cursor.frameEnd)
          : input.subarray(cursor.frameStart, cursor.frameEnd)
      }
      case Status.NeedBytes: {
        this.need = cursor.need
        this.keep(input, start, end, cursor.need)
        this.inPos = end
        return undefined
      }
      case Status.NeedHeader: {
        this.resume = cursor.resume
        this.keep(input, start, end, 0)
        this.inPos = end
        return undefined
      }
      default: {
        this.error = cursor.error
        return undefined
      }
    }
  }

  private nextFromCumulation(): Uint8Array | undefined {
    const cursor = this.cursor
    const framer = this.framer
    for (;;) {
      // Move only as many input bytes as the frame in progress can use, so that the frames after it
      // stay zero-copy views of the input, and a header announcing too much fails before its body
      // is buffered.
      const available = this.input.length - this.inPos
      const have = this.cumEnd - this.cumStart
      const want = this.need > 0 ? this.need - have : Math.max(framer.probe - have, 0)
      const take = Math.min(want, available)
      if (take > 0) {
        this.append(this.input.subarray(this.inPos, this.inPos + take))
        this.inPos += take
        this.fromInput += take
      } else if (this.need > 0 && have < this.need) {
        return undefined
      }
      cursor.offset = this.consumed
      cursor.resume = this.resume
      const cum = this.cum
      const start = this.cumStart
      const end = this.cumEnd
      switch (framer.read(cum, start, end, cursor)) {
        case Status.Complete: {
          this.need = 0
          this.resume = 0
          this.consumed += cursor.next - start
          const after = end - cursor.next
          if (after > 0 && after <= this.fromInput) {
            // A scanning framer was given more input than its frame took: hand the bytes after the
            // frame back to the input, so that the frames in them stay zero-copy views of it.
            this.inPos -= after
            this.fromInput -= after
            this.cumEnd = cursor.next
          }
          if (cursor.next === this.cumEnd) {
            // The frame is the tail of the cumulation: hand the array over instead of copying it.
            const frame = cum.subarray(cursor.frameStart, cursor.frameEnd)
            this.cum = Bytes.empty
            this.cumStart = this.cumEnd = 0
            this.fromInput = 0
            return frame
          }
          this.cumStart = cursor.next
          return cum.slice(cursor.frameStart, cursor.frameEnd)
        }
        case Status.NeedBytes: {
          this.need = cursor.need
          // Memory grows with the bytes that arrive, never with what a header announces.
          if (this.inPos === this.input.length) return undefined
          continue
        }
        case Status.NeedHeader: {
          this.resume = cursor.resume
          if (this.inPos === this.input.length) return undefined
          if (take === 0) {
            this.error = new MalformedFrame({
              framer: framer.name,
              reason: "Protocol",
              offset: this.consumed,
              detail: `the framer asked for more header bytes than its probe of ${framer.probe}`
            })
            return undefined
          }
          continue
        }
        default: {
          this.error = cursor.error
          return undefined
        }
      }
    }
  }

  /** Keeps `input[start, end)` as the start of a partial frame of `total` bytes (0: unknown). */
  private keep(input: Uint8Array, start: number, end: number, total: number): void {
    const size = end - start
    this.cum = new Uint8Array(total > 0 ? Math.min(total, Math.max(size * 2, 65536)) : Math.max(size * 2, 256))
    this.cum.set(input.subarray(start, end))
    this.cumStart = 0
    this.cumEnd = size
  }

  /** Makes room for `n` more bytes after `cumEnd`, compacting before growing. */
  private reserve(n: number): void {
    const have = this.cumEnd - this.cumStart
    if (this.cumEnd + n <= this.cum.length) return
    if (have + n <= this.cum.length && this.cumStart > 0) {
      this.cum.copyWithin(0, this.cumStart, this.cumEnd)
    } else {
      let capacity = Math.max(this.cum.length * 2, 256)
      while (capacity < have + n) capacity *= 2
      if (this.need > 0) capacity = Math.max(Math.min(capacity, this.need), have + n)
      const next = new Uint8Array(capacity)
      next.set(this.cum.subarray(this.cumStart, this.cumEnd))
      this.cum = next
    }
    this.cumEnd = have
    this.cumStart = 0
  }

  private append(bytes: Uint8Array): void {
    this.reserve(bytes.length)
    this.cum.set(bytes, this.cumEnd)
    this.cumEnd += bytes.length
  }
}
