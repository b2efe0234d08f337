/**
 * Sessions over real sockets on 127.0.0.1, with the runtime's own transport (`Transport.current`:
 * Bun.listen on Bun, Deno.listen on Deno, node:net on Node). Peers are raw node:net sockets
 * (test/util/peer.ts), independent of the transport under test.
 */
import { describe, expect, it } from "@effect/vitest"
import { Data, Effect, Exit, Fiber, Latch, Result, Schedule, Scope } from "effect"
import * as net from "node:net"
import { Bytes, Client, Errors, Frame, Handler, Packet, Pipeline, Server, Transport } from "../src/index.ts"
import type * as Session from "../src/Session.ts"
import { type Peer, peer } from "./util/peer.ts"
import { eventually, flag, within } from "./util/wait.ts"

// --- helpers -------------------------------------------------------------------------------------

const range = (n: number): Array<number> => Array.from({ length: n }, (_, i) => i)

const framer = Frame.lengthField()
const frame = (text: string): Uint8Array => Frame.encode(framer, Bytes.fromString(text))
const frames = (texts: ReadonlyArray<string>): Uint8Array => Bytes.concat(texts.map(frame))
const decode = (bytes: Uint8Array): Array<string> =>
  Result.getOrThrow(Frame.decodeAll(framer, [bytes])).map(Bytes.toString)
const echo = Pipeline.make({ framer, codec: Packet.bytes, handler: Handler.sync((b: Uint8Array) => b) })

const lines = Frame.lines({ maxLength: 1024 })
const text = (peer: Peer): string => Bytes.toString(peer.received())

/** A 4-byte big-endian length header announcing `length` bytes (and no body). */
const header = (length: number): Uint8Array => {
  const bytes = new Uint8Array(4)
  new DataView(bytes.buffer).setUint32(0, length)
  return bytes
}

const localPorts = new WeakMap<Peer, number>()

/** A raw peer (see test/util/peer.ts) whose local port is remembered: node:net forgets it on close. */
const connect = (port: number, options?: { readonly paused?: boolean }) =>
  Effect.tap(peer(port, options), (p) => Effect.sync(() => localPorts.set(p, p.socket.localPort ?? -1)))

/** A scope of its own for a server, closed by the test (and at the latest when the test's scope closes). */
const childScope = Effect.gen(function* () {
  const scope = yield* Scope.make()
  yield* Effect.addFinalizer(() => Scope.close(scope, Exit.void))
  return scope
})

const tagOf = (u: unknown): string | undefined =>
  typeof u === "object" && u !== null && "_tag" in u ? String((u as { _tag: unknown })._tag) : undefined

interface SessionLike {
  readonly id: string
  readonly remoteAddress: Transport.Address
}

interface HookRecord {
  readonly id: string
  readonly port: number
  opened: number
  readonly errors: Array<unknown>
  readonly closes: Array<Session.CloseReason>
}

/** Counts each session's hooks, by session id; `byPort` finds the session of a peer. */
const recorder = () => {
  const records = new Map<string, HookRecord>()
  const of = (s: SessionLike): HookRecord => {
    let record = records.get(s.id)
    if (record === undefined) {
      const port = s.remoteAddress._tag === "Tcp" ? s.remoteAddress.port : -1
      record = { id: s.id, port, opened: 0, errors: [], closes: [] }
      records.set(s.id, record)
    }
    return record
  }
  return {
    records,
    byPort: (peer: Peer): HookRecord | undefined => {
      for (const record of records.values()) if (record.port === localPorts.get(peer)) return record
      return undefined
    },
    hooks: {
      onOpen: (s: SessionLike) =>
        Effect.sync(() => {
          of(s).opened++
        }),
      onError: (s: SessionLike, error: unknown) =>
        Effect.sync(() => {
          of(s).errors.push(error)
        }),
      onClose: (s: SessionLike, reason: Session.CloseReason) =>
        Effect.sync(() => {
          of(s).closes.push(reason)
        })
    }
  }
}

/** Drops a socket at once; with `resetAndDestroy` (where the runtime has it) the peer sees a reset. */
const reset = (p: Peer): void => {
  const socket = p.socket as net.Socket & { resetAndDestroy?: () => void }
  if (typeof socket.resetAndDestroy === "function") socket.resetAndDestroy()
  else socket.destroy()
}

/** The error of a `Failed` close reason. */
const failure = (reason: Session.CloseReason): unknown => reason._tag === "Failed" ? reason.error : undefined

// --- tests ---------------------------------------------------------------------------------------

