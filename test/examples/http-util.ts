/**
 * What the HTTP example's tests share: the server in-process on port 0, a reader of raw HTTP/1.1
 * responses (so that tests can send bytes no well-behaved client would), and bounded waits.
 */
import * as Effect from "effect/Effect"
import { Bytes } from "../../src/index.ts"
import { type Options, serve } from "../../examples/http/app.ts"
import { within } from "../util/wait.ts"

/** The example server, in this scope, on a free port of 127.0.0.1. */
export const server = (options: Options = {}) => serve({ host: "127.0.0.1", port: 0, ...options })

export interface Parsed {
  readonly status: number
  readonly head: string
  /** Header names in lower case. */
  readonly headers: ReadonlyMap<string, string>
  readonly body: Uint8Array
  readonly chunked: boolean
}

const CRLF2 = Bytes.fromString("\r\n\r\n")

const indexOf = (bytes: Uint8Array, needle: Uint8Array, from: number): number => {
  outer: for (let i = from; i <= bytes.length - needle.length; i++) {
    for (let j = 0; j < needle.length; j++) if (bytes[i + j] !== needle[j]) continue outer
    return i
  }
  return -1
}

/**
 * Reads the responses in `bytes`, in order, for requests with these methods (a HEAD response has no
 * body). `100 Continue` is a response of its own (without a request). Stops at the first incomplete
 * one; `rest` is what is left. A response without length or chunking runs to the end of the bytes.
 */
export const parseResponses = (
  bytes: Uint8Array,
  methods: ReadonlyArray<string> = []
): { readonly responses: Array<Parsed>; readonly rest: Uint8Array } => {
  const responses: Array<Parsed> = []
  let at = 0
  let request = 0
  for (;;) {
    const headEnd = indexOf(bytes, CRLF2, at)
    if (headEnd === -1) break
    const head = Bytes.toString(bytes.subarray(at, headEnd))
    const [statusLine, ...fields] = head.split("\r\n")
    const status = Number(statusLine!.split(" ")[1])
    const headers = new Map<string, string>()
    for (const field of fields) {
      const colon = field.indexOf(":")
      headers.set(field.slice(0, colon).toLowerCase(), field.slice(colon + 1).trim())
    }
    let pos = headEnd + 4
    const informational = status >= 100 && status < 200
    const method = informational ? "" : methods[request] ?? "GET"
    let body: Uint8Array = Bytes.empty
    const chunked = headers.get("transfer-encoding") === "chunked"
    if (!informational && method !== "HEAD") {
      if (chunked) {
        const pieces: Array<Uint8Array> = []
        let complete = false
        for (;;) {
          const lineEnd = indexOf(bytes, Bytes.fromString("\r\n"), pos)
          if (lineEnd === -1) break
          const size = parseInt(Bytes.toString(bytes.subarray(pos, lineEnd)), 16)
          if (size === 0) {
            if (lineEnd + 4 > bytes.length) break
            pos = lineEnd + 4
            complete = true
            break
          }
          if (lineEnd + 2 + size + 2 > bytes.length) break
          pieces.push(bytes.subarray(lineEnd + 2, lineEnd + 2 + size))
          pos = lineEnd + 2 + size + 2
        }
        if (!complete) break
        body = Bytes.concat(pieces)
      } else if (headers.has("content-length")) {
        const length = Number(headers.get("content-length"))
        if (pos + length > bytes.length) break
        body = bytes.subarray(pos, pos + length)
        pos += length
      } else {
        body = bytes.subarray(pos)
        pos = bytes.length
      }
    }
    if (!informational) request++
    responses.push({ status, head, headers, body, chunked })
    at = pos
  }
  return { responses, rest: bytes.subarray(at) }
}

/** `n` bytes of a repeatable pattern (so that a reordered or dropped piece shows). */
export const pattern = (n: number, seed = 1): Uint8Array => {
  const bytes = new Uint8Array(n)
  let x = seed >>> 0 || 1
  for (let i = 0; i < n; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    bytes[i] = x & 0xff
  }
  return bytes
}

/**
 * Waits until a raw peer has received `n` complete responses (to requests with these methods), and
 * returns them; fails when the connection closes first, or after 10 s.
 */
export const awaitResponses = (
  p: { readonly received: () => Uint8Array; readonly waitFor: (n: number) => Promise<Uint8Array> },
  n: number,
  methods: ReadonlyArray<string> = []
): Effect.Effect<Array<Parsed>> =>
  within(`${n} responses`, async () => {
    for (;;) {
      const { responses } = parseResponses(p.received(), methods)
      if (responses.length >= n) return responses
      const before = p.received().length
      const after = await p.waitFor(before + 1)
      if (after.length === before) {
        throw new Error(`the connection closed after ${responses.length} of ${n} responses`)
      }
    }
  })

/**
 * Waits until `value` has stopped changing (the same over half a second of samples 100 ms apart):
 * how a test tells that a transfer has stalled, say on a peer that does not read. A phase of a test,
 * not an assertion: what it asserts afterwards must hold whenever it is checked.
 */
export const settles = (label: string, value: () => number, millis = 30_000): Effect.Effect<number> =>
  Effect.gen(function* () {
    let last = value()
    let same = 0
    for (let i = 0; i * 100 < millis; i++) {
      yield* Effect.sleep("100 millis")
      const now = value()
      same = now === last ? same + 1 : 0
      last = now
      if (same >= 5) return now
    }
    return yield* Effect.die(new Error(`timed out after ${millis} ms waiting for ${label} to settle`))
  })
