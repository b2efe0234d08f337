/**
 * Three framing behaviours of the HTTP example over real sockets, each of which a framer that
 * collects whole requests before handling them would get wrong:
 *
 * 1. `Expect: 100-continue`: the head is handled before the body exists.
 * 2. A body many times `maxFrameLength` streams through in chunks no larger than that, with a
 *    bounded amount of it held by the route at any time.
 * 3. The frame deadline (`frameTimeout`) cuts a head sent a byte at a time, and not a large body
 *    sent slowly, whose chunks are frames of their own.
 *
 * Plus the other direction: a streamed response is pulled only as fast as the peer reads.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import { createHash } from "node:crypto"
import { makeProbe, type Route } from "../../examples/http/exchange.ts"
import { requests } from "../../examples/http/framer.ts"
import { routes } from "../../examples/http/routes.ts"
import { Bytes } from "../../src/index.ts"
import { type Peer, peer } from "../util/peer.ts"
import { eventually, within } from "../util/wait.ts"
import { awaitResponses, parseResponses, pattern, server, settles } from "./http-util.ts"

const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex")

const CONTINUE = "HTTP/1.1 100 Continue\r\n\r\n"

/** Writes `bytes` in pieces of `size`, waiting for the socket to drain as a well-behaved sender does. */
const send = (socket: import("node:net").Socket, bytes: Uint8Array, size: number): Promise<void> =>
  new Promise((resolve, reject) => {
    let at = 0
    const next = (): void => {
      while (at < bytes.length) {
        const piece = bytes.subarray(at, Math.min(at + size, bytes.length))
        at += piece.length
        if (!socket.write(piece)) {
          socket.once("drain", next)
          return
        }
      }
      resolve()
    }
    socket.once("error", reject)
    next()
  })

/** The body as chunks of `size`, in chunked transfer coding. */
const chunked = (bytes: Uint8Array, size: number): Uint8Array => {
  const pieces: Array<Uint8Array> = []
  for (let at = 0; at < bytes.length; at += size) {
    const piece = bytes.subarray(at, Math.min(at + size, bytes.length))
    pieces.push(Bytes.fromString(`${piece.length.toString(16)}\r\n`), piece, Bytes.fromString("\r\n"))
  }
  pieces.push(Bytes.fromString("0\r\n\r\n"))
  return Bytes.concat(pieces)
}

/** One large response: waits for its bytes by count first (parsing what came on every read would be quadratic). */
const awaitLarge = (p: Peer, atLeast: number) =>
  Effect.andThen(within(`${atLeast} bytes`, () => p.waitFor(atLeast, 60_000), 60_000), awaitResponses(p, 1))

