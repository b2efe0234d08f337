/**
 * Dispatch over real sockets on 127.0.0.1, with the runtime's own transport (`Server.serve` picks
 * `Transport.current`): streamed replies and their backpressure, sends in order with the replies,
 * recovery that sees its request, per-message time-outs, the server's task pool, the memory a
 * large reply leaves behind, and the errors a throwing codec or handler becomes. Peers are raw
 * node:net sockets (test/util/peer.ts), independent of the transport under test.
 */
import { describe, expect, it } from "@effect/vitest"
import { Data, Deferred, Effect, Exit, Fiber, Result, Schema, Scope, Stream } from "effect"
import { Bytes, Client, Codec, Errors, Frame, Handler, Packet, Pipeline, Server, Transport } from "../src/index.ts"
import type { SessionImpl } from "../src/internal/lifecycle.ts"
import type * as Session from "../src/Session.ts"
import { type Peer, peer } from "./util/peer.ts"
import { eventually, within } from "./util/wait.ts"

// --- helpers -------------------------------------------------------------------------------------

const range = (n: number): Array<number> => Array.from({ length: n }, (_, i) => i)

const lines = Frame.lines({ maxLength: 1024 })
const text = (p: Peer): string => Bytes.toString(p.received())

const framer = Frame.lengthField()
const frame = (bytes: Uint8Array): Uint8Array => Frame.encode(framer, bytes)
const unframeWith = (f: Frame.Framer, bytes: Uint8Array): Array<Uint8Array> =>
  Result.getOrThrow(Frame.decodeAll(f, [bytes]))
const unframe = (bytes: Uint8Array): Array<Uint8Array> => unframeWith(framer, bytes)

/** Waits until the peer has received `expected` (as text), failing with what it got instead. */
const receive = (p: Peer, expected: string, millis = 10_000): Effect.Effect<string> =>
  Effect.gen(function* () {
    const size = Bytes.fromString(expected).length
    yield* Effect.promise(() => p.waitFor(size, millis).catch(() => undefined))
    return text(p)
  })

/** The server's session of a peer, found by the peer's local port. */
const sessionOf = <Out, S>(server: Server.Server<Out, S>, p: Peer): Session.Session<Out, S | undefined> | undefined => {
  const port = p.socket.localPort
  for (const s of server.sessions) {
    if (s.remoteAddress._tag === "Tcp" && s.remoteAddress.port === port) return s
  }
  return undefined
}

/** Waits until the server has a session for the peer. */
const awaitSession = <Out, S>(server: Server.Server<Out, S>, p: Peer) =>
  Effect.gen(function* () {
    yield* eventually("the peer's session", () => sessionOf(server, p) !== undefined)
    return sessionOf(server, p)!
  })

/**
 * The implementation behind a `Server.sessions` element: an internal import, to reach the engine's
 * reply buffer and the transport's connection, which the public API does not show.
 */
// deno-lint-ignore no-explicit-any
type Impl = SessionImpl<any, any, any, any, any, any, any>
const implOf = <Out, S>(s: Session.Session<Out, S>): Impl => s as unknown as Impl

const tagOf = (u: unknown): string | undefined =>
  typeof u === "object" && u !== null && "_tag" in u ? String((u as { _tag: unknown })._tag) : undefined

/** Every way to cut `input` into three pieces (two cut points, empty pieces skipped when written). */
const splits3 = (input: string): Array<Array<string>> => {
  const out: Array<Array<string>> = []
  for (let i = 0; i <= input.length; i++) {
    for (let j = i; j <= input.length; j++) out.push([input.slice(0, i), input.slice(i, j), input.slice(j)])
  }
  return out
}

/** Writes the pieces one by one, a few milliseconds apart, so that the server reads them apart. */
const writeApart = (p: Peer, pieces: ReadonlyArray<string>): Effect.Effect<void> =>
  Effect.forEach(
    pieces.filter((piece) => piece.length > 0),
    (piece) => Effect.andThen(Effect.sync(() => p.write(piece)), Effect.sleep("5 millis")),
    { discard: true }
  )

/** A handler as it is (one message at a time), or under `concurrent(4)` (ordered). */
const modes = [
  { name: "sequential", mode: <H extends Handler.Handler.Any>(h: H): H => h },
  { name: "concurrent(4)", mode: <H extends Handler.Handler.Any>(h: H): H => Handler.concurrent(h, 4) as H }
]

// --- 1. streamed replies -------------------------------------------------------------------------

