import * as Bytes from "../Bytes.ts"
import { type FrameError, FrameTooLarge, MalformedFrame } from "../Errors.ts"
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
const makeCursor = (state: unknown): Cursor => ({
  frameStart: 0,
  frameEnd: 0,
  next: 0,
  need: 0,
  offset: 0,
  resume: 0,
  state,
  value: undefined,
  error: undefined
})

/** Bytes the decoder may hold for one frame beyond `maxFrameLength`: room for a delimiter. */
const SLACK = 64

/** A framer broke its own contract: a defect of the framer's code, not an error of the peer. */
export class FramerDefect extends Error {
  constructor(framer: string, detail: string, cause?: unknown) {
    super(`framer "${framer}" broke its contract: ${detail}`, cause === undefined ? undefined : { cause })
    this.name = "FramerDefect"
  }
}

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
  /** What the framer parsed of the frame `next` returned last. */
  value: unknown = undefined

  private readonly cursor: Cursor
  /** The most a frame in progress may hold: `maxFrameLength` and a delimiter's slack. */
  private readonly limit: number
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
  constructor(readonly framer: Framer, private readonly copyMax = 0) {
    this.cursor = makeCursor(framer.state?.())
    this.limit = framer.maxFrameLength + SLACK
  }

  /**
   * Calls the framer, and checks its answer against its contract: what it says of the bytes must be
   * true of them. A framer that throws, or answers with positions outside the bytes it was given, is
   * a defect (`FramerDefect`); a frame in progress past `maxFrameLength` is `FrameTooLarge`.
   */
  private read(buf: Uint8Array, start: number, end: number): number {
    const cursor = this.cursor
    const framer = this.framer
    cursor.offset = this.consumed
    cursor.resume = this.resume
    // No `try` here, on the path of every frame: a framer that throws is caught in `next`.
    const status = framer.read(buf, start, end, cursor)
    switch (status) {
      case Status.Complete: {
        const { frameStart, frameEnd, next } = cursor
        if (!(start <= frameStart && frameStart <= frameEnd && frameEnd <= next && start < next && next <= end)) {
          throw new FramerDefect(
            framer.name,
            `Complete with frame [${frameStart - start}, ${frameEnd - start}) and next ${next - start} ` +
              `for ${end - start} bytes`
          )
        }
        return status
      }
      case Status.NeedBytes: {
        const need = cursor.need
        if (!(need > end - start)) {
          throw new FramerDefect(framer.name, `NeedBytes ${need} with ${end - start} bytes already there`)
        }
        if (need > this.limit) return this.tooLarge(cursor, need)
        return status
      }
      case Status.NeedHeader:
        return end - start >= this.limit ? this.tooLarge(cursor, end - start) : status
      case Status.Failed:
        if (cursor.error === undefined) throw new FramerDefect(framer.name, "Failed without an error")
        return status
      default:
        throw new FramerDefect(framer.name, `an unknown status ${String(status)}`)
    }
  }

  private tooLarge(cursor: Cursor, length: number): number {
    const framer = this.framer
    cursor.error = new FrameTooLarge({
      framer: framer.name,
      length,
      limit: framer.maxFrameLength,
      offset: this.consumed
    })
    return Status.Failed
  }

  /** A frame is out: what belongs to it is reset for the next one. */
  private completed(): void {
    const cursor = this.cursor
    this.need = 0
    this.resume = 0
    this.value = cursor.value
    cursor.value = undefined
    this.frames++
  }

  /** Frames decoded: the frame deadline's sign that the frame in progress changed. */
  frames = 0

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
    try {
      return this.cumEnd > this.cumStart ? this.nextFromCumulation() : this.nextFromInput()
    } catch (defect) {
      if (defect instanceof FramerDefect) throw defect
      // Only the framer's `read` runs in there that may throw anything else.
      throw new FramerDefect(
        this.framer.name,
        `read threw: ${defect instanceof Error ? defect.message : String(defect)}`,
        defect
      )
    }
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
          (this.need > 0 ? ` that needed ${this.need} bytes` : " whose header was incomplete")
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
    switch (this.read(input, start, end)) {
      case Status.Complete: {
        this.inPos = cursor.next
        this.consumed += cursor.next - start
        this.completed()
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
      // is buffered: what `NeedBytes` asked for, or (header incomplete) the framer's `probe` hint,
      // or, once the probe turned out short or without one, all the read has.
      const available = this.input.length - this.inPos
      const have = this.cumEnd - this.cumStart
      const probe = framer.probe
      let want = this.need > 0 ? this.need - have : probe !== undefined && probe > have ? probe - have : available
      want = Math.min(want, this.limit - have)
      const take = Math.min(want, available)
      if (take > 0) {
        this.append(this.input.subarray(this.inPos, this.inPos + take))
        this.inPos += take
        this.fromInput += take
      } else if (this.need > 0 ? have < this.need : available === 0) {
        return undefined // more bytes must come first
      }
      const cum = this.cum
      const start = this.cumStart
      const end = this.cumEnd
      switch (this.read(cum, start, end)) {
        case Status.Complete: {
          this.consumed += cursor.next - start
          this.completed()
          const after = end - cursor.next
          if (after > 0 && after <= this.fromInput) {
            // More input was moved than the frame took: hand the bytes after the frame back to the
            // input, so that the frames in them stay zero-copy views of it.
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
          this.need = 0
          this.resume = cursor.resume
          if (this.inPos === this.input.length) return undefined
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
