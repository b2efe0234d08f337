/**
 * HTTP/1.1 requests as a sluice framer that parses as it goes: a request is a head (the request line
 * and the headers), then its body as chunks, each chunk a frame of its own. A handler sees the head
 * before the body arrives (and can answer `Expect: 100-continue` at once), and a 100 MB upload is
 * handled chunk by chunk, never buffered whole.
 *
 * ```text
 * POST /echo HTTP/1.1\r\n ... \r\n\r\n   the head: one frame, at most `maxHeadLength` bytes (431 past it)
 * 5\r\nhello\r\n                         a chunk: the frame is "hello"; the size line and CRLF are parsed,
 *                                        the data is never looked at, and a chunk that has only partly
 *                                        arrived is handed out as far as it goes (`maxChunkLength` at most)
 * 0\r\n\r\n                              the last chunk: an empty frame marked `last`
 * ```
 *
 * A Content-Length body is handed out the same way: as much of it as each read holds, at most
 * `maxChunkLength` bytes a frame, the last one marked `last`.
 *
 * Limits, and the errors the server answers them with: a head over `maxHeadLength` or with more
 * than `maxHeaders` fields is `FrameTooLarge` (431), a request-target over `maxUriLength` is
 * `FrameTooLarge` (414), a body over `maxBodyLength` is `FrameTooLarge` (413), an HTTP version
 * other than 1.0 and 1.1 is `MalformedFrame` "505", a transfer coding other than chunked is
 * `MalformedFrame` "501", and anything malformed, a request smuggling attempt included
 * (Content-Length with Transfer-Encoding, two different Content-Lengths, a bare CR), is
 * `MalformedFrame` "400". The status is the first three characters of `MalformedFrame.detail`, and
 * the framer's name (`http head`, `http uri`, `http body`) tells which limit a `FrameTooLarge` hit.
 */
import { Bytes, Codec, Errors, type Frame, type Packet } from "../../src/index.ts"

const CR = 13
const LF = 10
const SP = 32
const HT = 9
const COLON = 58

/** How a request's body is delimited. */
export type Body =
  | { readonly kind: "none" }
  | { readonly kind: "length"; readonly length: number }
  | { readonly kind: "chunked" }

/** A request's head, as the framer parsed it. */
export interface Head {
  readonly kind: "head"
  readonly method: string
  readonly target: string
  readonly version: "1.0" | "1.1"
  /** Field names in lower case, in order. */
  readonly headers: ReadonlyArray<readonly [string, string]>
  readonly body: Body
  /** Whether the connection stays open after the response (HTTP/1.1 unless `close`; 1.0 if `keep-alive`). */
  readonly keepAlive: boolean
  /** `Expect: 100-continue`: the client waits for `100 Continue` before it sends the body. */
  readonly expectContinue: boolean
}

/** A piece of a request's body; `last` on the final one (which may be empty). */
export interface Chunk {
  readonly kind: "chunk"
  readonly data: Uint8Array
  readonly last: boolean
}

/** What the framer hands on: the head, or a chunk (whose data is the frame itself). */
export type Parsed = Head | { readonly kind: "chunk"; readonly last: boolean }

/** A request, as a handler receives it. */
export type Request = Head | Chunk

/** Counts the bytes a framer looks at: a framer that rescans a slow head shows it here. */
export interface Examined {
  bytes: number
}

export interface Limits {
  /** The request line and headers, with their CRLFs. Default 16 KiB. */
  readonly maxHeadLength?: number | undefined
  /** Header fields. Default 100. */
  readonly maxHeaders?: number | undefined
  /** The request-target. Default 8 KiB. */
  readonly maxUriLength?: number | undefined
  /** The whole body. Default 100 MiB. */
  readonly maxBodyLength?: number | undefined
  /** The largest body frame handed out (a read holding more is cut). Default 64 KiB. */
  readonly maxChunkLength?: number | undefined
  /** Counts the bytes the framer looks at (tests). */
  readonly examined?: Examined | undefined
}