describe("Handler.stream", () => {
  /** `stream N` is answered with the lines `1/N` .. `N/N`, anything else with `pong`. */
  const streaming = Pipeline.make({
    framer: lines,
    codec: Packet.utf8,
    handler: Handler.stream((line: string) => {
      if (!line.startsWith("stream ")) return Stream.make("pong")
      const n = Number(line.slice("stream ".length))
      return Stream.range(1, n).pipe(Stream.map((i) => `${i}/${n}`))
    })
  })
  const expected = (n: number): string => range(n).map((i) => `${i + 1}/${n}\n`).join("") + "pong\n"

  for (const n of [5, 20_000]) {
    // A broken implementation would write `pong` before (or among) the stream's lines, drop lines
    // or reorder them, or lose the stream's tail when backpressure (a high-water mark far below the
    // ~240 KB of 20 000 lines) pauses it.
    it.live(`the ${n} lines of a stream come in order, then the reply to the next pipelined message`, () =>
      Effect.gen(function* () {
        const server = yield* Server.serve({
          pipeline: streaming,
          highWaterMark: 16 * 1024,
          lowWaterMark: 4 * 1024
        })
        const want = expected(n)
        // Pipelined in one write, and with the second message arriving in a read of its own.
        const together = yield* peer(server.port)
        together.write(`stream ${n}\nping\n`)
        const apart = yield* peer(server.port)
        yield* writeApart(apart, [`stream ${n}\n`, "ping\n"])
        expect(yield* receive(together, want)).toBe(want)
        expect(yield* receive(apart, want)).toBe(want)
        // The connection carries on.
        together.write("ping\n")
        expect(yield* receive(together, want + "pong\n")).toBe(want + "pong\n")
      }))
  }

  // A version that collects the stream into an array (or pulls regardless of the outbound bytes)
  // would never stop pulling an endless stream: the pull count would keep growing (and memory with
  // it) and "the pull count stops growing" would time out. A version that does not interrupt the
  // stream when the peer goes away would never run its finalizer.
  it.live("an endless stream to a peer that does not read is pulled only up to the high-water mark, and its finalizer runs when the peer goes away", () =>
    Effect.gen(function* () {
      const ELEMENT = "x".repeat(1023) // 1 KiB a line with its "\n"
      let pulls = 0
      let finalized = 0
      const server = yield* Server.serve({
        pipeline: Pipeline.make({
          framer: lines,
          codec: Packet.utf8,
          handler: Handler.stream((_: string) =>
            Stream.fromEffectRepeat(Effect.sync(() => {
              pulls++
              return ELEMENT
            })).pipe(Stream.ensuring(Effect.sync(() => {
              finalized++
            })))
          )
        }),
        highWaterMark: 64 * 1024,
        lowWaterMark: 16 * 1024
      })
      const p = yield* peer(server.port, { paused: true })
      const session = yield* awaitSession(server, p)
      p.write("go\n")
      yield* eventually("the stream has started", () => pulls > 0)
      // Bounded: the count must stay the same over 300 ms, within 15 s.
      let stable = false
      let last = -1
      for (let i = 0; i < 50 && !stable; i++) {
        yield* Effect.sleep("300 millis")
        stable = pulls === last
        last = pulls
      }
      expect(stable).toBe(true)
      // What the kernel's buffers take (a few MiB on loopback) plus the high-water mark: a few
      // thousand 1 KiB elements at most, never "everything".
      expect(pulls).toBeLessThan(10_000)
      expect(finalized).toBe(0)
      // Pulling stopped with bytes still queued: held back by the outbound bound, not stopped for
      // another reason (the peer's kernel buffers would then have taken everything). Not "above the
      // low-water mark": on Deno a write that the kernel took in part leaves less queued, and the
      // stream waits for the drain (seen once at 14 KiB).
      expect(session.queuedBytes).toBeGreaterThan(0)
      expect(session.queuedBytes).toBeLessThanOrEqual(64 * 1024 + 2 * 1024)
      const pulled = pulls
      p.destroy()
      yield* eventually("the stream's finalizer", () => finalized === 1)
      yield* eventually("the session is gone", () => server.sessions.size === 0)
      // Interrupted, not drained: it was not pulled much further once the peer had gone.
      expect(pulls - pulled).toBeLessThan(1_000)
    }))
})

// --- 2. server push in order ---------------------------------------------------------------------

describe("session.send in order with the replies", () => {
  const INPUT = "r1\nr2\nr3\n"
  const EXPECTED = "reply1\npush\nreply2\nreply3\n"

  // A broken implementation writes the push as soon as it is sent: before `reply1` when reply1 is
  // still in the reply buffer (or, under `concurrent`, still being computed), or after `reply2` /
  // `reply3` when it queues sends behind the replies.
  it.live("sequential: a push sent by r2's handler after it suspended comes after reply1 and before reply2, in every split", () =>
    Effect.gen(function* () {
      const server = yield* Server.serve({
        pipeline: Pipeline.make({
          framer: lines,
          codec: Packet.utf8,
          handler: Handler.gen(function* (line: string, session: Session.Session<string, void>) {
            if (line === "r2") {
              yield* Effect.sleep("10 millis")
              yield* session.send("push")
            }
            return `reply${line.slice(1)}`
          })
        })
      })
      const cases = splits3(INPUT)
      const results = yield* Effect.forEach(cases, (pieces) =>
        Effect.gen(function* () {
          const p = yield* peer(server.port)
          yield* writeApart(p, pieces)
          return { pieces, got: yield* receive(p, EXPECTED) }
        }), { concurrency: 16 })
      for (const { got, pieces } of results) expect({ pieces, got }).toEqual({ pieces, got: EXPECTED })
    }))

  it.live("concurrent(3), ordered: a push sent by r2 while r1 (the slowest) still runs comes after reply1, in every split", () =>
    Effect.gen(function* () {
      interface State {
        readonly pushed: Deferred.Deferred<void>
      }
      const server = yield* Server.serve({
        pipeline: Pipeline.make({
          framer: lines,
          codec: Packet.utf8,
          handler: Handler.gen(function* (line: string, session: Session.Session<string, State>) {
            if (line === "r1") {
              // r1 finishes only once r2 has pushed: the push is made while r1 is unanswered.
              const pushed = yield* Deferred.await(session.state.pushed).pipe(
                Effect.as(true),
                Effect.timeoutOrElse({ duration: "5 seconds", orElse: () => Effect.succeed(false) })
              )
              return pushed ? "reply1" : "reply1 without push"
            }
            if (line === "r2") {
              yield* Effect.sleep("5 millis")
              yield* session.send("push")
              yield* Deferred.succeed(session.state.pushed, undefined)
            }
            return `reply${line.slice(1)}`
          }).pipe(Handler.concurrent(3))
        }),
        onOpen: () => Effect.map(Deferred.make<void>(), (pushed): State => ({ pushed }))
      })
      const cases = splits3(INPUT)
      const results = yield* Effect.forEach(cases, (pieces) =>
        Effect.gen(function* () {
          const p = yield* peer(server.port)
          yield* writeApart(p, pieces)
          return { pieces, got: yield* receive(p, EXPECTED) }
        }), { concurrency: 16 })
      for (const { got, pieces } of results) expect({ pieces, got }).toEqual({ pieces, got: EXPECTED })
    }))
})

