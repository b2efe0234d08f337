import * as Bytes from "../Bytes.ts"
import { FrameTooLarge, MalformedFrame, type MalformedReason } from "../Errors.ts"
import type { Cursor, Framer } from "../Frame.ts"
import { Status } from "./status.ts"

export const DEFAULT_MAX_FRAME_LENGTH = 16 * 1024 * 1024

const tooLarge = (cursor: Cursor, framer: string, length: number, limit: number): 3 => {
  cursor.error = new FrameTooLarge({ framer, length, limit, offset: cursor.offset })
  return Status.Failed
}

const malformed = (cursor: Cursor, framer: string, reason: MalformedReason, detail: string): 3 => {
  cursor.error = new MalformedFrame({ framer, reason, offset: cursor.offset, detail })
  return Status.Failed
}

const complete = (cursor: Cursor, frameStart: number, frameEnd: number, next: number): 2 => {
  cursor.frameStart = frameStart
  cursor.frameEnd = frameEnd
  cursor.next = next
  return Status.Complete
}

const needBytes = (cursor: Cursor, total: number): 1 => {
  cursor.need = total
  return Status.NeedBytes
}

const checkPositiveInteger = (name: string, value: number, min = 1): number => {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new RangeError(`${name} must be an integer >= ${min}, got ${value}`)
  }
  return value
}

export interface LengthFieldOptions {
  readonly lengthFieldLength?: 1 | 2 | 3 | 4 | 8 | undefined
  readonly lengthFieldOffset?: number | undefined
  readonly lengthAdjustment?: number | undefined
  readonly littleEndian?: boolean | undefined
  readonly keepHeader?: boolean | undefined
  readonly maxFrameLength?: number | undefined
}

const readUint = (buf: Uint8Array, at: number, size: number, littleEndian: boolean): number => {
  if (littleEndian) {
    let value = 0
    for (let i = size - 1; i >= 0; i--) value = value * 256 + buf[at + i]!
    return value
  }
  let value = 0
  for (let i = 0; i < size; i++) value = value * 256 + buf[at + i]!
  return value
}