interface State {
  mode: "head" | "length" | "chunk-size" | "chunk-data" | "chunk-end" | "trailers"
  /** Head and trailers: bytes after the frame's start already known to hold no empty line. */
  scanned: number
  /** Body bytes still to come: of the whole body (length), or of the current chunk. */
  remaining: number
  /** Body bytes so far, for `maxBodyLength`. */
  bodySeen: number
}

const newState = (): State => ({ mode: "head", scanned: 0, remaining: 0, bodySeen: 0 })

const bad = (cursor: Frame.Cursor, status: 400 | 501 | 505, detail: string): 3 => {
  cursor.error = new Errors.MalformedFrame({
    framer: "http",
    reason: "Protocol",
    offset: cursor.offset,
    detail: `${status} ${detail}`
  })
  return 3
}

const tooLarge = (cursor: Frame.Cursor, framer: string, length: number, limit: number): 3 => {
  cursor.error = new Errors.FrameTooLarge({ framer, length, limit, offset: cursor.offset })
  return 3
}

const complete = (cursor: Frame.Cursor, frameStart: number, frameEnd: number, next: number, value: Parsed): 2 => {
  cursor.frameStart = frameStart
  cursor.frameEnd = frameEnd
  cursor.next = next
  cursor.value = value
  return 2
}

/** An empty frame that carries nothing (empty lines between requests, a chunk's size line): the codec drops it. */
const SKIP: Parsed = { kind: "chunk", last: false }
const LAST: Parsed = { kind: "chunk", last: true }
const MORE: Parsed = { kind: "chunk", last: false }

/**
 * The index of `byte` in `buf[from, end)`, or -1. A loop rather than `subarray(0, end).indexOf`:
 * on JavaScriptCore (Bun) a view of a natively allocated read costs more than scanning a head.
 */
const find = (buf: Uint8Array, byte: number, from: number, end: number): number => {
  for (let at = from; at < end; at++) if (buf[at] === byte) return at
  return -1
}

/** Finds the empty line ending a head (or trailers) in `buf[from, end)`: the index after it, or -1. */
const findEmptyLine = (buf: Uint8Array, from: number, end: number): number => {
  for (let at = find(buf, LF, from, end); at !== -1 && at + 1 < end; at = find(buf, LF, at + 1, end)) {
    // "\n\n" or "\n\r\n"
    if (buf[at + 1] === LF) return at + 2
    if (buf[at + 1] === CR) {
      if (at + 2 >= end) return -1
      if (buf[at + 2] === LF) return at + 3
    }
  }
  return -1
}