describe("a broadcast (a send from outside any handler)", () => {
  const PARTS = 200

  /**
   * Runs a broadcaster (a fiber of the test calling `send` on the server's session in a loop) while
   * the session answers `go` with a multi-part reply, and returns the lines the peer received and
   * how many broadcasts were sent while the reply was in progress.
   */
  const broadcastDuring = (
    handler: (
      progress: { inReply: boolean }
    ) => Handler.Handler<string, string, unknown, never, Session.Session<string, void>>
  ) =>
    Effect.gen(function* () {
      const progress = { inReply: false }
      const server = yield* Server.serve({
        pipeline: Pipeline.make({ framer: lines, codec: Packet.utf8, handler: handler(progress) })
      })
      const p = yield* peer(server.port)
      const session = yield* awaitSession(server, p)
      let sentDuring = 0
      let stop = false
      const broadcaster = yield* Effect.forkChild(Effect.gen(function* () {
        for (let i = 0; i < 5_000 && !stop; i++) {
          const during = progress.inReply
          yield* session.send(`bcast ${i}`)
          if (during) sentDuring++
          yield* Effect.sleep("1 millis")
        }
      }))
      yield* Effect.sleep("5 millis")
      p.write("go\n")
      yield* eventually("the whole reply", () => text(p).includes(`end\n`))
      stop = true
      yield* Fiber.join(broadcaster)
      yield* eventually("complete lines", () => text(p).endsWith("\n"))
      return { received: text(p).split("\n").slice(0, -1), sentDuring }
    })

  /** The parts are contiguous: no broadcast between the first part and `end`. */
  const expectContiguous = (received: ReadonlyArray<string>) => {
    const first = received.indexOf("part 1")
    const end = received.indexOf("end")
    expect(first).toBeGreaterThanOrEqual(0)
    expect(received.slice(first, end + 1)).toEqual([...range(PARTS).map((k) => `part ${k + 1}`), "end"])
    // Every broadcast arrived, in order, around the reply.
    const broadcasts = received.filter((line) => line.startsWith("bcast "))
    expect(broadcasts).toEqual(range(broadcasts.length).map((i) => `bcast ${i}`))
    expect(received.length).toBe(broadcasts.length + PARTS + 1)
  }

  for (const { mode, name } of modes) {
    // A broken implementation writes a broadcast as soon as it is sent: between two parts of the
    // stream (the stream pauses every 10 parts, and the broadcaster sends every millisecond).
    it.live(`never lands inside a streamed reply (Handler.stream of 200 parts, ${name})`, () =>
      Effect.gen(function* () {
        const { received, sentDuring } = yield* broadcastDuring((progress) =>
          mode(Handler.stream((_: string) =>
            Stream.range(1, PARTS).pipe(
              Stream.mapEffect((k) =>
                Effect.sync(() => {
                  progress.inReply = true
                  return `part ${k}`
                }).pipe(Effect.tap(() => k % 10 === 0 ? Effect.sleep("2 millis") : Effect.void))
              ),
              Stream.concat(Stream.make("end")),
              Stream.ensuring(Effect.sync(() => {
                progress.inReply = false
              }))
            )
          ))
        )
        // The test means something only if broadcasts were made while the reply was in progress.
        expect(sentDuring).toBeGreaterThan(0)
        expectContiguous(received)
      }))

    // The same with a reply whose first parts are sent before the handler first suspends (in
    // place, without a fiber), and the rest from its fiber: the reply is in progress from its first
    // part on, and a broadcast must wait for its end.
    it.live(`never lands inside a multi-part reply whose first parts were sent before the handler suspended (${name})`, () =>
      Effect.gen(function* () {
        const { received, sentDuring } = yield* broadcastDuring((progress) =>
          mode(Handler.gen(function* (_: string, session: Session.Session<string, void>) {
            progress.inReply = true
            for (let k = 1; k <= PARTS; k++) {
              yield* session.send(`part ${k}`)
              if (k % 10 === 0) yield* Effect.sleep("2 millis")
            }
            progress.inReply = false
            return "end"
          }))
        )
        expect(sentDuring).toBeGreaterThan(0)
        expectContiguous(received)
      }))
  }
})

describe("send and sendWait to a peer that does not read", () => {
  const CHUNK = 64 * 1024
  const HIGH_WATER = 64 * 1024
  const LOW_WATER = 16 * 1024
  const MAX_OUTBOUND = 256 * 1024
  const echo = Pipeline.make({ framer, codec: Packet.bytes, handler: Handler.sync((b: Uint8Array) => b) })

  // A broken `send` queues without a bound (it never fails, and memory grows with what the peer
  // does not read); a broken `sendWait` fails like `send`, or returns at once, or never returns
  // once the peer reads again.
  it.live("send fails with OutboundOverflow past maxOutboundBytes; sendWait waits instead and resumes once the peer reads", () =>
    Effect.gen(function* () {
      const server = yield* Server.serve({
        pipeline: echo,
        highWaterMark: HIGH_WATER,
        lowWaterMark: LOW_WATER,
        maxOutboundBytes: MAX_OUTBOUND
      })
      const p = yield* peer(server.port, { paused: true })
      const session = yield* awaitSession(server, p)
      // Sends of 64 KiB, each in a tick of its own (written to the socket, not coalesced), until one
      // fails: the kernel's buffers fill first (a few MiB), then the transport's queue.
      let sent = 0
      let failure: unknown = undefined
      for (let i = 0; i < 2_000 && failure === undefined; i++) {
        const result = yield* Effect.result(session.send(new Uint8Array(CHUNK).fill(i % 251)))
        if (Result.isSuccess(result)) sent++
        else failure = result.failure
        yield* Effect.sleep("1 millis")
      }
      expect(tagOf(failure)).toBe("OutboundOverflow")
      const overflow = failure as Errors.OutboundOverflow
      expect(overflow.limit).toBe(MAX_OUTBOUND)
      expect(overflow.queuedBytes).toBeGreaterThan(MAX_OUTBOUND)
      // What is queued stays bounded: once past the limit, nothing more is taken (the message that
      // passed it was taken whole, as it was sent while the queue was still under the limit).
      expect(session.queuedBytes).toBeLessThanOrEqual(MAX_OUTBOUND + CHUNK + 4)
      expect(session.queuedBytes).toBeGreaterThan(HIGH_WATER)
      expect(session.isOpen).toBe(true)

      // sendWait does not fail: it waits, for as long as the peer does not read.
      const marker = Bytes.fromString("after the wait")
      const waiting = yield* Effect.forkChild(Effect.exit(session.sendWait(marker)))
      yield* Effect.sleep("300 millis")
      expect(waiting.pollUnsafe()).toBeUndefined()
      // The peer reads: the queue drains to the low-water mark and the wait is over.
      p.socket.resume()
      const exit = yield* Fiber.join(waiting).pipe(
        Effect.timeoutOrElse({ duration: "10 seconds", orElse: () => Effect.die(new Error("sendWait never resumed")) })
      )
      expect(Exit.isSuccess(exit)).toBe(true)
      // Everything sent arrived, in order, then the marker.
      const total = sent * (CHUNK + 4) + marker.length + 4
      const got = yield* within("everything sent", () => p.waitFor(total))
      const frames = unframe(got)
      expect(frames.length).toBe(sent + 1)
      for (let i = 0; i < sent; i++) {
        expect(frames[i]!.length).toBe(CHUNK)
        expect(frames[i]![0]).toBe(i % 251)
      }
      expect(Bytes.toString(frames[sent]!)).toBe("after the wait")
    }))
})