describe("Session", () => {
  it.live("runs on the runtime's own transport", () =>
    Effect.gen(function* () {
      expect((yield* Transport.current).name).toBe(Transport.runtime)
    }))

  it.live("200 concurrent raw clients each echo 20 frames and all get their bytes back", () =>
    Effect.gen(function* () {
      const server = yield* Server.serve({ pipeline: echo })
      const results = yield* Effect.forEach(range(200), (c) =>
        Effect.gen(function* () {
          const p = yield* connect(server.port)
          const messages = range(20).map((i) => `client ${c} frame ${i} ${"y".repeat((c * 7 + i) % 61)}`)
          // Alternate single-frame writes and one write of several frames.
          for (let i = 0; i < 10; i++) p.write(frame(messages[i]!))
          p.write(frames(messages.slice(10)))
          const expected = frames(messages).length
          const got = yield* within(`client ${c} echoes`, () => p.waitFor(expected))
          return { messages, got }
        }), { concurrency: "unbounded" })
      for (const { got, messages } of results) expect(decode(got)).toEqual(messages)
      expect(server.accepted).toBe(200)
      expect(server.sessions.size).toBe(200)
    }))

  it.live("readIdleTimeout closes a silent client with IdleTimeout; a client that keeps sending stays open", () =>
    Effect.gen(function* () {
      const rec = recorder()
      const server = yield* Server.serve({ pipeline: echo, readIdleTimeout: "300 millis", ...rec.hooks })
      const start = Date.now()
      const silent = yield* connect(server.port)
      const busy = yield* connect(server.port)
      const silentClosed = flag(silent.closed)
      const busyClosed = flag(busy.closed)
      let closedAfter = -1
      void silent.ended.then(() => (closedAfter = Date.now() - start))
      // The busy client sends every 25 ms until the silent one is closed and 3 timeouts have passed.
      const sent: Array<string> = []
      for (let i = 0; i < 400 && (!silentClosed.done || Date.now() - start < 900); i++) {
        const message = `ping ${i}`
        sent.push(message)
        busy.write(frame(message))
        yield* Effect.sleep("25 millis")
      }
      expect(silentClosed.done).toBe(true)
      expect(busyClosed.done).toBe(false)
      // Closed by the timeout, not before it.
      expect(closedAfter).toBeGreaterThanOrEqual(280)
      const echoed = yield* within("busy echoes", () => busy.waitFor(frames(sent).length))
      expect(decode(echoed)).toEqual(sent)
      expect(silent.received().length).toBe(0)

      yield* eventually("the silent session's onClose", () => rec.byPort(silent)?.closes.length === 1)
      const record = rec.byPort(silent)!
      expect(record.errors.map(tagOf)).toEqual(["IdleTimeout"])
      expect(record.closes[0]!._tag).toBe("Failed")
      expect(tagOf(failure(record.closes[0]!))).toBe("IdleTimeout")
      expect(rec.byPort(busy)!.closes).toEqual([])

      // Once it stops sending, the busy client times out as well.
      yield* within("busy client closed", () => busy.ended, 5_000)
      yield* eventually("the busy session's onClose", () => rec.byPort(busy)?.closes.length === 1)
      expect(rec.byPort(busy)!.errors.map(tagOf)).toEqual(["IdleTimeout"])
    }))

  describe("a peer that never reads", () => {
    const REPLY = 64 * 1024
    const HIGH_WATER = 256 * 1024
    const LOW_WATER = 64 * 1024
    const MAX_OUTBOUND = 1024 * 1024
    const HEADER = 4

    it.live("replies stop being read at highWaterMark and the write timeout closes it", () =>
      Effect.gen(function* () {
        const rec = recorder()
        const big = new Uint8Array(REPLY).fill(7)

        let session: { readonly queuedBytes: number; readonly isOpen: boolean } | undefined
        let maxQueued = 0
        const sample = () => {
          if (session !== undefined) maxQueued = Math.max(maxQueued, session.queuedBytes)
        }
        let handled = 0
        const server = yield* Server.serve({
          pipeline: Pipeline.make({
            framer,
            codec: Packet.bytes,
            handler: Handler.sync((_: Uint8Array) => {
              handled++
              sample()
              return big
            })
          }),
          highWaterMark: HIGH_WATER,
          lowWaterMark: LOW_WATER,
          maxOutboundBytes: MAX_OUTBOUND,
          writeTimeout: "500 millis",
          closeTimeout: "200 millis",
          onOpen: (s) =>
            Effect.sync(() => {
              session = s
            }),
          onCron: { schedule: Schedule.spaced("5 millis"), run: () => Effect.sync(sample) },
          onError: rec.hooks.onError,
          onClose: rec.hooks.onClose
        })
        const p = yield* connect(server.port, { paused: true })
        yield* eventually("session opened", () => session !== undefined)
        const s = session!
        // One request per read: the next one is sent once the previous one was handled, or once
        // the session stopped reading (more than highWaterMark queued).
        let sent = 0
        for (; sent < 4000 && s.isOpen; sent++) {
          p.write(frame("r"))
          for (let i = 0; i < 400; i++) {
            yield* Effect.sleep("1 millis")
            if (handled > sent || s.queuedBytes > HIGH_WATER || !s.isOpen) break
          }
          sample()
        }
        yield* eventually("onClose", () => rec.records.size === 1 && [...rec.records.values()][0]!.closes.length === 1)
        const record = [...rec.records.values()][0]!
        expect(record.errors.map(tagOf)).toEqual(["WriteTimeout"])
        expect(tagOf(failure(record.closes[0]!))).toBe("WriteTimeout")
        // Backpressure engaged (the queue reached the mark) and held: never more than one reply past it.
        expect(maxQueued).toBeGreaterThan(HIGH_WATER - REPLY)
        expect(maxQueued).toBeLessThanOrEqual(HIGH_WATER + REPLY + HEADER)
        // The session stopped reading while the peer kept sending.
        expect(handled).toBeLessThan(sent)
        // A paused socket notices the close only once it reads again.
        p.socket.resume()
        yield* within("peer closed", () => p.closed, 5_000)
      }))

    it.live("server push from onOpen stops at maxOutboundBytes and the write timeout closes it", () =>
      Effect.gen(function* () {
        const rec = recorder()
        const big = new Uint8Array(REPLY).fill(9)
        let maxQueued = 0
        const failures: Array<string | undefined> = []
        let pushed = 0
        const server = yield* Server.serve({
          pipeline: echo,
          highWaterMark: HIGH_WATER,
          lowWaterMark: LOW_WATER,
          maxOutboundBytes: MAX_OUTBOUND,
          writeTimeout: "500 millis",
          closeTimeout: "200 millis",
          onOpen: (s) =>
            Effect.forkScoped(Effect.gen(function* () {
              for (let i = 0; i < 2000 && s.isOpen; i++) {
                const result = yield* Effect.result(s.send(big))
                if (Result.isSuccess(result)) pushed++
                else failures.push(result.failure._tag)
                yield* Effect.sleep("2 millis")
                maxQueued = Math.max(maxQueued, s.queuedBytes)
              }
            })).pipe(Effect.asVoid),
          onError: rec.hooks.onError,
          onClose: rec.hooks.onClose
        })
        const p = yield* connect(server.port, { paused: true })
        yield* eventually("onClose", () => rec.records.size === 1 && [...rec.records.values()][0]!.closes.length === 1)
        const record = [...rec.records.values()][0]!
        expect(record.errors.map(tagOf)).toEqual(["WriteTimeout"])
        expect(failures.length).toBeGreaterThan(0)
        expect(failures.every((tag) => tag === "OutboundOverflow" || tag === "ConnectionClosed")).toBe(true)
        expect(failures).toContain("OutboundOverflow")
        expect(maxQueued).toBeGreaterThan(MAX_OUTBOUND - REPLY)
        expect(maxQueued).toBeLessThanOrEqual(MAX_OUTBOUND + REPLY + HEADER)
        expect(pushed).toBeGreaterThan(0)
        p.socket.resume()
        yield* within("peer closed", () => p.closed, 5_000)
      }))
  })

  it.live("maxConnections: 3 of 5 connections are served, 2 are closed at once and counted", () =>
    Effect.gen(function* () {
      const server = yield* Server.serve({ pipeline: echo, maxConnections: 3 })
      const first: Array<Peer> = []
      for (let i = 0; i < 3; i++) {
        first.push(yield* connect(server.port))
        yield* eventually(`session ${i + 1} open`, () => server.sessions.size === i + 1)
      }
      const extra = [yield* connect(server.port), yield* connect(server.port)]
      // Closed by the server without having sent anything (the idle timeout is 5 minutes).
      for (const p of extra) yield* within("a rejected peer is closed", () => p.closed, 5_000)
      expect(extra.map((p) => p.received().length)).toEqual([0, 0])
      expect(server.rejected).toBe(2)
      expect(server.accepted).toBe(5)
      expect(server.sessions.size).toBe(3)
      for (const [i, p] of first.entries()) {
        const message = `still served ${i}`
        p.write(frame(message))
        expect(decode(yield* within("echo", () => p.waitFor(frame(message).length)))).toEqual([message])
      }
      // A slot freed by a client that leaves goes to the next one.
      first[0]!.end()
      yield* eventually("a slot freed", () => server.sessions.size === 2)
      const next = yield* connect(server.port)
      next.write(frame("next"))
      expect(decode(yield* within("echo", () => next.waitFor(frame("next").length)))).toEqual(["next"])
      expect(server.rejected).toBe(2)
      expect(server.sessions.size).toBe(3)
    }))

  it.live("graceful shutdown answers every request already received, then closes", () =>
    Effect.gen(function* () {
      const CLIENTS = 3
      const REQUESTS = 5
      const latch = yield* Latch.make(false)
      let started = 0
      let finished = 0
      const rec = recorder()
      const scope = yield* childScope
      const server = yield* Server.serve({
        pipeline: Pipeline.make({
          framer,
          codec: Packet.utf8,
          handler: Handler.effect((m: string) =>
            Effect.sync(() => started++).pipe(
              Effect.andThen(latch.await),
              Effect.andThen(Effect.sleep("1 millis")),
              Effect.map(() => {
                finished++
                return `done ${m}`
              })
            )
          ).pipe(Handler.concurrent(REQUESTS + 1))
        }),
        ...rec.hooks
      }).pipe(Scope.provide(scope))
      const peers = yield* Effect.forEach(range(CLIENTS), () => connect(server.port))
      const expected = peers.map((_, c) => range(REQUESTS).map((i) => `c${c} r${i}`))
      peers.forEach((p, c) => p.write(frames(expected[c]!)))
      yield* eventually("every handler started", () => started === CLIENTS * REQUESTS)
      const ended = peers.map((p) => flag(p.ended))

      const shutdown = yield* Effect.forkChild(Scope.close(scope, Exit.void))
      yield* eventually(
        "shutdown started",
        () => server.sessions.size === CLIENTS && [...server.sessions].every((s) => !s.isOpen)
      )
      // A request sent after shutdown started is not read.
      peers[0]!.write(frame("too late"))
      yield* Effect.sleep("50 millis")
      expect(started).toBe(CLIENTS * REQUESTS)
      expect(finished).toBe(0)
      expect(ended.some((e) => e.done)).toBe(false)

      yield* latch.open
      for (const [c, p] of peers.entries()) {
        yield* within(`client ${c} ended`, () => p.ended)
        // Everything was received before the server's FIN.
        expect(decode(p.received())).toEqual(expected[c]!.map((m) => `done ${m}`))
        yield* within(`client ${c} closed`, () => p.closed)
      }
      yield* Fiber.join(shutdown)
      expect(started).toBe(CLIENTS * REQUESTS)
      expect(finished).toBe(CLIENTS * REQUESTS)
      expect([...rec.records.values()].map((r) => r.closes.map((c) => c._tag))).toEqual(
        range(CLIENTS).map(() => ["Shutdown"])
      )
      expect([...rec.records.values()].every((r) => r.errors.length === 0 && r.opened === 1)).toBe(true)
    }))

  it.live("hooks run exactly once for each way a session ends", () =>
    Effect.gen(function* () {
      const rec = recorder()
      const small = Frame.lengthField({ maxFrameLength: 1024 })
      const pipeline = Pipeline.make({
        framer: small,
        codec: Packet.bytes,
        handler: Handler.sync((b: Uint8Array) => b)
      })
      const idleScope = yield* childScope
      const scope = yield* childScope
      const idleServer = yield* Server.serve({ pipeline, readIdleTimeout: "300 millis", ...rec.hooks }).pipe(
        Scope.provide(idleScope)
      )
      const server = yield* Server.serve({ pipeline, ...rec.hooks }).pipe(Scope.provide(scope))
      const closedHook = (p: Peer) => () => rec.byPort(p)?.closes.length === 1

      // The peer closes its side after its request was answered.
      const closer = yield* connect(server.port)
      closer.write(frame("bye"))
      yield* within("echo", () => closer.waitFor(frame("bye").length))
      closer.end()
      yield* within("closer closed", () => closer.closed)

      // A malformed frame: a header announcing more than maxFrameLength.
      const bad = yield* connect(server.port)
      bad.write(header(1_000_000))
      yield* within("bad peer closed", () => bad.closed)

      // The peer resets: it drops its socket with bytes it has not read.
      const resetter = yield* connect(server.port, { paused: true })
      resetter.write(frame("unread"))
      yield* eventually(
        "reply to the resetter written",
        () =>
          (rec.byPort(resetter) !== undefined) &&
          [...server.sessions].some((s) => s.id === rec.byPort(resetter)!.id && s.bytesOut > 0)
      )
      yield* Effect.sleep("50 millis")
      reset(resetter)

      // The peer sends nothing.
      const idle = yield* connect(idleServer.port)
      yield* within("idle peer closed", () => idle.closed)

      // The server shuts down.
      const stayer = yield* connect(server.port)
      stayer.write(frame("hi"))
      yield* within("echo", () => stayer.waitFor(frame("hi").length))
      for (const p of [closer, bad, resetter, idle]) yield* eventually("onClose", closedHook(p))
      yield* Scope.close(scope, Exit.void)
      yield* within("stayer closed", () => stayer.closed)
      yield* Scope.close(idleScope, Exit.void)

      // Every session has ended and both servers have stopped: no hook can run any more.
      const expected: Array<[string, Peer, string, Array<string>]> = [
        ["peer close", closer, "PeerClosed", []],
        ["malformed frame", bad, "Failed", ["FrameTooLarge"]],
        ["idle timeout", idle, "Failed", ["IdleTimeout"]],
        ["shutdown", stayer, "Shutdown", []],
        ["peer reset", resetter, "Failed", ["TransportError"]]
      ]
      // Deno may read a reset as a plain end of stream (see src/transport/deno.ts): then the session
      // ends as if the peer had closed, still once.
      const resetRecord = rec.byPort(resetter)
      if (Transport.runtime === "deno" && resetRecord?.closes[0]?._tag === "PeerClosed") {
        expected[expected.length - 1] = ["peer reset", resetter, "PeerClosed", []]
      }
      for (const [name, p, tag, errors] of expected) {
        const record = rec.byPort(p)
        expect({
          name,
          opened: record?.opened,
          closes: record?.closes.map((c) => c._tag),
          errors: record?.errors.map(tagOf)
        })
          .toEqual({ name, opened: 1, closes: [tag], errors })
        if (tag === "Failed") expect(tagOf(failure(record!.closes[0]!))).toBe(errors[0])
      }
      expect(rec.records.size).toBe(5)
    }))

  describe("a handler failure closes only its own connection", () => {
    class Boom extends Data.TaggedError("Boom")<{ readonly input: string }> {}
    const effectHandler = Handler.effect((line: string) =>
      line === "fail"
        ? Effect.fail(new Boom({ input: line }))
        : line === "fail later"
        ? Effect.flatMap(Effect.sleep("5 millis"), () => Effect.fail(new Boom({ input: line })))
        : line === "die"
        ? Effect.flatMap(Effect.sleep("5 millis"), () => Effect.die(new Error("kaboom")))
        : Effect.succeed(`echo ${line}`)
    )
    const syncHandler = Handler.sync((line: string) => {
      if (line === "throw") throw new Error("thrown")
      return `echo ${line}`
    })
    const cases = [
      { name: "a typed failure", handler: effectHandler, input: "fail", tag: "Boom" },
      { name: "a typed failure after suspending", handler: effectHandler, input: "fail later", tag: "Boom" },
      { name: "a defect", handler: effectHandler, input: "die", tag: "HandlerError" },
      { name: "an exception in a sync handler", handler: syncHandler, input: "throw", tag: "HandlerError" }
    ]
    for (const { handler, input, name, tag } of cases) {
      it.live(name, () =>
        Effect.gen(function* () {
          const rec = recorder()
          const server = yield* Server.serve({
            pipeline: Pipeline.make({ framer: lines, codec: Packet.utf8, handler }),
            ...rec.hooks
          })
          const victim = yield* connect(server.port)
          const bystander = yield* connect(server.port)
          bystander.write("before\n")
          yield* within("echo", () => bystander.waitFor("echo before\n".length))
          victim.write(`ok\n${input}\nnever answered\n`)
          yield* within("victim closed", () => victim.closed)
          expect(text(victim)).toBe("echo ok\n")
          for (let i = 0; i < 3; i++) bystander.write(`after ${i}\n`)
          const expected = "echo before\necho after 0\necho after 1\necho after 2\n"
          yield* within("echoes after the failure", () => bystander.waitFor(expected.length))
          expect(text(bystander)).toBe(expected)
          yield* eventually("victim's onClose", () => rec.byPort(victim)?.closes.length === 1)
          const record = rec.byPort(victim)!
          expect(record.errors.map(tagOf)).toEqual([tag])
          if (tag === "Boom") expect(record.errors[0]).toBeInstanceOf(Boom)
          expect(tagOf(failure(record.closes[0]!))).toBe(tag)
          expect(rec.byPort(bystander)!.closes).toEqual([])
        }))
    }

    it.live("an onOpen hook that throws, or fails, ends only its own session", () =>
      Effect.gen(function* () {
        const rec = recorder()
        let sessions = 0
        const server = yield* Server.serve({
          pipeline: Pipeline.make({ framer: lines, codec: Packet.utf8, handler: syncHandler }),
          ...rec.hooks,
          onOpen: (s: SessionLike) => {
            ++sessions
            // The second session's hook throws, as buggy user code would; the third one's fails.
            if (sessions === 2) throw new Error("onOpen bug")
            if (sessions === 3) return Effect.andThen(rec.hooks.onOpen(s), Effect.fail(new Error("onOpen failure")))
            return rec.hooks.onOpen(s)
          },
          closeTimeout: "200 millis"
        })
        const first = yield* connect(server.port)
        first.write("one\n")
        yield* within("first echo", () => first.waitFor("echo one\n".length))
        const second = yield* connect(server.port)
        yield* within("second closed", () => second.closed)
        const third = yield* connect(server.port)
        yield* within("third closed", () => third.closed)
        first.write("two\n")
        yield* within("first still served", () => first.waitFor("echo one\necho two\n".length))
        expect(text(first)).toBe("echo one\necho two\n")
        yield* eventually(
          "the failed sessions' onClose",
          () => [...rec.records.values()].filter((r) => r.closes.length === 1).length === 2
        )
        const failed = [...rec.records.values()].filter((r) => r.closes.length === 1)
        // The throw is a defect; the failure is the hook's error.
        const reasons = failed.map((r) => r.closes[0]!)
        const described = reasons.map((reason) =>
          reason._tag === "Defect"
            ? `Defect ${(reason.defect as Error).message}`
            : `${reason._tag} ${(failure(reason) as Error).message}`
        )
        expect(described.sort()).toEqual(["Defect onOpen bug", "Failed onOpen failure"])
      }))

    it.live("onError and onClose hooks that throw are logged, and the session's scope still closes", () =>
      Effect.gen(function* () {
        let released = 0
        let closes = 0
        const server = yield* Server.serve({
          pipeline: Pipeline.make({ framer: lines, codec: Packet.utf8, handler: syncHandler }),
          onOpen: () => Effect.acquireRelease(Effect.void, () => Effect.sync(() => void released++)),
          onError: () => {
            throw new Error("onError bug")
          },
          onClose: () => {
            closes++
            throw new Error("onClose bug")
          }
        })
        const victim = yield* connect(server.port)
        victim.write("throw\n")
        yield* within("victim closed", () => victim.closed)
        yield* eventually("the scope closed", () => released === 1)
        expect(closes).toBe(1)
        const next = yield* connect(server.port)
        next.write("still\n")
        yield* within("the server carries on", () => next.waitFor("echo still\n".length))
      }))

    it.live("Pipeline.catchTag turns the failures into replies and the connection carries on", () =>
      Effect.gen(function* () {
        const rec = recorder()
        const pipeline = Pipeline.make({ framer: lines, codec: Packet.utf8, handler: effectHandler }).pipe(
          Pipeline.catchTag("Boom", (e) => Effect.succeed(`error ${e.input}`)),
          Pipeline.catchTag("HandlerError", () => Effect.succeed("defect"))
        )
        const server = yield* Server.serve({ pipeline, ...rec.hooks })
        const p = yield* connect(server.port)
        p.write("fail\nfail later\ndie\nok\n")
        const expected = "error fail\nerror fail later\ndefect\necho ok\n"
        yield* within("replies", () => p.waitFor(expected.length))
        p.write("still here\n")
        yield* within("echo", () => p.waitFor(expected.length + "echo still here\n".length))
        expect(text(p)).toBe(expected + "echo still here\n")
        expect(flag(p.ended).done).toBe(false)
        const record = [...rec.records.values()][0]!
        expect(record.errors).toEqual([])
        expect(record.closes).toEqual([])
      }))
  })

  describe("bytes that break framing close the connection that sent them", () => {
    const small = Frame.lengthField({ maxFrameLength: 1024 })
    const handlers = {
      sync: Handler.sync((b: Uint8Array) => b),
      suspending: Handler.effect((b: Uint8Array) => Effect.as(Effect.sleep("2 millis"), b))
    }
    for (const [name, handler] of Object.entries(handlers)) {
      it.live(`replies to the complete requests before them are delivered (${name} handler)`, () =>
        Effect.gen(function* () {
          const rec = recorder()
          const server = yield* Server.serve({
            pipeline: Pipeline.make({ framer: small, codec: Packet.bytes, handler }),
            ...rec.hooks
          })
          const bad = yield* connect(server.port)
          const good = yield* connect(server.port)
          const requests = ["one", "two", "three"]
          bad.write(Bytes.concat([frames(requests), header(2000), Bytes.fromString("the rest is never read")]))
          yield* within("bad peer closed", () => bad.closed)
          expect(decode(bad.received())).toEqual(requests)
          yield* eventually("onClose", () => rec.byPort(bad)?.closes.length === 1)
          const error = rec.byPort(bad)!.errors[0] as { _tag: string; length: number; limit: number }
          expect(rec.byPort(bad)!.errors.length).toBe(1)
          expect({ tag: error._tag, length: error.length, limit: error.limit })
            .toEqual({ tag: "FrameTooLarge", length: 2004, limit: 1024 })
          good.write(frame("unaffected"))
          expect(decode(yield* within("echo", () => good.waitFor(frame("unaffected").length)))).toEqual(["unaffected"])
        }))
    }
  })

  it.live("onCron runs on its schedule while the session lives and stops when it ends", () =>
    Effect.gen(function* () {
      const ticks = new Map<string, number>()
      const server = yield* Server.serve({
        pipeline: echo,
        onCron: {
          schedule: Schedule.spaced("50 millis"),
          run: (s) => Effect.sync(() => ticks.set(s.id, (ticks.get(s.id) ?? 0) + 1))
        }
      })
      const start = Date.now()
      const a = yield* connect(server.port)
      const b = yield* connect(server.port)
      yield* eventually("2 sessions", () => server.sessions.size === 2)
      const [first, second] = [...server.sessions].map((s) => s.id)
      yield* eventually("5 ticks each", () => (ticks.get(first!) ?? 0) >= 5 && (ticks.get(second!) ?? 0) >= 5)
      // On its schedule: not much more often than every 50 ms.
      expect(ticks.get(first!)!).toBeLessThanOrEqual((Date.now() - start) / 50 + 2)
      a.end()
      yield* within("a closed", () => a.closed)
      yield* eventually("a's session gone", () => server.sessions.size === 1)
      const ended = [...server.sessions][0]!.id === first ? second! : first!
      const atEnd = ticks.get(ended)!
      const other = ticks.get(ended === first ? second! : first!)!
      yield* Effect.sleep("400 millis")
      expect(ticks.get(ended)).toBe(atEnd)
      // The other session's schedule goes on.
      expect(ticks.get(ended === first ? second! : first!)!).toBeGreaterThan(other + 2)
      expect(b.received().length).toBe(0)
    }))

  it.live("a failing onCron ends its session with Failed", () =>
    Effect.gen(function* () {
      const rec = recorder()
      let ticks = 0
      const server = yield* Server.serve({
        pipeline: echo,
        onCron: {
          schedule: Schedule.spaced("20 millis"),
          run: () => Effect.suspend(() => ++ticks === 3 ? Effect.fail(new Error("heartbeat lost")) : Effect.void)
        },
        onError: rec.hooks.onError,
        onClose: rec.hooks.onClose
      })
      const p = yield* connect(server.port)
      yield* within("closed", () => p.closed)
      yield* eventually("onClose", () => rec.byPort(p)?.closes.length === 1)
      const error = failure(rec.byPort(p)!.closes[0]!)
      expect(error).toBeInstanceOf(Error)
      expect((error as Error).message).toBe("heartbeat lost")
      expect(rec.byPort(p)!.errors).toEqual([error])
      yield* Effect.sleep("100 millis")
      expect(ticks).toBe(3)
    }))

  it.live("session.send from one session reaches another (broadcast)", () =>
    Effect.gen(function* () {
      const holder: { server?: Server.Server<string, void> } = {}
      const server = yield* Server.serve({
        pipeline: Pipeline.make({
          framer: lines,
          codec: Packet.utf8,
          handler: Handler.effect((line: string, context: Handler.Context<string, void>) =>
            Effect.as(
              Effect.forEach(
                holder.server!.sessions,
                (s) => s.id === context.id ? Effect.void : s.send(`${context.id} says ${line}`),
                { discard: true }
              ),
              `sent ${line}`
            )
          )
        })
      })
      holder.server = server
      const peers = yield* Effect.forEach(range(3), () => connect(server.port))
      yield* eventually("3 sessions", () => server.sessions.size === 3)
      const [a, b, c] = peers as [Peer, Peer, Peer]
      a.write("hello\n")
      yield* within("a's reply", () => a.waitFor("sent hello\n".length))
      for (const p of [b, c]) yield* within("broadcast", () => p.waitFor(1))
      yield* eventually("both received a full line", () => [b, c].every((p) => text(p).endsWith("\n")))
      expect(text(a)).toBe("sent hello\n")
      const from = text(b).split(" ")[0]!
      expect(from).toMatch(/^s-\d+$/)
      expect(text(b)).toBe(`${from} says hello\n`)
      expect(text(c)).toBe(`${from} says hello\n`)
      b.write("hi\n")
      yield* within("a received b's", () => a.waitFor("sent hello\n".length + 1))
      yield* eventually("a full line", () => text(a).endsWith("hi\n"))
      expect(text(a)).toMatch(/^sent hello\ns-\d+ says hi\n$/)
    }))
})

