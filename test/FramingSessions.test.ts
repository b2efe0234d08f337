/**
 * Framing behaviours a session shows over real sockets on 127.0.0.1: the deadline for a whole frame
 * (a slowloris peer is closed with a typed error and a last reply; slow but whole frames are not),
 * the outgoing limit of line framers and payloads that hold the delimiter, a framer that breaks its
 * contract (only its own session ends), and stateful framers whose parse result reaches the codec,
 * one state per connection. Peers are raw node:net sockets (test/util/peer.ts).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Ref } from "effect"
import * as Resp from "../examples/resp/framer.ts"
import { Bytes, Codec, Errors, Frame, Handler, Packet, Pipeline, Server } from "../src/index.ts"
import { FramerDefect } from "../src/internal/decoder.ts"
import type * as Session from "../src/Session.ts"
import { type Peer, peer } from "./util/peer.ts"
import { eventually, flag, within } from "./util/wait.ts"

const text = (p: Peer): string => Bytes.toString(p.received())

const lines = Frame.lines({ maxLength: 1024 })

describe("the frame deadline", () => {
  const echo = Pipeline.make({
    framer: lines,
    codec: Packet.utf8,
    handler: Handler.sync((line: string) => `echo ${line}`)
  }).pipe(
    Pipeline.onFrameError((error) => Effect.succeed(error._tag === "FrameTimeout" ? "408 too slow" : "400 bad"))
  )

  it.live("a peer that sends one byte every 100 ms is closed with FrameTimeout, after a last reply", () =>
    Effect.gen(function* () {
      const closes: Array<Session.CloseReason> = []
      const server = yield* Server.serve({
        pipeline: echo,
        frameTimeout: "1 second",
        // Only the frame deadline can act: the peer is never idle for long.
        readIdleTimeout: "60 seconds",
        onClose: (_s, reason) => Effect.sync(() => closes.push(reason))
      })
      const slow = yield* peer(server.port)
      slow.write("first\n")
      yield* within("the first line's echo", () => slow.waitFor("echo first\n".length))
      // Up to 100 bytes, one per 100 ms (10 s): an implementation without a frame deadline lets the
      // loop run out, since every byte keeps the idle timer happy.
      const closed = flag(slow.closed)
      let sent = 0
      for (; sent < 100 && !closed.done; sent++) {
        slow.write("a")
        yield* Effect.sleep("100 millis")
      }
      yield* within("the close", () => slow.closed)
      expect(sent).toBeLessThan(100)
      expect(text(slow)).toBe("echo first\n408 too slow\n")
      yield* eventually("onClose", () => closes.length === 1)
      const reason = closes[0]!
      expect(reason._tag).toBe("Failed")
      const error = reason._tag === "Failed" ? reason.error : undefined
      expect(error).toBeInstanceOf(Errors.FrameTimeout)
      expect((error as Errors.FrameTimeout).timeoutMillis).toBe(1000)
      expect((error as Errors.FrameTimeout).received).toBeGreaterThan(0)
      // "first\n" was consumed before the slow frame began.
      expect((error as Errors.FrameTimeout).offset).toBe(6)
    }))

  it.live("slow but whole frames, and silence between them, are not cut: the deadline runs from a frame's first byte", () =>
    Effect.gen(function* () {
      const server = yield* Server.serve({ pipeline: echo, frameTimeout: "1 second", readIdleTimeout: "60 seconds" })
      const p = yield* peer(server.port)
      // 2.4 s in all, more than twice the deadline; each line arrives in one write. A deadline counted
      // from the connection's start, or from the last complete frame, would close this peer.
      let expected = ""
      for (let i = 0; i < 6; i++) {
        p.write(`line ${i}\n`)
        expected += `echo line ${i}\n`
        yield* within(`echo ${i}`, () => p.waitFor(Bytes.fromString(expected).length))
        yield* Effect.sleep("400 millis")
      }
      expect(text(p)).toBe(expected)
      expect(flag(p.closed).done).toBe(false)
      p.write("last\n")
      yield* within("the last echo", () => p.waitFor(Bytes.fromString(expected + "echo last\n").length))
      expect(text(p)).toBe(expected + "echo last\n")
    }))
})

describe("line framers' outgoing side", () => {
  it.live("a 1020-character line with its sender's name prefixed is broadcast, not dropped", () =>
    Effect.gen(function* () {
      // maxLength bounds what peers send (1024); what the server sends is bounded by
      // maxOutgoingLength (16 MiB by default). With one limit for both, the prefixed line fails to
      // encode and the other peer never sees it.
      const sessions = new Set<Session.Session<string, { readonly name: string }>>()
      const server = yield* Server.serve({
        pipeline: Pipeline.make({
          framer: lines,
          codec: Packet.utf8,
          handler: Handler.effect((line: string, self: Session.Session<string, { readonly name: string }>) =>
            Effect.gen(function* () {
              for (const other of sessions) {
                if (other !== self) yield* other.send(`${self.state.name}: ${line}`)
              }
              return "sent"
            })
          )
        }),
        onOpen: (s: Session.Session<string, { readonly name: string } | undefined>) =>
          Effect.sync(() => {
            const state = { name: `guest-${sessions.size + 1}-with-a-long-name` }
            sessions.add(s as Session.Session<string, { readonly name: string }>)
            return state
          }),
        onClose: (s) => Effect.sync(() => sessions.delete(s as Session.Session<string, { readonly name: string }>))
      })
      const alice = yield* peer(server.port)
      yield* eventually("alice's session", () => sessions.size === 1)
      const bob = yield* peer(server.port)
      yield* eventually("bob's session", () => sessions.size === 2)
      const line = "x".repeat(1020)
      alice.write(`${line}\n`)
      yield* within("alice's ack", () => alice.waitFor("sent\n".length))
      const expected = `guest-1-with-a-long-name: ${line}\n`
      yield* within("bob's copy", () => bob.waitFor(expected.length))
      expect(text(bob)).toBe(expected)
      expect(text(alice)).toBe("sent\n")
    }))

  it.live("a reply that holds the delimiter is a typed error; the peer never sees it split into two lines", () =>
    Effect.gen(function* () {
      const closes: Array<Session.CloseReason> = []
      const server = yield* Server.serve({
        pipeline: Pipeline.make({
          framer: lines,
          codec: Packet.utf8,
          handler: Handler.sync((line: string) => line.replace("|", "\n"))
        }),
        onClose: (_s, reason) => Effect.sync(() => closes.push(reason))
      })
      const p = yield* peer(server.port)
      p.write("ok\na|b\nnever\n")
      yield* within("the close", () => p.closed)
      // The first reply went out; the second could not be framed, so nothing of it (and nothing
      // after it) was written: "a" and "b" as two lines would be two messages the server never meant.
      expect(text(p)).toBe("ok\n")
      yield* eventually("onClose", () => closes.length === 1)
      const reason = closes[0]!
      const error = reason._tag === "Failed" ? reason.error : undefined
      expect(error).toBeInstanceOf(Errors.MalformedFrame)
      expect((error as Errors.MalformedFrame).reason).toBe("DelimiterInPayload")
    }))

  it.live("send of a payload that holds the delimiter fails with a typed error, and the session goes on", () =>
    Effect.gen(function* () {
      const server = yield* Server.serve({
        pipeline: Pipeline.make({
          framer: lines,
          codec: Packet.utf8,
          handler: Handler.effect((line: string, session: Session.Session<string, void>) =>
            Effect.gen(function* () {
              const sent = yield* Effect.result(session.send(`${line}\ninjected`))
              return sent._tag === "Failure" ? `refused ${sent.failure._tag}` : "sent"
            })
          )
        })
      })
      const p = yield* peer(server.port)
      p.write("one\ntwo\n")
      const expected = "refused MalformedFrame\nrefused MalformedFrame\n"
      yield* within("both answers", () => p.waitFor(expected.length))
      expect(text(p)).toBe(expected)
      expect(flag(p.closed).done).toBe(false)
    }))
})

describe("a framer that breaks its contract", () => {
  const handlers = {
    "sync": Handler.sync((line: string) => `echo ${line}`),
    // The reply to "fine" is still running in a fiber when the defect is met: it must go out first.
    "concurrent(4)": Handler.concurrent(
      Handler.effect((line: string) => Effect.as(Effect.sleep("50 millis"), `echo ${line}`)),
      4
    )
  }
  for (const [mode, handler] of Object.entries(handlers)) {
    it.live(`${mode}: ends its own session with a Defect, after the replies before it; the server goes on`, () =>
      Effect.gen(function* () {
        // Lines, except that a line starting with "!" makes `read` throw: a bug in the framer.
        const buggy: Frame.Framer = {
          ...lines,
          name: "buggy",
          read: (buf, start, end, cursor) => {
            if (buf[start] === 0x21) throw new Error("unexpected '!'")
            return lines.read(buf, start, end, cursor)
          }
        }
        const closes: Array<Session.CloseReason> = []
        const server = yield* Server.serve({
          pipeline: Pipeline.make({
            framer: buggy,
            codec: Packet.utf8,
            handler
          }),
          onClose: (_s, reason) => Effect.sync(() => closes.push(reason))
        })
        const good = yield* peer(server.port)
        const bad = yield* peer(server.port)
        good.write("one\n")
        yield* within("good's echo", () => good.waitFor("echo one\n".length))
        bad.write("fine\n!boom\n")
        yield* within("bad's close", () => bad.closed)
        expect(text(bad)).toBe("echo fine\n")
        yield* eventually("bad's onClose", () => closes.length === 1)
        const reason = closes[0]!
        expect(reason._tag).toBe("Defect")
        const defect = reason._tag === "Defect" ? reason.defect : undefined
        expect(defect).toBeInstanceOf(FramerDefect)
        expect((defect as Error).message).toBe(`framer "buggy" broke its contract: read threw: unexpected '!'`)
        // The server is still serving: the other session, and a new one.
        good.write("two\n")
        yield* within("good's second echo", () => good.waitFor("echo one\necho two\n".length))
        const late = yield* peer(server.port)
        late.write("three\n")
        yield* within("a new session's echo", () => late.waitFor("echo three\n".length))
        expect(text(late)).toBe("echo three\n")
        expect(closes.length).toBe(1)
      }))
  }
})

describe("stateful framers over sessions", () => {
  it.live("one framer state per connection, and the codec gets the parse result, not the bytes to parse again", () =>
    Effect.gen(function* () {
      const framer = Resp.commands()
      const reparsed = yield* Ref.make(0)
      // The codec reads the arguments out of the frame by the framer's positions. `decode` (a frame
      // without a parse result) counts: the engine must always hand the parse result over.
      const codec = Codec.makeUnsafe<Uint8Array, Array<string>, string, Errors.PacketDecodeError, never>({
        name: "resp-args",
        decode: () => {
          Effect.runSync(Ref.update(reparsed, (n) => n + 1))
          return []
        },
        decodeFrame: (frame, parsed) => Resp.argumentsOf(frame, parsed as Resp.Command).map(Bytes.toString),
        encode: (reply) => Bytes.fromString(`+${reply}\r\n`)
      })
      const server = yield* Server.serve({
        pipeline: Pipeline.make({ framer, codec, handler: Handler.sync((args: Array<string>) => args.join(" ")) })
      })
      const a = yield* peer(server.port)
      const b = yield* peer(server.port)
      const wire = (args: Array<string>) =>
        Bytes.fromString(`*${args.length}\r\n${args.map((x) => `$${Bytes.fromString(x).length}\r\n${x}\r\n`).join("")}`)
      const inputA = Bytes.concat([wire(["SET", "alpha", "1"]), wire(["GET", "alpha"])])
      const inputB = Bytes.concat([wire(["PING"]), wire(["ECHO", "bravo charlie"])])
      // Byte by byte, alternating: a framer whose state were shared between connections would mix
      // the two commands in progress.
      for (let i = 0; i < Math.max(inputA.length, inputB.length); i++) {
        if (i < inputA.length) a.write(inputA.subarray(i, i + 1))
        if (i < inputB.length) b.write(inputB.subarray(i, i + 1))
        if (i % 8 === 0) yield* Effect.sleep("1 millis")
      }
      const expectedA = "+SET alpha 1\r\n+GET alpha\r\n"
      const expectedB = "+PING\r\n+ECHO bravo charlie\r\n"
      yield* within("a's replies", () => a.waitFor(expectedA.length))
      yield* within("b's replies", () => b.waitFor(expectedB.length))
      expect(text(a)).toBe(expectedA)
      expect(text(b)).toBe(expectedB)
      expect(yield* Ref.get(reparsed)).toBe(0)
    }))
})
