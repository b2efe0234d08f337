/**
 * HTTP/1.1 requests as a sluice framer that parses as it goes: a request is a head (the request line
 * and the headers), then its body as chunks, each chunk a frame of its own. A handler sees the head
 * before the body arrives (and can answer `Expect: 100-continue` at once), and a 100 MB upload is
 * handled chunk by chunk, never buffered whole.
 *
 * ```text
 * POST /echo HTTP/1.1\r\n ... \r\n\r\n   the head: one frame, at most `maxHeadLength` bytes (431 past it)
 * 5\r\nhello\r\n                         a chunk: the frame is "hello"; the size line and CRLF are parsed,
 *                                        the data is never looked at (NeedBytes), and a chunk that has
 *                                        only partly arrived is handed out as far as it goes
 * 0\r\n\r\n                              the last chunk: an empty frame marked `last`
 * ```
 *
 * Limits, and the errors the server answers them with: a head over `maxHeadLength` or with more
 * than `maxHeaders` fields is `FrameTooLarge` (431), a request-target over `maxUriLength` is
 * `FrameTooLarge` (414), a body over `maxBodyLength` is `FrameTooLarge` (413), an HTTP version
 * other than 1.0 and 1.1 is `MalformedFrame` "505", and anything malformed, a request smuggling
 * attempt included (Content-Length with Transfer-Encoding, two different Content-Lengths), is
 * `MalformedFrame` "400". The status is the first three characters of `MalformedFrame.detail`, and
 * the framer's name (`http head`, `http uri`, `http body`) tells which limit a `FrameTooLarge` hit.
 */
import { Bytes, Codec, Errors, type Frame, type Packet } from "../../src/index.ts"
import type { Examined } from "../resp/framer.ts"

const CR = 13
const LF = 10

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