// --- 3. recovery sees the request ----------------------------------------------------------------

const Request = Schema.Struct({ id: Schema.Number, op: Schema.String })
const Response = Schema.Struct({
  id: Schema.Number,
  result: Schema.optional(Schema.String),
  error: Schema.optional(Schema.String)
})
type Request = typeof Request.Type
type Response = typeof Response.Type
const rpcCodec = Codec.duplex({ decode: Packet.schema(Request, "json"), encode: Packet.schema(Response, "json") })

class Refused extends Data.TaggedError("Refused")<{ readonly op: string }> {}

/** Length-prefixed JSON requests, as a raw peer writes them. */
const rpc = (requests: ReadonlyArray<Request>): Uint8Array =>
  Bytes.concat(requests.map((r) => frame(Bytes.fromString(JSON.stringify(r)))))
/** The JSON replies among the bytes a raw peer received (complete frames only). */
const rpcReplies = (bytes: Uint8Array): Array<Response> => {
  const decoder = Frame.decoder(framer)
  decoder.feed(bytes)
  const out: Array<Response> = []
  for (let f = decoder.next(); f !== undefined; f = decoder.next()) out.push(JSON.parse(Bytes.toString(f)))
  return out
}
/** Waits until a raw peer has received `n` replies (or 10 s passed), and returns them. */
const awaitReplies = (p: Peer, n: number, millis = 10_000): Effect.Effect<Array<Response>> =>
  Effect.gen(function* () {
    for (let i = 0; i * 10 < millis && rpcReplies(p.received()).length < n; i++) yield* Effect.sleep("10 millis")
    return rpcReplies(p.received())
  })

describe("Pipeline.catchTag", () => {
  for (const { mode, name } of modes) {
    // A broken recovery that does not get the request cannot answer with its id: the client's call
    // would wait for a reply that never comes (a time-out), or get one with no (or the wrong) id; a
    // recovery that ends the connection would leave the following calls unanswered.
    it.live(`the recovery gets the request that failed and answers with its id; the connection carries on (${name})`, () =>
      Effect.gen(function* () {
        const seen: Array<Request | undefined> = []
        const pipeline = Pipeline.make({
          framer,
          codec: rpcCodec,
          handler: mode(Handler.effect((request: Request): Effect.Effect<Response, Refused> => {
            switch (request.op) {
              case "fail":
                return Effect.fail(new Refused({ op: request.op }))
              case "failLater":
                return Effect.andThen(Effect.sleep("20 millis"), Effect.fail(new Refused({ op: request.op })))
              case "slow":
                return Effect.as(Effect.sleep("20 millis"), { id: request.id, result: "slow ok" })
              default:
                return Effect.succeed({ id: request.id, result: `${request.op} ok` })
            }
          }))
        }).pipe(
          Pipeline.catchTag("Refused", (error, request) =>
            Effect.sync((): Response => {
              seen.push(request)
              return { id: request?.id ?? -1, error: `refused ${error.op}` }
            }))
        )
        const server = yield* Server.serve({ pipeline })
        const p = yield* peer(server.port)
        // One call that fails on its own, then one that succeeds.
        p.write(rpc([{ id: 7, op: "fail" }]))
        expect(yield* awaitReplies(p, 1)).toEqual([{ id: 7, error: "refused fail" }])
        p.write(rpc([{ id: 8, op: "echo" }]))
        expect(yield* awaitReplies(p, 2)).toEqual([{ id: 7, error: "refused fail" }, { id: 8, result: "echo ok" }])
        // Pipelined, failing at once and after a suspension, among calls that succeed.
        const calls: Array<Request> = [
          { id: 10, op: "slow" },
          { id: 11, op: "failLater" },
          { id: 12, op: "echo" },
          { id: 13, op: "fail" },
          { id: 14, op: "slow" }
        ]
        p.write(rpc(calls))
        expect((yield* awaitReplies(p, 7)).slice(2)).toEqual([
          { id: 10, result: "slow ok" },
          { id: 11, error: "refused failLater" },
          { id: 12, result: "echo ok" },
          { id: 13, error: "refused fail" },
          { id: 14, result: "slow ok" }
        ])
        // Each failed call's recovery got that call (under concurrent(n), in the order they failed).
        expect([...seen].sort((a, b) => (a?.id ?? -1) - (b?.id ?? -1))).toEqual([
          { id: 7, op: "fail" },
          { id: 11, op: "failLater" },
          { id: 13, op: "fail" }
        ])
        // Still open.
        p.write(rpc([{ id: 15, op: "echo" }]))
        expect((yield* awaitReplies(p, 8))[7]).toEqual({ id: 15, result: "echo ok" })
        expect(server.sessions.size).toBe(1)
      }))
  }

  // Through a client that correlates by id: a recovery that could not answer with the call's id
  // would leave the call waiting until its time-out (a RequestTimeout instead of the reply).
  it.live("a client correlating by id gets the failure answered (not a time-out), and its next call succeeds", () =>
    Effect.gen(function* () {
      const server = yield* Server.serve({
        pipeline: Pipeline.make({
          framer,
          codec: rpcCodec,
          handler: Handler.effect((request: Request): Effect.Effect<Response, Refused> =>
            request.op === "fail"
              ? Effect.andThen(Effect.sleep("5 millis"), Effect.fail(new Refused({ op: request.op })))
              : Effect.succeed({ id: request.id, result: `${request.op} ok` })
          )
        }).pipe(
          Pipeline.catchTag(
            "Refused",
            (error, request) => Effect.succeed<Response>({ id: request?.id ?? -1, error: `refused ${error.op}` })
          )
        )
      })
      const client = yield* Client.make({
        port: server.port,
        framer,
        codec: Codec.duplex({ decode: Packet.schema(Response, "json"), encode: Packet.schema(Request, "json") }),
        correlate: { request: (r: Request) => r.id, response: (r: Response) => r.id },
        requestTimeout: "5 seconds"
      })
      const [failed, succeeded] = yield* Effect.all([
        Effect.result(client.request({ id: 41, op: "fail" })),
        Effect.result(client.request({ id: 42, op: "echo" }))
      ], { concurrency: "unbounded" })
      expect(failed).toEqual(Result.succeed({ id: 41, error: "refused fail" }))
      expect(succeeded).toEqual(Result.succeed({ id: 42, result: "echo ok" }))
      expect(yield* Effect.result(client.request({ id: 43, op: "echo" }))).toEqual(
        Result.succeed({ id: 43, result: "echo ok" })
      )
    }))
})

