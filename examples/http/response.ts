/**
 * HTTP/1.1 responses as bytes: the status line and headers (with `Date`, the body's framing and
 * `Connection`), whole bodies, and chunked bodies a piece at a time.
 */
import type * as Stream from "effect/Stream"
import { Bytes } from "../../src/index.ts"
import type { Head } from "./framer.ts"

/**
 * What a route answers. A body given as bytes (or text) is sent with its `Content-Length`; a body
 * given as a `Stream` is sent as it is pulled: with `Content-Length` when `length` is given, chunked
 * otherwise (or, to an HTTP/1.0 client, until the connection closes).
 */
export interface Response {
  readonly status: number
  /** Headers besides `Date`, `Content-Length`, `Transfer-Encoding` and `Connection`, which are written for it. */
  readonly headers?: ReadonlyArray<readonly [string, string]> | undefined
  readonly body?: Uint8Array | string | Stream.Stream<Uint8Array, unknown> | undefined
  /** A streamed body's length, when it is known. */
  readonly length?: number | undefined
  /** Close the connection after this response. */
  readonly close?: boolean | undefined
}

export const reasons: Readonly<Record<number, string>> = {
  100: "Continue",
  200: "OK",
  204: "No Content",
  400: "Bad Request",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  413: "Content Too Large",
  414: "URI Too Long",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  505: "HTTP Version Not Supported"
}

/** `Date: <IMF-fixdate>\r\n`, made once a second. */
let dateSecond = -1
let dateLine = ""
export const date = (): string => {
  const now = Date.now()
  const second = Math.floor(now / 1000)
  if (second !== dateSecond) {
    dateSecond = second
    dateLine = `Date: ${new Date(second * 1000).toUTCString()}\r\n`
  }
  return dateLine
}

/** How the body of a response goes on the wire. */
export type Framing =
  | { readonly kind: "length"; readonly length: number }
  | { readonly kind: "chunked" }
  /** HTTP/1.0 and a body of unknown length: it ends when the connection closes. */
  | { readonly kind: "close" }

/** The framing of a response to `head`, and whether the connection closes after it. */
export const framingOf = (head: Head, response: Response): { framing: Framing; close: boolean } => {
  const body = response.body
  const close = response.close === true || !head.keepAlive
  if (body === undefined) return { framing: { kind: "length", length: 0 }, close }
  if (typeof body === "string") return { framing: { kind: "length", length: Bytes.fromString(body).length }, close }
  if (body instanceof Uint8Array) return { framing: { kind: "length", length: body.length }, close }
  if (response.length !== undefined) return { framing: { kind: "length", length: response.length }, close }
  if (head.version === "1.1") return { framing: { kind: "chunked" }, close }
  return { framing: { kind: "close" }, close: true }
}

/** The status line and headers of a response. */
export const encodeHead = (
  version: Head["version"],
  keepAlive: boolean,
  status: number,
  headers: ReadonlyArray<readonly [string, string]>,
  framing: Framing,
  close: boolean
): string => {
  let text = `HTTP/1.1 ${status} ${reasons[status] ?? "Unknown"}\r\n${date()}`
  for (const [name, value] of headers) text += `${name}: ${value}\r\n`
  if (framing.kind === "length") text += `Content-Length: ${framing.length}\r\n`
  else if (framing.kind === "chunked") text += "Transfer-Encoding: chunked\r\n"
  if (close) text += "Connection: close\r\n"
  else if (version === "1.0" && keepAlive) text += "Connection: keep-alive\r\n"
  return text + "\r\n"
}

/**
 * Whole responses already encoded, by response object: a route that answers with the same object
 * every time (`GET /`) costs one lookup per request, and one encoding per second (for `Date`) and
 * per kind of connection.
 */
const encoded = new WeakMap<Response, { date: string; variants: Array<Uint8Array | undefined> }>()

/** A whole response, head and body, in one array (a HEAD request gets the head only). */
export const encodeWhole = (head: Head, response: Response, close: boolean): Uint8Array => {
  const line = date()
  let cached = encoded.get(response)
  if (cached === undefined || cached.date !== line) {
    cached = { date: line, variants: [] }
    encoded.set(response, cached)
  }
  // What else the bytes depend on: HEAD, the version, keep-alive, close.
  const variant = (head.method === "HEAD" ? 1 : 0) | (head.version === "1.0" ? 2 : 0) | (head.keepAlive ? 4 : 0) |
    (close ? 8 : 0)
  let bytes = cached.variants[variant]
  if (bytes === undefined) {
    bytes = encodeWholeNow(head, response, close)
    cached.variants[variant] = bytes
  }
  return bytes
}

const encodeWholeNow = (head: Head, response: Response, close: boolean): Uint8Array => {
  const body = response.body === undefined
    ? Bytes.empty
    : typeof response.body === "string"
    ? Bytes.fromString(response.body)
    : response.body as Uint8Array
  const text = encodeHead(
    head.version,
    head.keepAlive,
    response.status,
    response.headers ?? [],
    { kind: "length", length: body.length },
    close
  )
  const bytes = Bytes.fromString(text)
  if (head.method === "HEAD" || body.length === 0) return bytes
  const out = new Uint8Array(bytes.length + body.length)
  out.set(bytes)
  out.set(body, bytes.length)
  return out
}

/** Writes an ASCII string at the start of `out`. */
const writeAscii = (text: string, out: Uint8Array): void => {
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i)
}

/** One chunk of a chunked body: its size line, the data, CRLF. */
export const chunk = (data: Uint8Array): Uint8Array => {
  const size = `${data.length.toString(16)}\r\n`
  const out = new Uint8Array(size.length + data.length + 2)
  writeAscii(size, out)
  out.set(data, size.length)
  out[out.length - 2] = 13
  out[out.length - 1] = 10
  return out
}

/** The last chunk of a chunked body, without trailers. */
export const lastChunk: Uint8Array = Bytes.fromString("0\r\n\r\n")

/** `100 Continue`: the client may send the body. */
export const continue100: Uint8Array = Bytes.fromString("HTTP/1.1 100 Continue\r\n\r\n")

/** A short error response, after which the connection closes. */
export const errorResponse = (status: number, detail?: string): Uint8Array => {
  const body = `${status} ${reasons[status] ?? "Error"}${detail === undefined ? "" : `: ${detail}`}\n`
  return Bytes.fromString(
    `HTTP/1.1 ${status} ${reasons[status] ?? "Error"}\r\n${date()}Content-Type: text/plain; charset=utf-8\r\n` +
      `Content-Length: ${Bytes.fromString(body).length}\r\nConnection: close\r\n\r\n${body}`
  )
}