export const lengthField = (options: LengthFieldOptions = {}): Framer => {
  const size = options.lengthFieldLength ?? 4
  if (![1, 2, 3, 4, 8].includes(size)) {
    throw new RangeError(`lengthFieldLength must be 1, 2, 3, 4 or 8, got ${size}`)
  }
  const fieldOffset = checkPositiveInteger("lengthFieldOffset", options.lengthFieldOffset ?? 0, 0)
  const adjustment = options.lengthAdjustment ?? 0
  if (!Number.isSafeInteger(adjustment)) throw new RangeError(`lengthAdjustment must be an integer, got ${adjustment}`)
  const littleEndian = options.littleEndian ?? false
  const keepHeader = options.keepHeader ?? false
  const max = checkPositiveInteger("maxFrameLength", options.maxFrameLength ?? DEFAULT_MAX_FRAME_LENGTH)
  const headerLength = fieldOffset + size
  const maxValue = size === 8 ? Number.MAX_SAFE_INTEGER : 2 ** (8 * size) - 1
  const name = "lengthField"
  return {
    name,
    maxFrameLength: max,
    probe: headerLength,
    read(buf, start, end, cursor) {
      if (end - start < headerLength) return Status.NeedHeader
      const at = start + fieldOffset
      let value: number
      if (size === 4 && !littleEndian) {
        value = ((buf[at]! << 24) >>> 0) + ((buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!)
      } else if (size === 8) {
        const high = readUint(buf, littleEndian ? at + 4 : at, 4, littleEndian)
        if (high > 0x1fffff) {
          return malformed(cursor, name, "LengthOverflow", `an 8-byte length field beyond 2^53 (high word ${high})`)
        }
        value = high * 0x1_0000_0000 + readUint(buf, littleEndian ? at : at + 4, 4, littleEndian)
      } else {
        value = readUint(buf, at, size, littleEndian)
      }
      const body = value + adjustment
      if (body < 0) {
        return malformed(
          cursor,
          name,
          "NegativeLength",
          `length field ${value} with lengthAdjustment ${adjustment} gives ${body} bytes after the header`
        )
      }
      const total = headerLength + body
      if (total > max) return tooLarge(cursor, name, total, max)
      if (end - start < total) return needBytes(cursor, total)
      return complete(cursor, keepHeader ? start : start + headerLength, start + total, start + total)
    },
    begin(writer) {
      const mark = writer.reserve(headerLength)
      if (fieldOffset > 0) writer.bytes.fill(0, mark, mark + fieldOffset)
      return mark
    },
    end(writer, mark) {
      const payload = writer.length - mark - headerLength
      const total = headerLength + payload
      const value = payload - adjustment
      if (total > max || value > maxValue) {
        writer.length = mark
        throw new FrameTooLarge({
          framer: name,
          length: total,
          // The largest frame the length field can announce, after the adjustment.
          limit: Math.min(max, headerLength + maxValue + adjustment),
          offset: 0
        })
      }
      if (value < 0) {
        writer.length = mark
        throw new MalformedFrame({
          framer: name,
          reason: "NegativeLength",
          offset: 0,
          detail: `a payload of ${payload} bytes cannot be encoded with lengthAdjustment ${adjustment}`
        })
      }
      writer.setUint(mark + fieldOffset, size, value, littleEndian)
    }
  }
}

export const varint = (options: { readonly maxFrameLength?: number | undefined } = {}): Framer => {
  const max = checkPositiveInteger("maxFrameLength", options.maxFrameLength ?? DEFAULT_MAX_FRAME_LENGTH)
  const name = "varint"
  return {
    name,
    maxFrameLength: max,
    probe: 10,
    read(buf, start, end, cursor) {
      let value = 0
      let scale = 1
      for (let i = 0; i < 10; i++) {
        if (start + i >= end) return Status.NeedHeader
        const byte = buf[start + i]!
        value += (byte & 0x7f) * scale
        scale *= 128
        if (value > max) return tooLarge(cursor, name, value + i + 1, max)
        if ((byte & 0x80) === 0) {
          const headerLength = i + 1
          const total = headerLength + value
          if (total > max) return tooLarge(cursor, name, total, max)
          if (end - start < total) return needBytes(cursor, total)
          return complete(cursor, start + headerLength, start + total, start + total)
        }
      }
      return malformed(cursor, name, "VarintTooLong", "a varint length prefix longer than 10 bytes")
    },
    begin(writer) {
      return writer.reserve(1)
    },
    end(writer, mark) {
      const payload = writer.length - mark - 1
      let headerLength = 1
      for (let v = payload; v >= 128; v = Math.floor(v / 128)) headerLength++
      // The limit counts the header, as the decoder does.
      if (headerLength + payload > max) {
        writer.length = mark
        throw new FrameTooLarge({ framer: name, length: headerLength + payload, limit: max, offset: 0 })
      }
      if (headerLength > 1) {
        writer.ensure(headerLength - 1)
        writer.bytes.copyWithin(mark + headerLength, mark + 1, writer.length)
        writer.length += headerLength - 1
      }
      let v = payload
      let at = mark
      while (v >= 128) {
        writer.bytes[at++] = (v % 128) | 0x80
        v = Math.floor(v / 128)
      }
      writer.bytes[at] = v
    }
  }
}

const frameStart = (writer: Bytes.Writer): number => writer.length

/**
 * Ends a frame by appending `suffix`, once its payload is known to fit in `max` bytes and not to hold
 * the delimiter: a payload with the delimiter in it would reach the peer as more than one frame.
 */
const endWith =
  (name: string, max: number, suffix: Uint8Array, contains: (payload: Uint8Array) => boolean) =>
  (writer: Bytes.Writer, mark: number): void => {
    const length = writer.length - mark
    if (length > max) {
      writer.length = mark
      throw new FrameTooLarge({ framer: name, length, limit: max, offset: 0 })
    }
    if (contains(writer.bytes.subarray(mark, writer.length))) {
      writer.length = mark
      throw new MalformedFrame({
        framer: name,
        reason: "DelimiterInPayload",
        offset: 0,
        detail: `a payload of ${length} bytes holds the delimiter: it would be read as more than one frame`
      })
    }
    writer.write(suffix)
  }

export interface DelimiterOptions {
  readonly delimiter: Uint8Array | string
  readonly maxLength: number
  readonly maxOutgoingLength?: number | undefined
  readonly keepDelimiter?: boolean | undefined
  readonly name?: string | undefined
}

const indexOf = (buf: Uint8Array, delimiter: Uint8Array, from: number, end: number): number => {
  const first = delimiter[0]!
  const last = end - delimiter.length
  for (let i = buf.indexOf(first, from); i !== -1 && i <= last; i = buf.indexOf(first, i + 1)) {
    let j = 1
    while (j < delimiter.length && buf[i + j] === delimiter[j]) j++
    if (j === delimiter.length) return i
  }
  return -1
}

export const delimiter = (options: DelimiterOptions): Framer => {
  const delim = typeof options.delimiter === "string" ? Bytes.fromString(options.delimiter) : options.delimiter
  if (delim.length === 0) throw new RangeError("delimiter must not be empty")
  const max = checkPositiveInteger("maxLength", options.maxLength)
  const maxOut = checkPositiveInteger("maxOutgoingLength", options.maxOutgoingLength ?? DEFAULT_MAX_FRAME_LENGTH)
  const keep = options.keepDelimiter ?? false
  const name = options.name ?? "delimiter"
  const delimLength = delim.length
  const single = delimLength === 1 ? delim[0]! : -1
  const contains = single >= 0
    ? (payload: Uint8Array) => payload.indexOf(single) !== -1
    : (payload: Uint8Array) => indexOf(payload, delim, 0, payload.length) !== -1
  return {
    name,
    maxFrameLength: max,
    probe: max + delimLength,
    read(buf, start, end, cursor) {
      const from = start + cursor.resume
      // Look no further than a frame of `max` bytes plus its delimiter could reach.
      const limit = Math.min(end, start + max + delimLength)
      let at: number
      if (single >= 0) {
        at = buf.indexOf(single, from)
        if (at >= limit) at = -1
      } else {
        at = indexOf(buf, delim, from, limit)
      }
      if (at === -1) {
        if (end - start > max + delimLength - 1) return tooLarge(cursor, name, end - start, max)
        cursor.resume = Math.max(end - start - delimLength + 1, 0)
        return Status.NeedHeader
      }
      if (at - start > max) return tooLarge(cursor, name, at - start, max)
      return complete(cursor, start, keep ? at + delimLength : at, at + delimLength)
    },
    begin: frameStart,
    end: endWith(name, maxOut, delim, contains)
  }
}

export interface LinesOptions {
  readonly maxLength: number
  readonly maxOutgoingLength?: number | undefined
  readonly ending?: "\n" | "\r\n" | undefined
}

const LF = 10
const CR = 13

/** A line may hold a CR, never a LF: decoding splits at every LF. */
const holdsLineFeed = (payload: Uint8Array): boolean => payload.indexOf(LF) !== -1

export const lines = (options: LinesOptions): Framer => {
  const max = checkPositiveInteger("maxLength", options.maxLength)
  const maxOut = checkPositiveInteger("maxOutgoingLength", options.maxOutgoingLength ?? DEFAULT_MAX_FRAME_LENGTH)
  const ending = Bytes.fromString(options.ending ?? "\n")
  const name = "lines"
  return {
    name,
    maxFrameLength: max,
    probe: max + 2,
    read(buf, start, end, cursor) {
      const from = start + cursor.resume
      const limit = Math.min(end, start + max + 2)
      let at = buf.indexOf(LF, from)
      if (at >= limit) at = -1
      if (at === -1) {
        if (end - start > max + 1) return tooLarge(cursor, name, end - start, max)
        // A CR at the end may belong to a CRLF still to come: rescan it.
        cursor.resume = Math.max(end - start - 1, 0)
        return Status.NeedHeader
      }
      const lineEnd = at > start && buf[at - 1] === CR ? at - 1 : at
      if (lineEnd - start > max) return tooLarge(cursor, name, lineEnd - start, max)
      return complete(cursor, start, lineEnd, at + 1)
    },
    begin: frameStart,
    end: endWith(name, maxOut, ending, holdsLineFeed)
  }
}

export const fixed = (size: number): Framer => {
  checkPositiveInteger("size", size)
  const name = "fixed"
  return {
    name,
    maxFrameLength: size,
    probe: size,
    read(_buf, start, end, cursor) {
      if (end === start) return Status.NeedHeader
      if (end - start < size) return needBytes(cursor, size)
      return complete(cursor, start, start + size, start + size)
    },
    begin(writer) {
      return writer.length
    },
    end(writer, mark) {
      const length = writer.length - mark
      if (length !== size) {
        writer.length = mark
        throw new MalformedFrame({
          framer: name,
          reason: "InvalidLength",
          offset: 0,
          detail: `fixed frames are ${size} bytes; cannot encode ${length}`
        })
      }
    }
  }
}

export const datagram = (options: { readonly maxFrameLength?: number | undefined } = {}): Framer => {
  const max = checkPositiveInteger("maxFrameLength", options.maxFrameLength ?? 65507)
  const name = "datagram"
  return {
    name,
    messages: true,
    maxFrameLength: max,
    probe: max,
    read(_buf, start, end, cursor) {
      if (end - start > max) return tooLarge(cursor, name, end - start, max)
      return complete(cursor, start, end, end)
    },
    begin(writer) {
      return writer.length
    },
    end(writer, mark) {
      const length = writer.length - mark
      if (length > max) {
        writer.length = mark
        throw new FrameTooLarge({ framer: name, length, limit: max, offset: 0 })
      }
    }
  }
}