/** The HTTP/1.1 request framer. */
export const requests = (limits: Limits = {}): Frame.Framer<Parsed> => {
  const maxHead = limits.maxHeadLength ?? 16 * 1024
  const maxHeaders = limits.maxHeaders ?? 100
  const maxUri = limits.maxUriLength ?? 8 * 1024
  const maxBody = limits.maxBodyLength ?? 100 * 1024 * 1024
  const maxChunk = limits.maxChunkLength ?? 64 * 1024
  const examined = limits.examined
  const count = (n: number) => {
    if (examined !== undefined) examined.bytes += n
  }
  /** A head not complete yet: fails once it can no longer fit its limits. */
  const partialHead = (buf: Uint8Array, start: number, end: number, cursor: Frame.Cursor): 0 | 3 => {
    if (end - start > maxUri) {
      // The request-target alone is over its limit while its line is still coming: 414 at once.
      const methodEnd = find(buf, SP, start, end)
      if (find(buf, LF, start, end) === -1 && methodEnd !== -1 && find(buf, SP, methodEnd + 1, end) === -1) {
        const length = end - methodEnd - 1
        if (length > maxUri) return tooLarge(cursor, "http uri", length, maxUri)
      }
    }
    return end - start > maxHead ? tooLarge(cursor, "http head", end - start, maxHead) : 0
  }
  return {
    name: "http",
    // The largest frame is a head or a body chunk: the body itself is handed out as it arrives.
    maxFrameLength: Math.max(maxHead, maxChunk),
    state: newState,
    read(buf, start, end, cursor) {
      const state = cursor.state as State
      switch (state.mode) {
        case "head": {
          // Skip the empty lines a client may send between requests (RFC 9112 2.2).
          if (state.scanned === 0 && (buf[start] === CR || buf[start] === LF)) {
            let at = start
            while (at < end && (buf[at] === CR || buf[at] === LF)) at++
            count(at - start)
            return complete(cursor, at, at, at, SKIP)
          }
          const from = start + Math.max(state.scanned - 2, 0)
          const headEnd = findEmptyLine(buf, from, end)
          count((headEnd === -1 ? end : headEnd) - from)
          if (headEnd === -1) {
            state.scanned = end - start
            return partialHead(buf, start, end, cursor)
          }
          state.scanned = 0
          if (headEnd - start > maxHead) return tooLarge(cursor, "http head", headEnd - start, maxHead)
          const head = parseHead(buf, start, headEnd, cursor, maxHeaders, maxUri)
          if (head === undefined) return 3
          if (head.body.kind === "length") {
            if (head.body.length > maxBody) return tooLarge(cursor, "http body", head.body.length, maxBody)
            state.mode = "length"
            state.remaining = head.body.length
          } else if (head.body.kind === "chunked") {
            state.mode = "chunk-size"
            state.bodySeen = 0
          }
          return complete(cursor, start, headEnd, headEnd, head)
        }
        case "trailers": {
          // Trailer fields are read and dropped; an empty line ends them.
          if (state.scanned === 0 && (buf[start] === LF || buf[start] === CR)) {
            if (buf[start] === CR && end - start < 2) return 0
            const next = buf[start] === LF ? start + 1 : start + 2
            if (buf[next - 1] !== LF) return bad(cursor, 400, "Bad Request: a CR without LF after the last chunk")
            count(next - start)
            state.mode = "head"
            return complete(cursor, next, next, next, LAST)
          }
          const from = start + Math.max(state.scanned - 2, 0)
          const trailersEnd = findEmptyLine(buf, from, end)
          count((trailersEnd === -1 ? end : trailersEnd) - from)
          if (trailersEnd === -1) {
            state.scanned = end - start
            return end - start > maxHead ? tooLarge(cursor, "http head", end - start, maxHead) : 0
          }
          state.scanned = 0
          state.mode = "head"
          return complete(cursor, trailersEnd, trailersEnd, trailersEnd, LAST)
        }
        case "length": {
          // As much of the body as is there, up to its end: a frame of its own.
          const take = Math.min(state.remaining, end - start, maxChunk)
          state.remaining -= take
          const last = state.remaining === 0
          if (last) state.mode = "head"
          return complete(cursor, start, start + take, start + take, last ? LAST : MORE)
        }
        case "chunk-size": {
          const lineEnd = find(buf, LF, start + state.scanned, end)
          count((lineEnd === -1 ? end : lineEnd + 1) - (start + state.scanned))
          if (lineEnd === -1) {
            if (end - start > 1024) return bad(cursor, 400, "Bad Request: chunk size line too long")
            state.scanned = end - start
            return 0
          }
          state.scanned = 0
          let sizeEnd = start
          while (sizeEnd < lineEnd && isHex(buf[sizeEnd]!)) sizeEnd++
          if (sizeEnd === start || sizeEnd - start > 8) return bad(cursor, 400, "Bad Request: invalid chunk size")
          // After the size: chunk extensions (`;name=value`, ignored), then CRLF; a bare CR is refused.
          const stop = buf[lineEnd - 1] === CR ? lineEnd - 1 : lineEnd
          let at = sizeEnd
          while (at < stop && (buf[at] === SP || buf[at] === HT)) at++
          if (at < stop && buf[at] !== 59) return bad(cursor, 400, "Bad Request: invalid chunk size")
          if (find(buf, CR, at, stop) !== -1) {
            return bad(cursor, 400, "Bad Request: a bare CR in a chunk size line")
          }
          let size = 0
          for (let i = start; i < sizeEnd; i++) size = size * 16 + hexValue(buf[i]!)
          if (state.bodySeen + size > maxBody) return tooLarge(cursor, "http body", state.bodySeen + size, maxBody)
          state.bodySeen += size
          const dataStart = lineEnd + 1
          if (size === 0) {
            state.mode = "trailers"
            return complete(cursor, dataStart, dataStart, dataStart, SKIP)
          }
          state.mode = "chunk-data"
          state.remaining = size
          // The chunk's data follows at once: hand out what is there of it with the size line.
          if (dataStart === end) return complete(cursor, dataStart, dataStart, dataStart, SKIP)
          return chunkData(buf, dataStart, end, cursor, state)
        }
        case "chunk-data":
          return chunkData(buf, start, end, cursor, state)
        case "chunk-end": {
          if (end - start < 2) {
            cursor.need = 2
            return 1
          }
          count(2)
          if (buf[start] !== CR || buf[start + 1] !== LF) {
            return bad(cursor, 400, "Bad Request: chunk not ended by CRLF")
          }
          state.mode = "chunk-size"
          return complete(cursor, start + 2, start + 2, start + 2, SKIP)
        }
      }
    },
    begin: (writer) => writer.length,
    end: () => {}
  }

  /** A chunk's data from `from`: at most `maxChunk` bytes, with its CRLF when that is there too. */
  function chunkData(buf: Uint8Array, from: number, end: number, cursor: Frame.Cursor, state: State): 2 | 3 {
    const take = Math.min(state.remaining, end - from, maxChunk)
    state.remaining -= take
    const dataEnd = from + take
    if (state.remaining > 0) return complete(cursor, from, dataEnd, dataEnd, MORE)
    if (end - dataEnd < 2) {
      state.mode = "chunk-end"
      return complete(cursor, from, dataEnd, dataEnd, MORE)
    }
    count(2)
    if (buf[dataEnd] !== CR || buf[dataEnd + 1] !== LF) return bad(cursor, 400, "Bad Request: chunk not ended by CRLF")
    state.mode = "chunk-size"
    return complete(cursor, from, dataEnd, dataEnd + 2, MORE)
  }
}