// --- 4. per-message handler time-outs ------------------------------------------------------------

describe("handlerTimeout, per message", () => {
  /** `stuck` never finishes, `slow` takes ~50 ms, anything else answers at once. */
  // The handler declares `HandlerTimeout` among its errors only so that `catchTag("HandlerTimeout")`
  // typechecks: a pipeline's error type does not include it by itself (see the report).
  const handler = Handler.effect((request: Request): Effect.Effect<Response, Errors.HandlerTimeout> => {
    switch (request.op) {
      case "stuck":
        return Effect.never
      case "slow":
        return Effect.as(Effect.sleep("50 millis"), { id: request.id, result: "slow ok" })
      default:
        return Effect.succeed({ id: request.id, result: `${request.op} ok` })
    }
  })
  const timeouts: Array<{ readonly id: number | undefined; readonly timeoutMillis: number }> = []
  const serve = (h: Handler.Handler<Request, Response, Errors.HandlerTimeout>) =>
    Server.serve({
      pipeline: Pipeline.make({ framer, codec: rpcCodec, handler: h }).pipe(
        Pipeline.catchTag("HandlerTimeout", (error, request) =>
          Effect.sync((): Response => {
            timeouts.push({ id: request?.id, timeoutMillis: error.timeoutMillis })
            return { id: request?.id ?? -1, error: error._tag }
          }))
      ),
      handlerTimeout: "300 millis"
    })

  // The old per-connection watchdog never fired while other calls of the connection made progress:
  // here the slow calls keep finishing, one after the other, so such a watchdog would never time
  // the stuck call out, and its reply would never come (the loop below would run out).
  it.live("concurrent(4), unordered: the stuck call times out while the others keep being answered", () =>
    Effect.gen(function* () {
      timeouts.length = 0
      const server = yield* serve(Handler.concurrent(handler, 4, { ordered: false }))
      const p = yield* peer(server.port)
      p.write(rpc([{ id: 0, op: "stuck" }]))
      // One slow call at a time, each sent once the one before is answered, until the stuck one is.
      let slow = 0
      for (let id = 1; id <= 200 && !rpcReplies(p.received()).some((r) => r.id === 0); id++) {
        p.write(rpc([{ id, op: "slow" }]))
        slow++
        yield* awaitReplies(p, id)
      }
      const replies = yield* awaitReplies(p, slow + 1)
      expect(replies.length).toBe(slow + 1)
      const stuck = replies.find((r) => r.id === 0)
      expect(stuck).toEqual({ id: 0, error: "HandlerTimeout" })
      // The others were answered normally, before the stuck one's time-out and after it.
      const before = replies.slice(0, replies.indexOf(stuck!))
      expect(before.length).toBeGreaterThan(0)
      expect(replies.filter((r) => r.id !== 0)).toEqual(range(slow).map((i) => ({ id: i + 1, result: "slow ok" })))
      expect(timeouts).toEqual([{ id: 0, timeoutMillis: 300 }])
      // The connection carries on.
      const count = replies.length
      p.write(rpc([{ id: 1000, op: "echo" }]))
      expect((yield* awaitReplies(p, count + 1)).slice(count)).toEqual([{ id: 1000, result: "echo ok" }])
    }))

  // A time-out that does not reach the message (or that ends the session, or ends every message
  // of the connection) would leave the stuck call unanswered, answer it without its id, or lose the
  // others' replies.
  it.live("concurrent(4), ordered: the stuck call fails with HandlerTimeout, answered with its id; the others are answered normally", () =>
    Effect.gen(function* () {
      timeouts.length = 0
      const server = yield* serve(Handler.concurrent(handler, 4))
      const p = yield* peer(server.port)
      p.write(rpc([
        { id: 1, op: "stuck" },
        ...range(6).map((i): Request => ({ id: 2 + i, op: "slow" }))
      ]))
      expect(yield* awaitReplies(p, 7)).toEqual([
        { id: 1, error: "HandlerTimeout" },
        ...range(6).map((i) => ({ id: 2 + i, result: "slow ok" }))
      ])
      expect(timeouts).toEqual([{ id: 1, timeoutMillis: 300 }])
      p.write(rpc([{ id: 9, op: "echo" }, { id: 10, op: "stuck" }, { id: 11, op: "echo" }]))
      expect((yield* awaitReplies(p, 10)).slice(7)).toEqual([
        { id: 9, result: "echo ok" },
        { id: 10, error: "HandlerTimeout" },
        { id: 11, result: "echo ok" }
      ])
      expect(server.sessions.size).toBe(1)
    }))

  // Sequential: a broken time-out would leave the connection stuck behind the first message (the
  // next one never handled), or end the session instead of failing the one message.
  it.live("sequential: a stuck message times out and the next pipelined message is handled after it", () =>
    Effect.gen(function* () {
      timeouts.length = 0
      const server = yield* serve(handler)
      const p = yield* peer(server.port)
      p.write(rpc([{ id: 1, op: "stuck" }, { id: 2, op: "echo" }, { id: 3, op: "slow" }]))
      expect(yield* awaitReplies(p, 3)).toEqual([
        { id: 1, error: "HandlerTimeout" },
        { id: 2, result: "echo ok" },
        { id: 3, result: "slow ok" }
      ])
      p.write(rpc([{ id: 4, op: "stuck" }]))
      p.write(rpc([{ id: 5, op: "echo" }]))
      expect((yield* awaitReplies(p, 5)).slice(3)).toEqual([
        { id: 4, error: "HandlerTimeout" },
        { id: 5, result: "echo ok" }
      ])
      expect(timeouts).toEqual([{ id: 1, timeoutMillis: 300 }, { id: 4, timeoutMillis: 300 }])
      expect(server.sessions.size).toBe(1)
    }))
})

