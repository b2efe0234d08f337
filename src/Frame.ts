/**
 * Byte framing: turning a byte stream without boundaries into frames, and frames back into bytes.
 *
 * A `Framer` never does I/O. Its `read` looks at bytes and answers one of getty's three states (plus
 * an error): the header is incomplete, the frame's length is known and N bytes are needed, or a
 * frame is complete. A `Decoder` drives a framer over a stream: it owns the cumulation buffer,
 * hands out frames that lie inside one chunk as zero-copy views of it, and assembles the rest.
 *
 * @example
 * ```ts
 * import { Frame } from "sluice"
 *
 * const framer = Frame.lengthField({ lengthFieldLength: 4 })
 * const wire = Frame.encode(framer, new TextEncoder().encode("hello"))
 * // wire: 00 00 00 05 68 65 6c 6c 6f
 * ```
 *
 * @since 0.1.0
 */
import * as Result from "effect/Result"
import * as Bytes from "./Bytes.ts"
import type { FrameError } from "./Errors.ts"
import { FrameDecoder } from "./internal/decoder.ts"
import * as internal from "./internal/framers.ts"
import { Status as status } from "./internal/status.ts"

/**
 * The answers of a framer's `read`: `NeedHeader` (too few bytes to know the frame's length),
 * `NeedBytes` (the length is known: `cursor.need` bytes in all), `Complete` (a frame lies in
 * `[cursor.frameStart, cursor.frameEnd)` and the next one starts at `cursor.next`), and `Failed`
 * (`cursor.error` says why).
 *
 * @since 0.1.0
 * @category models
 */
export const Status: {
  readonly NeedHeader: 0
  readonly NeedBytes: 1
  readonly Complete: 2
  readonly Failed: 3
} = status

/**
 * @since 0.1.0
 * @category models
 */
export type Status = typeof status[keyof typeof status]

/**
 * The mutable record a framer's `read` fills in. One is reused for every read of a stream, so that
 * decoding allocates nothing per frame.
 *
 * @since 0.1.0
 * @category models
 */
export interface Cursor {
  /** Complete: where the frame starts (after a stripped header). */
  frameStart: number
  /** Complete: where the frame ends. */
  frameEnd: number
  /** Complete: where the next frame starts. */
  next: number
  /** NeedBytes: how many bytes the whole frame takes, counted from `start`. */
  need: number
  /** Input, set by the decoder: the stream offset of `start`, for error messages. */
  offset: number
  /**
   * In and out, for framers that scan (delimiters): bytes after `start` already known to hold no
   * frame end, so a long partial frame is not scanned again on every read.
   */
  resume: number
  /** Failed: the error. */
  error: FrameError | undefined
}

/**
 * A framing rule: how to find frames in bytes (`read`) and how to write one (`begin`, then the
 * payload, then `end`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Framer {
  /** A short name used in error messages. */
  readonly name: string
  /** The largest frame accepted, in bytes (header included for length-prefixed framers). */
  readonly maxFrameLength: number
  /**
   * How many bytes of a frame `read` may need to see before it can answer something other than
   * `NeedHeader` (a length prefix's size; for delimiters, the longest frame and its delimiter).
   */
  readonly probe: number
  /**
   * Whether each frame is one message of a message-oriented transport (a UDP datagram, a WebSocket
   * message): replies are then written one message at a time, never coalesced. Default false.
   */
  readonly messages?: boolean | undefined
  /** Looks at `buf[start, end)`; fills `cursor` as the returned `Status` says. Never throws. */
  readonly read: (buf: Uint8Array, start: number, end: number, cursor: Cursor) => Status
  /** Starts a frame in `writer` (e.g. reserves its header) and returns a mark for `end`. */
  readonly begin: (writer: Bytes.Writer) => number
  /**
   * Finishes the frame whose payload was written since `begin` returned `mark` (writes the length,
   * appends the delimiter). Throws `FrameTooLarge` / `MalformedFrame` and rewinds the writer to
   * `mark` if the payload cannot be framed.
   */
  readonly end: (writer: Bytes.Writer, mark: number) => void
}