const isHex = (byte: number): boolean =>
  (byte >= 48 && byte <= 57) || (byte >= 97 && byte <= 102) || (byte >= 65 && byte <= 70)

const hexValue = (byte: number): number => byte <= 57 ? byte - 48 : (byte | 0x20) - 87

/** `tchar` of RFC 9110 5.6.2: the bytes of a method or a field name. */
const TOKEN = new Uint8Array(256)
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") {
  TOKEN[c.charCodeAt(0)] = 1
}

const isToken = (buf: Uint8Array, from: number, to: number): boolean => {
  if (from >= to) return false
  for (let i = from; i < to; i++) if (TOKEN[buf[i]!] === 0) return false
  return true
}

/** A field value's bytes: visible characters, SP, HT and obs-text; no other control character (a bare CR). */
const isFieldValue = (buf: Uint8Array, from: number, to: number): boolean => {
  for (let i = from; i < to; i++) {
    const byte = buf[i]!
    if ((byte < SP && byte !== HT) || byte === 127) return false
  }
  return true
}

/** A request-target's bytes: visible ASCII only (RFC 9112 3.2). */
const isTarget = (buf: Uint8Array, from: number, to: number): boolean => {
  for (let i = from; i < to; i++) {
    const byte = buf[i]!
    if (byte <= SP || byte >= 127) return false
  }
  return true
}