describe("Client", () => {
  const chat = Pipeline.make({
    framer: lines,
    codec: Packet.utf8,
    handler: Handler.syncMany((line: string) => line === "drop" ? [] : [`echo ${line}`])
  })

  it.live("reconnects after the server restarts on the same port", () =>
    Effect.gen(function* () {
      const firstScope = yield* childScope
      const first = yield* Server.serve({ pipeline: chat }).pipe(Scope.provide(firstScope))
      const port = first.port
      const client = yield* Client.make({
        port,
        framer: lines,
        codec: Packet.utf8,
        reconnect: Schedule.spaced("50 millis"),
        connectTimeout: "500 millis",
        requestTimeout: "5 seconds"
      })
      expect(yield* client.request("one")).toBe("echo one")
      // A call in flight when the server goes away.
      const inFlight = yield* Effect.forkChild(Effect.result(client.request("drop")))
      yield* eventually("call in flight", () => client.inFlight === 1)
      yield* Scope.close(firstScope, Exit.void)
      const dropped = yield* Fiber.join(inFlight)
      expect(Result.isFailure(dropped) && dropped.failure._tag).toBe("ConnectionClosed")
      yield* eventually("disconnected", () => !client.connected)
      // While no server listens, calls fail.
      const down = yield* Effect.result(client.request("two"))
      expect(Result.isFailure(down) && ["ConnectionClosed", "ConnectTimeout"].includes(down.failure._tag)).toBe(true)

      const secondScope = yield* childScope
      const second = yield* Server.serve({ pipeline: chat, port }).pipe(Scope.provide(secondScope))
      expect(second.port).toBe(port)
      let reply: Result.Result<string, Client.RequestError> = Result.fail(
        new Errors.ConnectionClosed({ remoteAddress: "", reason: "not tried" })
      )
      for (let i = 0; i < 50 && Result.isFailure(reply); i++) {
        reply = yield* Effect.result(client.request("three", { timeout: "1 second" }))
        if (Result.isFailure(reply)) yield* Effect.sleep("50 millis")
      }
      expect(reply).toEqual(Result.succeed("echo three"))
      expect(client.connected).toBe(true)
      expect(second.accepted).toBe(1)
      expect(yield* client.request("four")).toBe("echo four")
    }))

  it.live("a request without a reply fails with RequestTimeout; the client carries on", () =>
    Effect.gen(function* () {
      const server = yield* Server.serve({
        pipeline: Pipeline.make({
          framer: lines,
          codec: Packet.utf8,
          handler: Handler.effect((line: string) => {
            const [id, body] = line.split(":") as [string, string]
            return body === "hang" ? Effect.never : Effect.succeed(`${id}:echo ${body}`)
          }).pipe(Handler.concurrent(16, { ordered: false }))
        }),
        // Its handlers never finish: do not wait for them at shutdown.
        shutdownTimeout: "100 millis"
      })
      const client = yield* Client.make({
        port: server.port,
        framer: lines,
        codec: Packet.utf8,
        correlate: { request: (m) => m.split(":")[0], response: (m) => m.split(":")[0] }
      })
      const timedOut = yield* Effect.result(client.request("1:hang", { timeout: "200 millis" }))
      expect(Result.isFailure(timedOut) && timedOut.failure._tag).toBe("RequestTimeout")
      expect(client.inFlight).toBe(0)
      expect(yield* client.request("2:hi")).toBe("2:echo hi")
      expect(client.connected).toBe(true)
    }))

  it.live("calls in flight fail with ConnectionClosed when the server drops the connection", () =>
    Effect.gen(function* () {
      let hanging = 0
      const server = yield* Server.serve({
        pipeline: Pipeline.make({
          framer: lines,
          codec: Packet.utf8,
          handler: Handler.effect((line: string) => {
            const [id, body] = line.split(":") as [string, string]
            return body === "hang"
              ? Effect.andThen(Effect.sync(() => hanging++), Effect.never)
              : Effect.succeed(`${id}:echo ${body}`)
          }).pipe(Handler.concurrent(16, { ordered: false }))
        }),
        // Its handlers never finish: do not wait for them at shutdown.
        shutdownTimeout: "100 millis"
      })
      const client = yield* Client.make({
        port: server.port,
        framer: lines,
        codec: Packet.utf8,
        correlate: { request: (m) => m.split(":")[0], response: (m) => m.split(":")[0] }
      })
      expect(yield* client.request("1:hi")).toBe("1:echo hi")
      const calls = yield* Effect.forEach(
        range(3),
        (i) => Effect.forkChild(Effect.result(client.request(`${i + 2}:hang`)))
      )
      yield* eventually("3 handlers hanging", () => hanging === 3)
      expect(client.inFlight).toBe(3)
      for (const s of server.sessions) yield* s.close
      for (const call of calls) {
        const result = yield* Fiber.join(call)
        expect(Result.isFailure(result) && result.failure._tag).toBe("ConnectionClosed")
      }
      expect(client.inFlight).toBe(0)
      yield* eventually("disconnected", () => !client.connected)
      // Without `reconnect`, the client has stopped.
      const after = yield* Effect.result(client.request("9:hi"))
      expect(Result.isFailure(after) && after.failure._tag).toBe("ConnectionClosed")
    }))

  it.live("when its session fails, a client fails the calls in flight at once and later calls reach the next connection", () =>
    Effect.gen(function* () {
      // A raw server that answers "bad" with a line over the client's maxLength (the client's framing
      // fails) and never closes a connection itself: the client's socket then lingers for closeTimeout.
      const sockets: Array<net.Socket> = []
      const closedSockets = { count: 0 }
      const raw = net.createServer({ allowHalfOpen: true }, (socket) => {
        sockets.push(socket)
        socket.on("error", () => {})
        socket.on("close", () => closedSockets.count++)
        socket.on("data", (chunk) => socket.write(String(chunk).startsWith("bad") ? `${"x".repeat(64)}\n` : `ok\n`))
      })
      yield* Effect.acquireRelease(
        Effect.callback<void>((resume) => {
          raw.listen(0, "127.0.0.1", () => resume(Effect.void))
        }),
        () =>
          Effect.sync(() => {
            for (const socket of sockets) socket.destroy()
            raw.close()
          })
      )
      const port = (raw.address() as net.AddressInfo).port
      const client = yield* Client.make({
        port,
        framer: Frame.lines({ maxLength: 16 }),
        codec: Packet.utf8,
        reconnect: Schedule.spaced("50 millis"),
        closeTimeout: "1 second",
        connectTimeout: "5 seconds"
      })
      expect(yield* client.request("hello")).toBe("ok")
      const failed = yield* Effect.result(client.request("bad"))
      expect(Result.isFailure(failed) && failed.failure._tag).toBe("ConnectionClosed")
      // Failed before the old socket was closed.
      expect(closedSockets.count).toBe(0)
      // A call made now waits for the next connection (without spinning: timers keep firing).
      let ticks = 0
      const timer = setInterval(() => ticks++, 20)
      const next = yield* Effect.result(client.request("again")).pipe(
        Effect.ensuring(Effect.sync(() => clearInterval(timer)))
      )
      expect(next).toEqual(Result.succeed("ok"))
      expect(sockets.length).toBe(2)
      expect(ticks).toBeGreaterThan(0)
    }))
})