export interface Limits {
  /** The request line and headers, with their CRLFs. Default 16 KiB. */
  readonly maxHeadLength?: number | undefined
  /** Header fields. Default 100. */
  readonly maxHeaders?: number | undefined
  /** The request-target. Default 8 KiB. */
  readonly maxUriLength?: number | undefined
  /** The whole body. Default 100 MiB. */
  readonly maxBodyLength?: number | undefined
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

const bad = (cursor: Frame.Cursor, status: 400 | 505 | 501, detail: string): 3 => {
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

const decoder = new TextDecoder()
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

/** Finds the empty line ending a head (or trailers) in `buf[from, end)`: the index after it, or -1. */
const findEmptyLine = (buf: Uint8Array, from: number, end: number): number => {
  for (let at = buf.subarray(0, end).indexOf(LF, from); at !== -1; at = buf.subarray(0, end).indexOf(LF, at + 1)) {
    // "\n\n" or "\n\r\n"
    if (at + 1 < end && buf[at + 1] === LF) return at + 2
    if (at + 2 < end && buf[at + 1] === CR && buf[at + 2] === LF) return at + 3
    if (at + 2 >= end) return -1
  }
  return -1
}

/** The HTTP/1.1 request framer. */
export const requests = (limits: Limits = {}): Frame.Framer<Parsed> => {
  const maxHead = limits.maxHeadLength ?? 16 * 1024
  const maxHeaders = limits.maxHeaders ?? 100
  const maxUri = limits.maxUriLength ?? 8 * 1024
  const maxBody = limits.maxBodyLength ?? 100 * 1024 * 1024
  const examined = limits.examined
  const count = (n: number) => {
    if (examined !== undefined) examined.bytes += n
  }
  return {
    name: "http",
    // The largest frame is a head: body chunks are handed out as they arrive.
    maxFrameLength: maxHead,
    state: newState,
    read(buf, start, end, cursor) {
      const state = cursor.state as State
      switch (state.mode) {
        case "head":
        case "trailers": {
          // Skip the empty lines a client may send between requests (RFC 9112 2.2).
          if (state.mode === "head" && state.scanned === 0 && (buf[start] === CR || buf[start] === LF)) {
            let at = start
            while (at < end && (buf[at] === CR || buf[at] === LF)) at++
            count(at - start)
            return complete(cursor, at, at, at, SKIP)
          }
          const from = start + Math.max(state.scanned - 3, 0)
          const headEnd = findEmptyLine(buf, from, end)
          count((headEnd === -1 ? end : headEnd) - from)
          if (headEnd === -1) {
            if (state.mode === "head" && end - start > maxHead) {
              const firstLine = buf.subarray(start, end).indexOf(LF)
              if (firstLine === -1 && end - start > maxUri) return tooLarge(cursor, "http uri", end - start, maxUri)
              return tooLarge(cursor, "http head", end - start, maxHead)
            }
            if (state.mode === "trailers" && end - start > maxHead) {
              return tooLarge(cursor, "http head", end - start, maxHead)
            }
            state.scanned = end - start
            return 0
          }
          state.scanned = 0
          if (state.mode === "trailers") {
            state.mode = "head"
            return complete(cursor, headEnd, headEnd, headEnd, { kind: "chunk", last: true })
          }
          if (headEnd - start > maxHead) return tooLarge(cursor, "http head", headEnd - start, maxHead)
          const head = parseHead(buf, start, headEnd, cursor, maxHeaders, maxUri)
          if (head === undefined) return 3
          if (head.body.kind === "length") {
            if (head.body.length > maxBody) return tooLarge(cursor, "http body", head.body.length, maxBody)
            state.mode = "length"
            state.remaining = head.body.length
            state.bodySeen = 0
          } else if (head.body.kind === "chunked") {
            state.mode = "chunk-size"
            state.bodySeen = 0
          }
          return complete(cursor, start, headEnd, headEnd, head)
        }
        case "length": {
          // As much of the body as is there, up to its end: a frame of its own.
          const take = Math.min(state.remaining, end - start)
          state.remaining -= take
          const last = state.remaining === 0
          if (last) state.mode = "head"
          return complete(cursor, start, start + take, start + take, { kind: "chunk", last })
        }
        case "chunk-size": {
          const lineEnd = buf.subarray(0, end).indexOf(LF, start + state.scanned)
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
          const size = parseInt(decoder.decode(buf.subarray(start, sizeEnd)), 16)
          if (state.bodySeen + size > maxBody) return tooLarge(cursor, "http body", state.bodySeen + size, maxBody)
          state.bodySeen += size
          if (size === 0) {
            state.mode = "trailers"
            return complete(cursor, lineEnd + 1, lineEnd + 1, lineEnd + 1, { kind: "chunk", last: false })
          }
          state.mode = "chunk-data"
          state.remaining = size
          // The chunk's data follows at once: hand out what is there of it with the size line.
          const take = Math.min(size, end - (lineEnd + 1))
          if (take === 0) return complete(cursor, lineEnd + 1, lineEnd + 1, lineEnd + 1, { kind: "chunk", last: false })
          state.remaining -= take
          if (state.remaining === 0) state.mode = "chunk-end"
          return complete(cursor, lineEnd + 1, lineEnd + 1 + take, lineEnd + 1 + take, { kind: "chunk", last: false })
        }
        case "chunk-data": {
          const take = Math.min(state.remaining, end - start)
          state.remaining -= take
          if (state.remaining === 0) state.mode = "chunk-end"
          return complete(cursor, start, start + take, start + take, { kind: "chunk", last: false })
        }
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
          return complete(cursor, start + 2, start + 2, start + 2, { kind: "chunk", last: false })
        }
      }
    },
    begin: (writer) => writer.length,
    end: () => {}
  }
}

/** Empty lines before a request: a frame of their own, which the codec drops. */
const SKIP: Parsed = { kind: "chunk", last: false }

const isHex = (byte: number): boolean =>
  (byte >= 48 && byte <= 57) || (byte >= 97 && byte <= 102) || (byte >= 65 && byte <= 70)

const parseHead = (
  buf: Uint8Array,
  start: number,
  end: number,
  cursor: Frame.Cursor,
  maxHeaders: number,
  maxUri: number
): Head | undefined => {
  const text = decoder.decode(buf.subarray(start, end))
  const lines = text.split(/\r?\n/)
  const requestLine = lines[0]!
  const parts = requestLine.split(" ")
  if (parts.length !== 3 || !TOKEN.test(parts[0]!) || parts[1]!.length === 0) {
    bad(cursor, 400, "Bad Request: malformed request line")
    return undefined
  }
  const [method, target, versionText] = parts as [string, string, string]
  if (target.length > maxUri) {
    tooLarge(cursor, "http uri", target.length, maxUri)
    return undefined
  }
  if (!/^HTTP\/\d\.\d$/.test(versionText)) {
    bad(cursor, 400, "Bad Request: malformed HTTP version")
    return undefined
  }
  if (versionText !== "HTTP/1.1" && versionText !== "HTTP/1.0") {
    bad(cursor, 505, `HTTP Version Not Supported: ${versionText}`)
    return undefined
  }
  const headers: Array<readonly [string, string]> = []
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!
    if (line === "") continue
    if (line[0] === " " || line[0] === "\t") {
      bad(cursor, 400, "Bad Request: obsolete line folding")
      return undefined
    }
    const colon = line.indexOf(":")
    const name = colon > 0 ? line.slice(0, colon) : ""
    if (!TOKEN.test(name)) {
      bad(cursor, 400, "Bad Request: malformed header field")
      return undefined
    }
    if (headers.length >= maxHeaders) {
      tooLarge(cursor, "http head", headers.length + 1, maxHeaders)
      return undefined
    }
    headers.push([name.toLowerCase(), line.slice(colon + 1).trim()])
  }
  const version = versionText === "HTTP/1.1" ? "1.1" : "1.0"
  // Request smuggling: the body's length must be told one way, once.
  const lengths = headers.filter(([name]) => name === "content-length").map(([, value]) => value)
  const encodings = headers.filter(([name]) => name === "transfer-encoding").map(([, value]) => value.toLowerCase())
  if (lengths.length > 0 && encodings.length > 0) {
    bad(cursor, 400, "Bad Request: both Content-Length and Transfer-Encoding")
    return undefined
  }
  let body: Body = { kind: "none" }
  if (lengths.length > 0) {
    const values = new Set(lengths.flatMap((value) => value.split(",").map((v) => v.trim())))
    const [value] = values
    if (values.size !== 1 || !/^\d{1,15}$/.test(value!)) {
      bad(cursor, 400, "Bad Request: invalid or conflicting Content-Length")
      return undefined
    }
    const length = Number(value)
    if (length > 0) body = { kind: "length", length }
  } else if (encodings.length > 0) {
    const codings = encodings.flatMap((value) => value.split(",").map((v) => v.trim()))
    if (codings[codings.length - 1] !== "chunked" || codings.length !== 1) {
      bad(cursor, 501, "Not Implemented: a transfer coding other than chunked")
      return undefined
    }
    body = { kind: "chunked" }
  }
  const connection = headers.filter(([name]) => name === "connection").map(([, value]) => value.toLowerCase())
  const keepAlive = version === "1.1"
    ? !connection.some((value) => value.split(",").some((v) => v.trim() === "close"))
    : connection.some((value) => value.split(",").some((v) => v.trim() === "keep-alive"))
  const expectContinue = version === "1.1" &&
    headers.some(([name, value]) => name === "expect" && value.toLowerCase() === "100-continue")
  return { kind: "head", method, target, version, headers, body, keepAlive, expectContinue }
}

/**
 * Requests as a handler receives them (the head as the framer parsed it, or a chunk whose data is its
 * frame), and responses written as they are (raw bytes: see `response.ts`).
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