// --- 4b. a graceful shutdown while handlers run -------------------------------------------------

describe("a graceful shutdown while a handler runs", () => {
  for (const { mode, name } of modes) {
    // The shutdown answers the message already read, then closes at once. A broken engine that
    // never tells its session it has become idle (here: under concurrent(n) below its limit, a
    // handler that finishes after the shutdown began) leaves the session finishing until the
    // server's shutdownTimeout (10 s) drops it: the peer would not see the close within 5 s.
    it.live(`answers the message in flight, then closes without waiting for shutdownTimeout (${name})`, () =>
      Effect.gen(function* () {
        const closes: Array<Session.CloseReason> = []
        const serverScope = yield* Scope.make()
        const server = yield* Server.serve({
          pipeline: Pipeline.make({
            framer: lines,
            codec: Packet.utf8,
            handler: mode(Handler.effect((line: string) => Effect.as(Effect.sleep("200 millis"), `done ${line}`)))
          }),
          onClose: (_, reason) => Effect.sync(() => closes.push(reason))
        }).pipe(Scope.provide(serverScope))
        const p = yield* peer(server.port)
        p.write("x\n")
        yield* eventually("the message is being handled", () => sessionOf(server, p)?.bytesIn === 2)
        yield* Effect.sleep("20 millis")
        const shutdown = yield* Effect.forkChild(Scope.close(serverScope, Exit.void))
        yield* within("the peer sees the connection closed", () => p.closed, 5_000)
        expect(text(p)).toBe("done x\n")
        yield* Fiber.join(shutdown)
        expect(closes.map((reason) => reason._tag)).toEqual(["Shutdown"])
      }))
  }
})

// --- 5. a server-wide task pool ------------------------------------------------------------------

describe("Server taskPool", () => {
  // Without a pool (or with one per connection), 20 connections would run up to 20 handlers at once:
  // the peak would be far above 2. A pool that loses a release (or a waiter) would leave requests
  // unanswered.
  it.live("taskPool: 2 runs at most 2 suspending handlers at once across 20 connections, and answers every request", () =>
    Effect.gen(function* () {
      let inFlight = 0
      let peak = 0
      const server = yield* Server.serve({
        pipeline: Pipeline.make({
          framer: lines,
          codec: Packet.utf8,
          // Counted inside the fiber the pool admits: the whole Effect needs one (a composition, not
          // a plain `sync` or generator that could start in place), so nothing of it runs before it
          // has a slot.
          handler: Handler.effect((line: string) =>
            Effect.sync(() => {
              inFlight++
              peak = Math.max(peak, inFlight)
            }).pipe(
              Effect.andThen(Effect.sleep("20 millis")),
              Effect.ensuring(Effect.sync(() => {
                inFlight--
              })),
              Effect.as(`done ${line}`)
            )
          )
        }),
        taskPool: 2
      })
      const peers = yield* Effect.forEach(range(20), () => peer(server.port))
      for (const [c, p] of peers.entries()) p.write(`${c}.a\n${c}.b\n${c}.c\n`)
      for (const [c, p] of peers.entries()) {
        const want = `done ${c}.a\ndone ${c}.b\ndone ${c}.c\n`
        expect(yield* receive(p, want, 20_000)).toBe(want)
      }
      expect(peak).toBe(2)
      expect({ running: server.taskPool!.running, peak: server.taskPool!.peak }).toEqual({ running: 0, peak: 2 })
    }))

  // Without the pause, the waiting connection would go on reading what its peer sends (bytesIn
  // would grow while its message waits); without a pool, its message would not wait at all; a
  // synchronous answer that took a slot would wait for the pool too.
  for (const { mode, name } of modes) {
    it.live(`a connection whose message waits for a slot stops reading; a handler that answers without a fiber needs no slot (${name})`, () =>
      Effect.gen(function* () {
        const gate = yield* Deferred.make<void>()
        const started: Array<string> = []
        const server = yield* Server.serve({
          pipeline: Pipeline.make({
            framer: lines,
            codec: Packet.utf8,
            handler: mode(Handler.gen(function* (line: string) {
              // Answered in place, without a fiber (and so without a slot).
              if (line.startsWith("sync")) return `${line} ok`
              yield* Effect.yieldNow
              started.push(line)
              if (line.startsWith("block")) yield* Deferred.await(gate)
              return `${line} done`
            }))
          }),
          taskPool: 2
        })
        // Released before the server shuts down, should the test fail while handlers wait on it.
        yield* Effect.addFinalizer(() => Deferred.succeed(gate, undefined))
        const pool = server.taskPool!
        // Two connections take both slots, blocked on the gate.
        const a = yield* peer(server.port)
        const b = yield* peer(server.port)
        a.write("block a\n")
        b.write("block b\n")
        yield* eventually("both slots taken", () => started.length === 2)
        expect(pool.running).toBe(2)
        // A third connection's message waits for a slot.
        const c = yield* peer(server.port)
        const sessionC = yield* awaitSession(server, c)
        c.write("work c\n")
        yield* eventually("c's message read", () => sessionC.bytesIn === "work c\n".length)
        // The peer keeps sending while its message waits: the session reads no more of it.
        const pushed = range(200).map((i) => `more ${i}\n`).join("")
        c.write(pushed)
        yield* Effect.sleep("300 millis")
        expect(sessionC.bytesIn).toBe("work c\n".length)
        expect([...started].sort()).toEqual(["block a", "block b"])
        expect(c.received().length).toBe(0)
        // Meanwhile a handler that answers without a fiber is answered at once, pool full or not.
        const d = yield* peer(server.port)
        d.write("sync d\n")
        expect(yield* receive(d, "sync d ok\n")).toBe("sync d ok\n")
        expect(pool.running).toBe(2)
        expect(sessionC.bytesIn).toBe("work c\n".length)
        // Released: every request is answered, c's in order.
        yield* Deferred.succeed(gate, undefined)
        expect(yield* receive(a, "block a done\n")).toBe("block a done\n")
        expect(yield* receive(b, "block b done\n")).toBe("block b done\n")
        const wantC = "work c done\n" + range(200).map((i) => `more ${i} done\n`).join("")
        expect(yield* receive(c, wantC)).toBe(wantC)
        expect(sessionC.bytesIn).toBe("work c\n".length + pushed.length)
        expect(pool.peak).toBe(2)
        expect(pool.running).toBe(0)
      }))
  }
})