/**
 * The default `maxFrameLength`: 16 MiB, header included.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultMaxFrameLength: number = internal.DEFAULT_MAX_FRAME_LENGTH

/**
 * Options of `lengthField`. The frame is
 * `[lengthFieldOffset bytes][length field][length + lengthAdjustment bytes]`.
 *
 * @since 0.1.0
 * @category models
 */
export interface LengthFieldOptions {
  /** Size of the length field in bytes: 1, 2, 3, 4 or 8. Default 4. */
  readonly lengthFieldLength?: 1 | 2 | 3 | 4 | 8 | undefined
  /** Bytes before the length field (e.g. a type byte). Default 0. */
  readonly lengthFieldOffset?: number | undefined
  /**
   * Added to the length field's value to get the number of bytes after the length field. Use
   * `-lengthFieldLength` when the length counts the header itself. Default 0.
   */
  readonly lengthAdjustment?: number | undefined
  /** Little-endian length field. Default false (network order). */
  readonly littleEndian?: boolean | undefined
  /** Hand out frames with their header. Default false (header stripped). */
  readonly keepHeader?: boolean | undefined
  /** Largest frame, header included. Default 16 MiB. */
  readonly maxFrameLength?: number | undefined
}

/**
 * Frames prefixed by a length field.
 *
 * ```text
 * lengthField()                     INPUT                          DECODED
 *                                   +--------+----------------+     +----------------+
 *                                   | 0x000C | "HELLO, WORLD" | ->  | "HELLO, WORLD" |
 *                                   +--------+----------------+     +----------------+
 *                                     4 bytes, big endian
 * ```
 *
 * The length is checked against `maxFrameLength` as soon as the header is read: a header that
 * announces 2 GiB fails at once with `FrameTooLarge`, before any body byte is buffered.
 *
 * @since 0.1.0
 * @category constructors
 */
export const lengthField = (options?: LengthFieldOptions): Framer => internal.lengthField(options)

/**
 * Frames prefixed by a protobuf-style base-128 varint length (1 to 10 bytes).
 *
 * @since 0.1.0
 * @category constructors
 */
export const varint = (options?: { readonly maxFrameLength?: number | undefined }): Framer => internal.varint(options)

/**
 * Options of `delimiter`.
 *
 * @since 0.1.0
 * @category models
 */
export interface DelimiterOptions {
  /** The bytes that end a frame. */
  readonly delimiter: Uint8Array | string
  /** Longest frame without its delimiter; required, since an unbounded scan is a memory hole. */
  readonly maxLength: number
  /** Hand out frames with their delimiter. Default false. */
  readonly keepDelimiter?: boolean | undefined
  /** Name in error messages. Default `"delimiter"`. */
  readonly name?: string | undefined
}

/**
 * Frames ended by a delimiter.
 *
 * @since 0.1.0
 * @category constructors
 */
export const delimiter = (options: DelimiterOptions): Framer => internal.delimiter(options)

/**
 * Options of `lines`.
 *
 * @since 0.1.0
 * @category models
 */
export interface LinesOptions {
  /** Longest line without its line ending; required. */
  readonly maxLength: number
  /** The line ending written by the encoder. Default `"\n"`. Decoding accepts both. */
  readonly ending?: "\n" | "\r\n" | undefined
}

/**
 * Text lines ended by LF or CRLF; frames are the lines without their ending.
 *
 * @since 0.1.0
 * @category constructors
 */
export const lines = (options: LinesOptions): Framer => internal.lines(options)

/**
 * Frames of exactly `size` bytes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fixed = (size: number): Framer => internal.fixed(size)

/**
 * One chunk is one frame: for transports that keep message boundaries themselves (UDP datagrams,
 * WebSocket messages). `maxFrameLength` defaults to 65507, the largest UDP payload over IPv4.
 *
 * @since 0.1.0
 * @category constructors
 */