const latin1Decoder = new TextDecoder("latin1")
/** The character codes of a short string, reused (a view of the read would cost more on Bun). */
const codes: Array<number> = []

/** Bytes as a string, one character per byte (HTTP's field values are ISO-8859-1). */
const latin1 = (buf: Uint8Array, from: number, to: number): string => {
  const length = to - from
  if (length >= 64) return latin1Decoder.decode(buf.subarray(from, to))
  codes.length = length
  for (let i = 0; i < length; i++) codes[i] = buf[from + i]!
  return String.fromCharCode.apply(null, codes)
}

/** `HTTP/` */
const isHttpSlash = (buf: Uint8Array, at: number): boolean =>
  buf[at] === 72 && buf[at + 1] === 84 && buf[at + 2] === 84 && buf[at + 3] === 80 && buf[at + 4] === 47

const isDigit = (byte: number | undefined): boolean => byte !== undefined && byte >= 48 && byte <= 57

/** The tokens of a comma-separated field value, in lower case. */
const tokens = (value: string): Array<string> => value.toLowerCase().split(",").map((v) => v.trim())

const parseHead = (
  buf: Uint8Array,
  start: number,
  end: number,
  cursor: Frame.Cursor,
  maxHeaders: number,
  maxUri: number
): Head | undefined => {
  // The request line: method SP request-target SP HTTP-version.
  const lineEnd = find(buf, LF, start, end)
  const lineStop = buf[lineEnd - 1] === CR ? lineEnd - 1 : lineEnd
  const methodEnd = find(buf, SP, start, lineStop)
  const targetEnd = methodEnd === -1 ? -1 : find(buf, SP, methodEnd + 1, lineStop)
  if (
    methodEnd === -1 || targetEnd === -1 ||
    !isToken(buf, start, methodEnd) || targetEnd === methodEnd + 1
  ) {
    bad(cursor, 400, "Bad Request: malformed request line")
    return undefined
  }
  if (targetEnd - methodEnd - 1 > maxUri) {
    tooLarge(cursor, "http uri", targetEnd - methodEnd - 1, maxUri)
    return undefined
  }
  if (!isTarget(buf, methodEnd + 1, targetEnd)) {
    bad(cursor, 400, "Bad Request: malformed request-target")
    return undefined
  }
  const v = targetEnd + 1
  if (lineStop - v !== 8 || !isHttpSlash(buf, v) || !isDigit(buf[v + 5]) || buf[v + 6] !== 46 || !isDigit(buf[v + 7])) {
    bad(cursor, 400, "Bad Request: malformed HTTP version")
    return undefined
  }
  if (buf[v + 5] !== 49 || (buf[v + 7] !== 49 && buf[v + 7] !== 48)) {
    bad(cursor, 505, `HTTP Version Not Supported: ${latin1(buf, v, lineStop)}`)
    return undefined
  }
  const version = buf[v + 7] === 49 ? "1.1" : "1.0"
  const headers: Array<readonly [string, string]> = []
  const lengths: Array<string> = []
  let encodings: Array<string> | undefined = undefined
  let connection: Array<string> | undefined = undefined
  let expectContinue = false
  let hosts = 0
  for (let pos = lineEnd + 1; pos < end;) {
    const fieldEnd = find(buf, LF, pos, end)
    const stop = buf[fieldEnd - 1] === CR ? fieldEnd - 1 : fieldEnd
    if (stop <= pos) break // the empty line
    if (buf[pos] === SP || buf[pos] === HT) {
      bad(cursor, 400, "Bad Request: obsolete line folding")
      return undefined
    }
    const colon = find(buf, COLON, pos, stop)
    if (colon === -1 || !isToken(buf, pos, colon)) {
      bad(cursor, 400, "Bad Request: malformed header field")
      return undefined
    }
    let valueStart = colon + 1
    let valueEnd = stop
    while (valueStart < valueEnd && (buf[valueStart] === SP || buf[valueStart] === HT)) valueStart++
    while (valueEnd > valueStart && (buf[valueEnd - 1] === SP || buf[valueEnd - 1] === HT)) valueEnd--
    if (!isFieldValue(buf, valueStart, valueEnd)) {
      bad(cursor, 400, "Bad Request: a control character in a header field")
      return undefined
    }
    if (headers.length >= maxHeaders) {
      tooLarge(cursor, "http head", headers.length + 1, maxHeaders)
      return undefined
    }
    const name = latin1(buf, pos, colon).toLowerCase()
    const value = latin1(buf, valueStart, valueEnd)
    headers.push([name, value])
    switch (name) {
      case "content-length":
        for (const length of value.split(",")) lengths.push(length.trim())
        break
      case "transfer-encoding":
        ;(encodings ??= []).push(...tokens(value))
        break
      case "connection":
        ;(connection ??= []).push(...tokens(value))
        break
      case "expect":
        if (value.toLowerCase() === "100-continue") expectContinue = true
        break
      case "host":
        hosts++
        break
    }
    pos = fieldEnd + 1
  }
  if (version === "1.1" && hosts !== 1) {
    bad(cursor, 400, `Bad Request: ${hosts === 0 ? "no Host header" : "more than one Host header"}`)
    return undefined
  }
  // Request smuggling: the body's length must be told one way, once.
  if (lengths.length > 0 && encodings !== undefined) {
    bad(cursor, 400, "Bad Request: both Content-Length and Transfer-Encoding")
    return undefined
  }
  let body: Body = { kind: "none" }
  if (lengths.length > 0) {
    const value = lengths[0]!
    if (lengths.some((length) => length !== value) || !/^\d{1,15}$/.test(value)) {
      bad(cursor, 400, "Bad Request: invalid or conflicting Content-Length")
      return undefined
    }
    const length = Number(value)
    if (length > 0) body = { kind: "length", length }
  } else if (encodings !== undefined) {
    if (encodings[encodings.length - 1] !== "chunked") {
      bad(cursor, 400, "Bad Request: the last transfer coding is not chunked")
      return undefined
    }
    if (encodings.length !== 1) {
      bad(cursor, 501, "Not Implemented: a transfer coding other than chunked")
      return undefined
    }
    body = { kind: "chunked" }
  }
  const keepAlive = version === "1.1" ? !connection?.includes("close") : connection?.includes("keep-alive") === true
  return {
    kind: "head",
    method: latin1(buf, start, methodEnd),
    target: latin1(buf, methodEnd + 1, targetEnd),
    version,
    headers,
    body,
    keepAlive,
    expectContinue: expectContinue && version === "1.1"
  }
}

/**
 * Requests as a handler receives them (the head as the framer parsed it, a chunk whose data is its
 * frame, or `undefined` for a frame that carries nothing), and responses written as they are (raw
 * bytes: see `response.ts`).
 */
export const codec = (framer: Frame.Framer<Parsed>): Packet.Packet<Request | undefined, Uint8Array> =>
  Codec.makeUnsafe<Uint8Array, Request | undefined, Uint8Array, Errors.PacketDecodeError, Errors.PacketEncodeError>({
    name: framer.name,
    decode: () => undefined,
    decodeFrame: (frame, parsed) => {
      const value = parsed as Parsed
      if (value === SKIP) return undefined
      return value.kind === "head" ? value : { kind: "chunk", data: frame, last: value.last }
    },
    encode: (bytes) => bytes,
    encodeInto: (writer, bytes) => writer.write(bytes)
  })

/** A header's value (the first one), by lower-case name. */
export const header = (head: Head, name: string): string | undefined => head.headers.find(([n]) => n === name)?.[1]

/** The bytes of a string. */
export const ascii = Bytes.fromString