describe("HTTP example: Expect: 100-continue", () => {
  it.live("100 Continue comes after the head alone, before any body byte is sent", () =>
    Effect.gen(function* () {
      const s = yield* server()
      const p = yield* peer(s.port)
      p.write("POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n")
      // A server that waits for the body before handling the request never sends it: this wait runs out.
      const first = yield* within("100 Continue", () => p.waitFor(CONTINUE.length))
      expect(Bytes.toString(first)).toBe(CONTINUE)
      p.write("hello world")
      const [interim, final] = yield* awaitResponses(p, 2)
      expect(interim!.status).toBe(100)
      expect(final!.status).toBe(200)
      expect(Bytes.toString(final!.body)).toBe("hello world")
    }))

  it.live("a chunked body waits for 100 Continue too", () =>
    Effect.gen(function* () {
      const s = yield* server()
      const p = yield* peer(s.port)
      p.write("POST /sha256 HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n")
      expect(Bytes.toString(yield* within("100 Continue", () => p.waitFor(CONTINUE.length)))).toBe(CONTINUE)
      p.write("3\r\nabc\r\n0\r\n\r\n")
      const [, final] = yield* awaitResponses(p, 2)
      expect(Bytes.toString(final!.body)).toBe(`${sha256(Bytes.fromString("abc"))}\n`)
    }))

  it.live("a request answered from its head (404) gets no 100 Continue, and the connection closes", () =>
    Effect.gen(function* () {
      const s = yield* server()
      const p = yield* peer(s.port)
      p.write("POST /missing HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
      yield* within("the server closes", () => p.ended)
      const { responses } = parseResponses(p.received())
      expect(responses.map((r) => r.status)).toEqual([404])
      expect(responses[0]!.headers.get("connection")).toBe("close")
    }))
})

describe("HTTP example: a body far larger than maxFrameLength", () => {
  const CHUNK = 16 * 1024
  const options = { maxChunkLength: CHUNK, maxHeadLength: CHUNK }
  // What the route side may hold at once: 4 body chunks, and 4 response pieces (plus the head).
  const BODY_BOUND = 4 * CHUNK
  const PENDING_BOUND = 5 * (CHUNK + 16)

  it("the framer's maxFrameLength is the chunk limit", () => {
    expect(requests(options).maxFrameLength).toBe(CHUNK)
  })

  it.live("16 MiB with Content-Length and 16 MiB chunked hash right, in chunks of at most 16 KiB", () =>
    Effect.gen(function* () {
      const probe = makeProbe()
      const s = yield* server({ ...options, probe })
      const body = pattern(16 * 1024 * 1024, 7)
      const p = yield* peer(s.port)
      yield* Effect.promise(() =>
        send(
          p.socket,
          Bytes.fromString(`POST /sha256 HTTP/1.1\r\nHost: test\r\nContent-Length: ${body.length}\r\n\r\n`),
          1
        )
      )
      yield* Effect.promise(() => send(p.socket, body, 1024 * 1024))
      const request = "POST /sha256 HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"
      yield* Effect.promise(() =>
        send(p.socket, Bytes.concat([Bytes.fromString(request), chunked(body, 100_000)]), 1 << 20)
      )
      const responses = yield* awaitResponses(p, 2)
      expect(responses.map((r) => Bytes.toString(r.body))).toEqual([`${sha256(body)}\n`, `${sha256(body)}\n`])
      // A framer that handed out a read as one chunk, or the body as one frame, shows here.
      expect(probe.largestChunk).toBeGreaterThan(0)
      expect(probe.largestChunk).toBeLessThanOrEqual(CHUNK)
      expect(probe.peakBodyBuffered).toBeLessThanOrEqual(BODY_BOUND)
    }))

  it.live("16 MiB chunked through POST /echo comes back whole, to a client that reads as it sends", () =>
    Effect.gen(function* () {
      const probe = makeProbe()
      const s = yield* server({ ...options, probe })
      const body = pattern(16 * 1024 * 1024, 8)
      const p = yield* peer(s.port)
      const request = "POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"
      yield* Effect.promise(() =>
        send(p.socket, Bytes.concat([Bytes.fromString(request), chunked(body, 50_000)]), 1 << 20)
      )
      const [response] = yield* awaitLarge(p, body.length)
      expect(response!.chunked).toBe(true)
      expect(sha256(response!.body)).toBe(sha256(body))
      expect(probe.largestChunk).toBeLessThanOrEqual(CHUNK)
      expect(probe.peakBodyBuffered).toBeLessThanOrEqual(BODY_BOUND)
      expect(probe.peakPending).toBeLessThanOrEqual(PENDING_BOUND)
    }))

  it.live(
    "a client that does not read the echo: the server stops reading, holding a bounded amount",
    () =>
      Effect.gen(function* () {
        const probe = makeProbe()
        const HIGH_WATER = 256 * 1024
        const s = yield* server({ ...options, probe, highWaterMark: HIGH_WATER, lowWaterMark: 64 * 1024 })
        // More than the kernel's socket buffers on both paths can absorb (tcp_rmem's maximum is 32 MiB here).
        const body = pattern(96 * 1024 * 1024, 9)
        const p = yield* peer(s.port, { paused: true })
        p.write(`POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: ${body.length}\r\n\r\n`)
        p.write(body)
        yield* eventually("the session", () => s.sessions.size === 1)
        const [session] = s.sessions
        yield* eventually("the first bytes read", () => session!.bytesIn > 0)
        // The server reads until the kernel's buffers and its own bounded ones are full, then stops.
        yield* settles("the bytes the server has read", () => session!.bytesIn)
        // While the peer does not read, the route holds at most a few chunks each way; an unbounded
        // queue between the socket and the route would hold what the kernel does not.
        expect(probe.bodyBuffered).toBeLessThanOrEqual(BODY_BOUND)
        expect(probe.pending).toBeLessThanOrEqual(PENDING_BOUND)
        expect(session!.bytesIn).toBeLessThan(body.length)
        p.socket.resume()
        const [response] = yield* awaitLarge(p, body.length)
        expect(response!.body.length).toBe(body.length)
        expect(sha256(response!.body)).toBe(sha256(body))
        expect(probe.peakBodyBuffered).toBeLessThanOrEqual(BODY_BOUND)
        expect(probe.peakPending).toBeLessThanOrEqual(PENDING_BOUND)
        expect(probe.largestChunk).toBeLessThanOrEqual(CHUNK)
      }),
    120_000
  )
})

describe("HTTP example: the frame deadline", () => {
  const options = { frameTimeout: "1 second", readIdleTimeout: "1 minute" } as const

  it.live("a head sent one byte every 100 ms gets 408, then the connection closes", () =>
    Effect.gen(function* () {
      const s = yield* server(options)
      const p = yield* peer(s.port)
      let closed = false
      void p.ended.then(() => (closed = true))
      const slow = Bytes.fromString(`GET / HTTP/1.1\r\nHost: test\r\nX-Slow: ${"a".repeat(200)}`)
      // At most 100 bytes (10 s): the idle time-out never fires (a byte comes every 100 ms), and a
      // server without a frame deadline lets the loop run out.
      let sent = 0
      for (; sent < 100 && !closed; sent++) {
        p.write(slow.subarray(sent, sent + 1))
        yield* Effect.sleep("100 millis")
      }
      yield* within("the server closes", () => p.ended, 2_000)
      expect(sent).toBeLessThan(100)
      const { responses } = parseResponses(p.received())
      expect(responses.map((r) => r.status)).toEqual([408])
      expect(responses[0]!.headers.get("connection")).toBe("close")
    }), 30_000)

  it.live(
    "a body sent slowly for longer than frameTimeout, Content-Length or chunked, is not cut",
    () =>
      Effect.gen(function* () {
        const s = yield* server(options)
        const piece = pattern(1000, 3)
        const pieces = 25 // 25 x 100 ms: 2.5 s, well over the 1 s deadline
        const whole = Bytes.concat(Array.from({ length: pieces }, () => piece))
        const p = yield* peer(s.port)
        p.write(`POST /sha256 HTTP/1.1\r\nHost: test\r\nContent-Length: ${whole.length}\r\n\r\n`)
        for (let i = 0; i < pieces; i++) {
          p.write(piece)
          yield* Effect.sleep("100 millis")
        }
        p.write("POST /sha256 HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n")
        for (let i = 0; i < pieces; i++) {
          p.write(Bytes.concat([Bytes.fromString("3e8\r\n"), piece, Bytes.fromString("\r\n")]))
          yield* Effect.sleep("100 millis")
        }
        p.write("0\r\n\r\n")
        const responses = yield* awaitResponses(p, 2)
        expect(responses.map((r) => r.status)).toEqual([200, 200])
        expect(responses.map((r) => Bytes.toString(r.body))).toEqual([`${sha256(whole)}\n`, `${sha256(whole)}\n`])
      }),
    30_000
  )
})

describe("HTTP example: a streamed response", () => {
  it.live(
    "is pulled only as the peer reads: never more than one piece ahead of what was written",
    () =>
      Effect.gen(function* () {
        const PIECE = 64 * 1024
        // 64 MiB: more than the kernel's socket buffers can absorb (tcp_rmem's maximum is 32 MiB here).
        const COUNT = 1024
        /** Piece `n`: its number, then a fill that tells it from its neighbours. */
        const piece = (n: number): Uint8Array => {
          const bytes = new Uint8Array(PIECE).fill(n % 251)
          new DataView(bytes.buffer).setUint32(0, n)
          return bytes
        }
        let pulled = 0
        const stream: Route = () =>
          Effect.succeed({
            status: 200,
            // One element per pull (`Stream.map` over a range would make a whole chunk of them at once).
            body: Stream.mapEffect(Stream.range(1, COUNT), (n) =>
              Effect.sync(() => {
                pulled++
                return piece(n)
              }))
          })
        const s = yield* server({
          routes: new Map([...routes, ["/stream", new Map([["GET", stream]])]]),
          highWaterMark: 256 * 1024,
          lowWaterMark: 64 * 1024
        })
        const p = yield* peer(s.port, { paused: true })
        p.write("GET /stream HTTP/1.1\r\nHost: test\r\n\r\n")
        yield* eventually("the session", () => s.sessions.size === 1)
        const [session] = s.sessions
        yield* eventually("the first piece pulled", () => pulled > 0)
        yield* settles("the pieces pulled", () => pulled)
        // Each pulled piece was written (bytesOut counts what is queued too); a stream drained into a
        // buffer of its own would be far ahead.
        expect(pulled).toBeLessThan(COUNT)
        expect((pulled - 1) * PIECE).toBeLessThanOrEqual(session!.bytesOut)
        p.socket.resume()
        const [response] = yield* awaitLarge(p, COUNT * PIECE)
        expect(pulled).toBe(COUNT)
        expect(response!.chunked).toBe(true)
        const expected = createHash("sha256")
        for (let n = 1; n <= COUNT; n++) expected.update(piece(n))
        expect(sha256(response!.body)).toBe(expected.digest("hex"))
      }),
    120_000
  )
})