export const datagram = (options?: { readonly maxFrameLength?: number | undefined }): Framer =>
  internal.datagram(options)

/**
 * An incremental decoder over one byte stream. `feed` a chunk, then call `next` until it returns
 * `undefined`; then `error` tells whether it stopped for lack of bytes or on a malformed stream.
 *
 * @since 0.1.0
 * @category models
 */
export interface Decoder {
  readonly framer: Framer
  /** The first error met; once set, the decoder yields nothing more. */
  readonly error: FrameError | undefined
  /** Total size of the frame in progress when its header told (0 otherwise): getty's "need N". */
  readonly need: number
  /** Bytes held for a partial frame. */
  readonly buffered: number
  /** Bytes of the stream consumed by decoded frames. */
  readonly consumed: number
  feed(chunk: Uint8Array): void
  next(): Uint8Array | undefined
  /** The input has ended: a partial frame left is `MalformedFrame` with reason `"Truncated"`. */
  end(): FrameError | undefined
}

/**
 * A new decoder for one stream.
 *
 * @since 0.1.0
 * @category constructors
 */
export const decoder = (framer: Framer): Decoder => new FrameDecoder(framer)

/**
 * The result of reading one frame from the start of some bytes: the three states, typed.
 *
 * @since 0.1.0
 * @category models
 */
export type Read =
  | { readonly _tag: "NeedHeader" }
  | { readonly _tag: "NeedBytes"; readonly need: number }
  | { readonly _tag: "Complete"; readonly frame: Uint8Array; readonly rest: Uint8Array }
  | { readonly _tag: "Failed"; readonly error: FrameError }

/**
 * Reads one frame from the start of `bytes`.
 *
 * @since 0.1.0
 * @category decoding
 */
export const read = (framer: Framer, bytes: Uint8Array): Read => {
  const cursor: Cursor = { frameStart: 0, frameEnd: 0, next: 0, need: 0, offset: 0, resume: 0, error: undefined }
  switch (framer.read(bytes, 0, bytes.length, cursor)) {
    case status.NeedHeader:
      return { _tag: "NeedHeader" }
    case status.NeedBytes:
      return { _tag: "NeedBytes", need: cursor.need }
    case status.Complete:
      return {
        _tag: "Complete",
        frame: bytes.subarray(cursor.frameStart, cursor.frameEnd),
        rest: bytes.subarray(cursor.next)
      }
    default:
      return { _tag: "Failed", error: cursor.error! }
  }
}

/**
 * Decodes a whole finite stream given as chunks: every frame (as views or copies, see `Decoder`),
 * or the first error, including `"Truncated"` when the input ends inside a frame.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeAll = (
  framer: Framer,
  chunks: Iterable<Uint8Array>
): Result.Result<Array<Uint8Array>, FrameError> => {
  const decoder = new FrameDecoder(framer)
  const frames: Array<Uint8Array> = []
  for (const chunk of chunks) {
    decoder.feed(chunk)
    for (let frame = decoder.next(); frame !== undefined; frame = decoder.next()) frames.push(frame)
    if (decoder.error !== undefined) return Result.fail(decoder.error)
  }
  const error = decoder.end()
  return error === undefined ? Result.succeed(frames) : Result.fail(error)
}

/**
 * Encodes one payload as a frame, in a new array. Throws `FrameTooLarge` or `MalformedFrame` when
 * the payload cannot be framed; see `encodeResult`.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encode = (framer: Framer, payload: Uint8Array): Uint8Array => {
  const writer = new Bytes.Writer({ initialCapacity: payload.length + 16 })
  const mark = framer.begin(writer)
  writer.write(payload)
  framer.end(writer, mark)
  return writer.takeCopy()
}

/**
 * Encodes one payload as a frame; a payload that cannot be framed is a typed error.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeResult = (framer: Framer, payload: Uint8Array): Result.Result<Uint8Array, FrameError> => {
  try {
    return Result.succeed(encode(framer, payload))
  } catch (error) {
    return Result.fail(error as FrameError)
  }
}