// --- 6. the memory a large reply leaves behind ---------------------------------------------------

describe("write memory after a large reply", () => {
  const BIG = 20 * 1024 * 1024
  const RETAINED = 256 * 1024
  const bigFramer = Frame.lengthField({ maxFrameLength: 32 * 1024 * 1024 })
  const big = new Uint8Array(BIG).fill(0x5a)
  big[0] = 1
  big[BIG - 1] = 2

  /** What the session and its transport hold on to for writing, in bytes. */
  const writeBuffers = <Out, S>(s: Session.Session<Out, S>) => {
    const impl = implOf(s)
    // Private: the engine's writers for sends from a handler's fiber and for broadcasts, made on
    // first use.
    const engine = impl.engine as unknown as {
      readonly writer: Bytes.Writer
      readonly sendBuffer?: Bytes.Writer | undefined
      readonly outside?: Bytes.Writer | undefined
      readonly deferred?: Bytes.Writer | undefined
    }
    const buffers: Record<string, number> = {
      writer: engine.writer.capacity,
      sendBuffer: engine.sendBuffer?.capacity ?? 0,
      outside: engine.outside?.capacity ?? 0,
      deferred: engine.deferred?.capacity ?? 0
    }
    // Private: the transport's queue of bytes the socket did not take (Bun: `unsent`, emptied and
    // dropped once drained; Deno: `unsent` and its `spare`), read with a cast.
    const connection = impl.connection as unknown as {
      readonly unsent?: Uint8Array
      readonly spare?: Uint8Array | undefined
    }
    if (Transport.runtime === "bun" || Transport.runtime === "deno") {
      if (!(connection.unsent instanceof Uint8Array)) {
        throw new Error(`the ${Transport.runtime} connection has no \`unsent\` buffer: update this test`)
      }
      buffers.unsent = connection.unsent.byteLength
      buffers.spare = connection.spare?.byteLength ?? 0
    }
    return buffers
  }

  const cases: ReadonlyArray<{
    readonly name: string
    readonly handler: Handler.Handler<Uint8Array, Uint8Array, never, never, Session.Session<Uint8Array, void>>
    /** Sent by the test from outside any handler, instead of a request. */
    readonly broadcast?: boolean
  }> = [
    { name: "a synchronous reply", handler: Handler.sync((_: Uint8Array) => big) },
    {
      name: "a reply after a suspension, under concurrent(2)",
      handler: Handler.concurrent(Handler.effect((_: Uint8Array) => Effect.as(Effect.sleep("5 millis"), big)), 2)
    },
    {
      name: "a send from a handler's fiber",
      handler: Handler.gen(function* (_: Uint8Array, session: Session.Session<Uint8Array, void>) {
        yield* Effect.sleep("5 millis")
        yield* Effect.orDie(session.send(big))
        return Bytes.fromString("sent")
      })
    },
    { name: "a broadcast", handler: Handler.sync((b: Uint8Array) => b), broadcast: true }
  ]

  for (const { broadcast, handler, name } of cases) {
    // A writer that keeps the buffer it grew to for the reply (and a transport that keeps its
    // queue's) holds 20 MB (32 MiB of capacity) per connection for as long as it lives.
    it.live(`the session lets go of the buffers a 20 MB reply needed (${name})`, () =>
      Effect.gen(function* () {
        const server = yield* Server.serve({
          pipeline: Pipeline.make({ framer: bigFramer, codec: Packet.bytes, handler })
        })
        const p = yield* peer(server.port)
        const session = yield* awaitSession(server, p)
        if (broadcast === true) yield* Effect.orDie(session.send(big))
        else p.write(Frame.encode(bigFramer, Bytes.fromString("go")))
        const got = yield* within("the 20 MB reply", () => p.waitFor(BIG + 4, 30_000), 30_000)
        const first = unframeWith(bigFramer, got)[0]!
        expect(first.length).toBe(BIG)
        expect([first[0], first[1], first[BIG - 2], first[BIG - 1]]).toEqual([1, 0x5a, 0x5a, 2])
        // Once everything has been written, nothing holds on to 20 MB.
        yield* eventually(
          "buffers back to their small sizes",
          () => Object.values(writeBuffers(session)).every((size) => size <= RETAINED),
          5_000
        ).pipe(Effect.catchDefect(() => Effect.void))
        const buffers = writeBuffers(session)
        for (const [key, size] of Object.entries(buffers)) {
          expect({ [key]: size }).toEqual({ [key]: Math.min(size, RETAINED) })
        }
        // And the connection still works.
        const before = p.received().length
        p.write(Frame.encode(bigFramer, Bytes.fromString("again")))
        yield* within("another reply", () => p.waitFor(before + 5, 30_000), 30_000)
      }))
  }

  // A writer that never lets go keeps its capacity at 32 MiB after one 20 MB message.
  it("Bytes.Writer lets go of a buffer grown past retainCapacity in take(), and the view it returned stays intact", () => {
    const writer = new Bytes.Writer()
    const small = writer.capacity
    writer.write(big)
    expect(writer.capacity).toBeGreaterThanOrEqual(BIG)
    const view = writer.take()
    expect(writer.capacity).toBeLessThanOrEqual(RETAINED)
    expect(view.length).toBe(BIG)
    expect([view[0], view[1], view[BIG - 1]]).toEqual([1, 0x5a, 2])
    // Writing again does not touch the view it handed out.
    writer.write(new Uint8Array(1000).fill(3))
    expect([view[0], view[1], view[BIG - 1]]).toEqual([1, 0x5a, 2])
    expect(writer.capacity).toBeLessThanOrEqual(RETAINED)
    // A buffer within retainCapacity is kept for reuse.
    writer.take()
    writer.write(new Uint8Array(100 * 1024))
    const kept = writer.capacity
    writer.take()
    expect(writer.capacity).toBe(kept)
    expect(kept).toBeGreaterThan(small)
  })
})

