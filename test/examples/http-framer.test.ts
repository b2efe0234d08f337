/**
 * The HTTP request framer (examples/http/framer.ts) without sockets: what it makes of a stream of
 * requests does not depend on how the stream is cut into reads, body frames never exceed
 * `maxChunkLength`, and a head that arrives a byte at a time is scanned once, not once per byte.
 */
import { describe, expect, it } from "@effect/vitest"
import fc from "fast-check"
import { type Examined, type Head, type Parsed, requests } from "../../examples/http/framer.ts"
import { Bytes, Frame } from "../../src/index.ts"

interface Sent {
  readonly method: string
  readonly target: string
  readonly headers: ReadonlyArray<readonly [string, string]>
  readonly body: Uint8Array
  readonly chunks: ReadonlyArray<number> | undefined
}

const encode = (request: Sent): Uint8Array => {
  const framing = request.chunks === undefined
    ? request.body.length > 0 ? `Content-Length: ${request.body.length}\r\n` : ""
    : "Transfer-Encoding: chunked\r\n"
  const fields = request.headers.map(([name, value]) => `${name}: ${value}\r\n`).join("")
  const head = Bytes.fromString(`${request.method} ${request.target} HTTP/1.1\r\nHost: h\r\n${fields}${framing}\r\n`)
  if (request.chunks === undefined) return Bytes.concat([head, request.body])
  const parts: Array<Uint8Array> = [head]
  let at = 0
  for (const size of request.chunks) {
    const piece = request.body.subarray(at, at + size)
    at += piece.length
    if (piece.length === 0) continue
    parts.push(Bytes.fromString(`${piece.length.toString(16)}\r\n`), piece, Bytes.fromString("\r\n"))
  }
  if (at < request.body.length) {
    const rest = request.body.subarray(at)
    parts.push(Bytes.fromString(`${rest.length.toString(16)}\r\n`), rest, Bytes.fromString("\r\n"))
  }
  parts.push(Bytes.fromString("0\r\n\r\n"))
  return Bytes.concat(parts)
}

interface Seen {
  readonly head: Head
  body: Array<number>
  ended: boolean
}

/** Decodes `reads` in order: every request's head and body, and the largest body frame. */
const decode = (reads: ReadonlyArray<Uint8Array>, maxChunkLength: number) => {
  const decoder = Frame.decoder(requests({ maxChunkLength }))
  const seen: Array<Seen> = []
  let largest = 0
  for (const read of reads) {
    decoder.feed(read)
    for (let frame = decoder.next(); frame !== undefined; frame = decoder.next()) {
      const value = decoder.value as Parsed
      if (value.kind === "head") {
        seen.push({ head: value, body: [], ended: value.body.kind === "none" })
        continue
      }
      largest = Math.max(largest, frame.length)
      const current = seen[seen.length - 1]
      if (current === undefined || (frame.length === 0 && !value.last)) continue
      current.body.push(...frame)
      if (value.last) current.ended = true
    }
    expect(decoder.error).toBeUndefined()
  }
  return { seen, largest }
}

const token = fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/)
const request: fc.Arbitrary<Sent> = fc.record({
  method: fc.constantFrom("GET", "POST", "PUT"),
  target: token.map((t) => `/${t}`),
  headers: fc.array(fc.tuple(token.map((t) => `x-${t}`), fc.stringMatching(/^[ -~]{0,20}$/).map((v) => v.trim())), {
    maxLength: 4
  }),
  body: fc.uint8Array({ maxLength: 3000 }),
  chunks: fc.option(fc.array(fc.integer({ min: 1, max: 700 }), { maxLength: 6 }), { nil: undefined })
})

/** Cuts `bytes` at the given offsets. */
const cut = (bytes: Uint8Array, offsets: ReadonlyArray<number>): Array<Uint8Array> => {
  const points = [...new Set(offsets.map((o) => o % (bytes.length + 1)))].sort((a, b) => a - b)
  const reads: Array<Uint8Array> = []
  let from = 0
  for (const point of [...points, bytes.length]) {
    reads.push(bytes.subarray(from, point))
    from = point
  }
  return reads
}

describe("HTTP request framer", () => {
  it("any cut of a stream of requests into reads gives the same heads and bodies", () => {
    fc.assert(
      fc.property(
        fc.array(request, { minLength: 1, maxLength: 4 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        (sent, offsets) => {
          const wire = Bytes.concat(sent.map(encode))
          const whole = decode([wire], 256)
          const pieces = decode(cut(wire, offsets), 256)
          expect(whole.seen.length).toBe(sent.length)
          for (const result of [whole, pieces]) {
            expect(result.largest).toBeLessThanOrEqual(256)
            expect(result.seen.map((s) => s.ended)).toEqual(sent.map(() => true))
            expect(result.seen.map((s) => [s.head.method, s.head.target])).toEqual(
              sent.map((r) => [r.method, r.target])
            )
            expect(result.seen.map((s) => s.head.headers.filter(([n]) => n.startsWith("x-")))).toEqual(
              sent.map((r) => r.headers.map(([n, v]) => [n, v]))
            )
            expect(result.seen.map((s) => Uint8Array.from(s.body))).toEqual(sent.map((r) => r.body))
          }
        }
      ),
      { numRuns: 200 }
    )
  })

  it("a head sent one byte at a time is scanned in linear time, not once per byte", () => {
    const examined: Examined = { bytes: 0 }
    const decoder = Frame.decoder(requests({ examined }))
    const head = Bytes.fromString(`GET / HTTP/1.1\r\nHost: h\r\nX-Long: ${"a".repeat(8000)}\r\n\r\n`)
    let heads = 0
    for (let i = 0; i < head.length; i++) {
      decoder.feed(head.subarray(i, i + 1))
      for (let frame = decoder.next(); frame !== undefined; frame = decoder.next()) heads++
    }
    expect(heads).toBe(1)
    // A framer that rescanned from the head's start on every read would look at ~32 million bytes.
    expect(examined.bytes).toBeLessThan(3 * head.length)
  })

  it("a Content-Length body in one read comes out in frames of at most maxChunkLength", () => {
    const body = new Uint8Array(10_000).fill(7)
    const wire = Bytes.concat([
      Bytes.fromString(`POST / HTTP/1.1\r\nHost: h\r\nContent-Length: ${body.length}\r\n\r\n`),
      body
    ])
    const { largest, seen } = decode([wire], 4096)
    expect(largest).toBe(4096)
    expect(seen[0]!.body.length).toBe(body.length)
  })
})
