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
 * The answers of a framer's `read`: `NeedHeader` (more bytes are needed, how many is not known yet),
 * `NeedBytes` (at least `cursor.need` bytes in all, counted from `start`, before `read` is worth
 * calling again), `Complete` (a frame lies in `[cursor.frameStart, cursor.frameEnd)` and the next one
 * starts at `cursor.next`), and `Failed` (`cursor.error` says why).
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
  /**
   * NeedBytes: how many bytes of the frame, counted from `start`, must be there before `read` is
   * called again: the whole frame's size when the header tells it, or a lower bound ("at least N").
   */
  need: number
  /** Input, set by the decoder: the stream offset of `start`, for error messages. */
  offset: number
  /**
   * In and out, for framers that scan (delimiters): bytes after `start` already known to hold no
   * frame end, so a long partial frame is not scanned again on every read. The decoder sets it to 0
   * for each new frame.
   */
  resume: number
  /**
   * For framers that keep state: what `Framer.state` returned for this stream, the same object on
   * every call. The framer keeps in it what it has parsed of the frame in progress (positions
   * relative to `start`: the decoder may move the frame's bytes between calls) and resets that when
   * it answers `Complete`.
   */
  state: unknown
  /** Complete: what the framer parsed of the frame, for a codec that takes it (`Packet.parsed`). */
  value: unknown
  /** Failed: the error. */
  error: FrameError | undefined
}

/**
 * A framing rule: how to find frames in bytes (`read`) and how to write one (`begin`, then the
 * payload, then `end`). `A` is what the framer parses of each frame (`cursor.value`), when it hands
 * a parse result on.
 *
 * @since 0.1.0
 * @category models
 */
export interface Framer<out A = unknown> {
  /** A short name used in error messages. */
  readonly name: string
  /**
   * The largest frame accepted, in bytes (header included for length-prefixed framers). A framer
   * checks it itself, on the header; the decoder also never holds more than this (plus 64 bytes of
   * slack for a delimiter) for one frame, and fails it with `FrameTooLarge` past that.
   */
  readonly maxFrameLength: number
  /**
   * A hint: how many bytes of a frame `read` may need to see before it can answer something other
   * than `NeedHeader` (a length prefix's size). While the header is incomplete the decoder moves
   * this many bytes of a new read into the frame, so that the frames after it stay views of the
   * read; without it (or when it turns out short), it moves what the read has.
   */
  readonly probe?: number | undefined
  /**
   * Whether each frame is one message of a message-oriented transport (a UDP datagram, a WebSocket
   * message): replies are then written one message at a time, never coalesced. Default false.
   */
  readonly messages?: boolean | undefined
  /**
   * Makes the framer's state for one stream (a connection): `read` finds it in `cursor.state`. For
   * framers that parse as they go (RESP arrays, HTTP heads and chunked bodies), so that a frame that
   * spans reads is not parsed again from its start on every read.
   */
  readonly state?: (() => unknown) | undefined
  /**
   * Looks at `buf[start, end)`; fills `cursor` as the returned `Status` says. Never throws: a throw,
   * or a cursor that contradicts the bytes it was given, is a defect of the framer, not an error of
   * the peer.
   */
  readonly read: (buf: Uint8Array, start: number, end: number, cursor: Cursor) => Status
  /** Starts a frame in `writer` (e.g. reserves its header) and returns a mark for `end`. */
  readonly begin: (writer: Bytes.Writer) => number
  /**
   * Finishes the frame whose payload was written since `begin` returned `mark` (writes the length,
   * appends the delimiter). Throws `FrameTooLarge` / `MalformedFrame` and rewinds the writer to
   * `mark` if the payload cannot be framed.
   */
  readonly end: (writer: Bytes.Writer, mark: number) => void
  /** Phantom: what `read` puts in `cursor.value`. */
  readonly _A?: A
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
  /** Longest frame read, without its delimiter; required, since an unbounded scan is a memory hole. */
  readonly maxLength: number
  /** Longest frame written, without its delimiter. Default 16 MiB: what is sent is not the peer's to bound. */
  readonly maxOutgoingLength?: number | undefined
  /** Hand out frames with their delimiter. Default false. */
  readonly keepDelimiter?: boolean | undefined
  /** Name in error messages. Default `"delimiter"`. */
  readonly name?: string | undefined
}

/**
 * Frames ended by a delimiter. Writing a payload that holds the delimiter fails with
 * `MalformedFrame` (`"DelimiterInPayload"`): the peer would read it as more than one frame.
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
  /** Longest line read, without its line ending; required. */
  readonly maxLength: number
  /** Longest line written, without its ending. Default 16 MiB: what is sent is not the peer's to bound. */
  readonly maxOutgoingLength?: number | undefined
  /** The line ending written by the encoder. Default `"\n"`. Decoding accepts both. */
  readonly ending?: "\n" | "\r\n" | undefined
}

/**
 * Text lines ended by LF or CRLF; frames are the lines without their ending. Writing a line that
 * holds a LF fails with `MalformedFrame` (`"DelimiterInPayload"`).
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
export interface Decoder<A = unknown> {
  readonly framer: Framer<A>
  /** The first error met; once set, the decoder yields nothing more. */
  readonly error: FrameError | undefined
  /** Bytes the frame in progress needs in all, when the framer told (0 otherwise): getty's "need N". */
  readonly need: number
  /** What the framer parsed of the frame `next` returned last (`cursor.value`). */
  readonly value: A | undefined
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
export const decoder = <A>(framer: Framer<A>): Decoder<A> => new FrameDecoder(framer) as Decoder<A>

/**
 * The result of reading one frame from the start of some bytes: the three states, typed.
 *
 * @since 0.1.0
 * @category models
 */
export type Read<A = unknown> =
  | { readonly _tag: "NeedHeader" }
  | { readonly _tag: "NeedBytes"; readonly need: number }
  | {
    readonly _tag: "Complete"
    readonly frame: Uint8Array
    readonly rest: Uint8Array
    /** What the framer parsed of the frame, if it hands a parse result on. */
    readonly value: A | undefined
  }
  | { readonly _tag: "Failed"; readonly error: FrameError }

/**
 * Reads one frame from the start of `bytes`.
 *
 * @since 0.1.0
 * @category decoding
 */
export const read = <A>(framer: Framer<A>, bytes: Uint8Array): Read<A> => {
  const cursor: Cursor = {
    frameStart: 0,
    frameEnd: 0,
    next: 0,
    need: 0,
    offset: 0,
    resume: 0,
    state: framer.state?.(),
    value: undefined,
    error: undefined
  }
  switch (framer.read(bytes, 0, bytes.length, cursor)) {
    case status.NeedHeader:
      return { _tag: "NeedHeader" }
    case status.NeedBytes:
      return { _tag: "NeedBytes", need: cursor.need }
    case status.Complete:
      return {
        _tag: "Complete",
        frame: bytes.subarray(cursor.frameStart, cursor.frameEnd),
        rest: bytes.subarray(cursor.next),
        value: cursor.value as A | undefined
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