// --- 7. the declared error type never lies --------------------------------------------------------

describe("what a codec or a handler throws becomes the declared error", () => {
  /** A codec whose decode throws a RangeError for "bad" (not its typed error: a bug in the codec). */
  const throwingCodec = Codec.makeUnsafe<Uint8Array, string, string>({
    name: "throwing",
    decode: (bytes) => {
      const text = Bytes.toString(bytes)
      if (text === "bad") throw new RangeError("offset is outside the bounds of the DataView")
      return text
    },
    encode: (text) => Bytes.fromString(text)
  })

  /**
   * The same codec, declaring `PacketDecodeError` among its errors: a pipeline's error type has it
   * only when its codec declares it, although a stray throw of any codec becomes one at run time.
   */
  const declaringCodec: Codec.Codec<Uint8Array, string, string, Errors.PacketDecodeError> = throwingCodec

  /** Serves `pipeline`, sends `input`, and returns what the peer received and what `onError` got. */
  const failingSession = <E>(
    pipeline: Pipeline.Pipeline<string, string, E, never, unknown>,
    input: string
  ) =>
    Effect.gen(function* () {
      const errors: Array<unknown> = []
      const closes: Array<Session.CloseReason> = []
      const server = yield* Server.serve({
        pipeline,
        onError: (_, error) => Effect.sync(() => errors.push(error)),
        onClose: (_, reason) => Effect.sync(() => closes.push(reason))
      })
      const p = yield* peer(server.port)
      p.write(input)
      yield* within("the connection closed", () => p.closed)
      yield* eventually("onClose", () => closes.length === 1)
      return { received: text(p), errors, closes }
    })

  // A codec's stray throw that reached the session as it is would be a RangeError where the types
  // promise `PacketDecodeError | ...`: `catchTag("PacketDecodeError")` would not see it, and
  // `onError` would get an error of no declared type.
  for (const { mode, name } of modes) {
    it.live(`a RangeError thrown by a codec's decode reaches the session as a PacketDecodeError with it as the cause (${name})`, () =>
      Effect.gen(function* () {
        const pipeline = Pipeline.make({
          framer: lines,
          codec: throwingCodec,
          handler: mode(Handler.sync((line: string) => `ok ${line}`))
        })
        const { closes, errors, received } = yield* failingSession(pipeline, "one\nbad\ntwo\n")
        // The reply before it is written; nothing after it is handled.
        expect(received).toBe("ok one\n")
        expect(errors.length).toBe(1)
        const error = errors[0]
        expect(error).toBeInstanceOf(Errors.PacketDecodeError)
        expect((error as Errors.PacketDecodeError).cause).toBeInstanceOf(RangeError)
        expect(((error as Errors.PacketDecodeError).cause as RangeError).message).toBe(
          "offset is outside the bounds of the DataView"
        )
        expect(closes[0]!._tag).toBe("Failed")
        expect(closes[0]!._tag === "Failed" && closes[0]!.error).toBe(error)
      }))

    it.live(`the PacketDecodeError of a codec's stray throw can be recovered with catchTag; the request is undefined (${name})`, () =>
      Effect.gen(function* () {
        const requests: Array<string | undefined> = []
        const server = yield* Server.serve({
          pipeline: Pipeline.make({
            framer: lines,
            codec: declaringCodec,
            handler: mode(Handler.sync((line: string) => `ok ${line}`))
          }).pipe(
            Pipeline.catchTag("PacketDecodeError", (error, request) =>
              Effect.sync(() => {
                requests.push(request)
                return `undecodable: ${error.cause instanceof RangeError ? "RangeError" : String(error.cause)}`
              }))
          )
        })
        const p = yield* peer(server.port)
        p.write("one\nbad\ntwo\n")
        const want = "ok one\nundecodable: RangeError\nok two\n"
        expect(yield* receive(p, want)).toBe(want)
        expect(requests).toEqual([undefined])
      }))

    // A throw that escaped as it is would crash the read callback (or reach `onError` as a bare
    // Error where the types say `HandlerError`).
    it.live(`a synchronous handler that throws fails with a HandlerError whose cause is what it threw (${name})`, () =>
      Effect.gen(function* () {
        const thrown = new TypeError("cannot read properties of undefined")
        const pipeline = Pipeline.make({
          framer: lines,
          codec: Packet.utf8,
          handler: mode(Handler.sync((line: string) => {
            if (line === "boom") throw thrown
            return `ok ${line}`
          }))
        })
        const { closes, errors, received } = yield* failingSession(pipeline, "one\nboom\ntwo\n")
        expect(received).toBe("ok one\n")
        expect(errors.length).toBe(1)
        expect(errors[0]).toBeInstanceOf(Errors.HandlerError)
        expect((errors[0] as Errors.HandlerError).cause).toBe(thrown)
        expect(closes[0]!._tag === "Failed" && closes[0]!.error).toBe(errors[0])
      }))

    it.live(`an Effect handler that throws before or after it suspends fails with a HandlerError whose cause is what it threw (${name})`, () =>
      Effect.gen(function* () {
        const before = new Error("thrown before the Effect")
        const after = new Error("thrown in the fiber")
        for (const [input, thrown] of [["early", before], ["late", after]] as const) {
          const pipeline = Pipeline.make({
            framer: lines,
            codec: Packet.utf8,
            handler: mode(Handler.effect((line: string): Effect.Effect<string> => {
              if (line === "early") throw before
              if (line === "late") {
                return Effect.andThen(
                  Effect.sleep("5 millis"),
                  Effect.sync((): string => {
                    throw after
                  })
                )
              }
              return Effect.succeed(`ok ${line}`)
            }))
          })
          const { errors, received } = yield* failingSession(pipeline, `one\n${input}\ntwo\n`)
          expect(received).toBe("ok one\n")
          expect(errors.length).toBe(1)
          expect(errors[0]).toBeInstanceOf(Errors.HandlerError)
          expect((errors[0] as Errors.HandlerError).cause).toBe(thrown)
        }
      }))
  }
})
