/**
 * The chat example (examples/chat) through raw sockets on 127.0.0.1, as `nc` users would talk to it:
 * welcome and nicknames, rooms, /who, /quit, and the limits: line length, invalid UTF-8, the rate
 * limit, the heartbeat, and a peer that does not read.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { serve } from "../../examples/chat/app.ts"
import type { Options } from "../../examples/chat/app.ts"
import * as Resp from "../../examples/resp/app.ts"
import { Bytes } from "../../src/index.ts"
import { type Peer, peer } from "../util/peer.ts"

/** The complete lines a peer has received. */
const linesOf = (p: Peer): Array<string> => {
  const text = Bytes.toString(p.received())
  const lines = text.split("\n")
  lines.pop()
  return lines
}

/** Waits until the peer has received a line for which `match` holds; returns it. */
const line = (p: Peer, match: (line: string) => boolean, label: string, millis = 10_000) =>
  Effect.gen(function* () {
    for (let waited = 0; waited < millis; waited += 10) {
      const found = linesOf(p).find(match)
      if (found !== undefined) return found
      yield* Effect.sleep("10 millis")
    }
    const got = linesOf(p).slice(-20).map((l) => l.length > 80 ? `${l.slice(0, 80)}...` : l)
    return yield* Effect.die(new Error(`no line ${label} within ${millis} ms; the last lines: ${JSON.stringify(got)}`))
  })

const closed = (p: Peer, label: string, millis = 10_000) =>
  Effect.promise(() => p.closed).pipe(
    Effect.timeoutOrElse({ duration: millis, orElse: () => Effect.die(new Error(`${label}: not closed`)) })
  )

/** A chat server in the test's scope, and a way to connect members who have been welcomed. */
const chatServer = (options: Options = {}) =>
  Effect.gen(function* () {
    const { hub, server } = yield* serve({ port: 0, ...options })
    const join = Effect.gen(function* () {
      const p = yield* peer(server.port)
      const welcome = yield* line(p, (l) => l.startsWith("* welcome"), "welcome")
      const nick = /you are (\S+),/.exec(welcome)![1]!
      return { p, nick }
    })
    return { hub, server, join }
  })

describe("chat: the protocol", () => {
  it.live("a new connection is welcomed with a generated nickname in lobby, and the room hears of it", () =>
    Effect.gen(function* () {
      const { join } = yield* chatServer()
      const a = yield* join
      expect(a.nick).toMatch(/^guest-[0-9a-f]{4}$/)
      expect(linesOf(a.p)[0]).toBe(`* welcome to sluice chat: you are ${a.nick}, in room lobby (/help for commands)`)
      const b = yield* join
      expect(b.nick).not.toBe(a.nick)
      yield* line(a.p, (l) => l === `* ${b.nick} joined`, "b joined")
    }))

  it.live("a line goes to everyone else in the room, prefixed with the sender's nickname; not to the sender", () =>
    Effect.gen(function* () {
      const { join } = yield* chatServer()
      const a = yield* join
      const b = yield* join
      const c = yield* join
      a.p.write("hello, room\n")
      yield* line(b.p, (l) => l === `${a.nick}: hello, room`, "b hears a")
      yield* line(c.p, (l) => l === `${a.nick}: hello, room`, "c hears a")
      // b's own line after a's: a hears it, so a's line had been handled; a never got its own.
      b.p.write("hi\n")
      yield* line(a.p, (l) => l === `${b.nick}: hi`, "a hears b")
      expect(linesOf(a.p).filter((l) => l.includes("hello, room"))).toEqual([])
    }))

  it.live("/nick renames, unique among the connected; the room is told", () =>
    Effect.gen(function* () {
      const { join } = yield* chatServer()
      const a = yield* join
      const b = yield* join
      a.p.write("/nick ada\n")
      yield* line(a.p, (l) => l === "* you are now ada", "renamed")
      yield* line(b.p, (l) => l === `* ${a.nick} is now ada`, "b told")
      b.p.write("/nick ada\n")
      yield* line(b.p, (l) => l === "! nickname ada is taken", "taken")
      b.p.write("/nick not a name!\n")
      yield* line(b.p, (l) => l.startsWith("! a nickname is"), "invalid")
      b.p.write("said by b\n")
      yield* line(a.p, (l) => l === `${b.nick}: said by b`, "b kept its name")
      // A name is free again once its holder has left.
      a.p.write("/quit\n")
      yield* closed(a.p, "a")
      b.p.write("/nick ada\n")
      yield* line(b.p, (l) => l === "* you are now ada", "b takes the free name")
    }))

  it.live("/join moves to a room: lines stay in their room; /who lists the room", () =>
    Effect.gen(function* () {
      const { join } = yield* chatServer()
      const a = yield* join
      const b = yield* join
      const c = yield* join
      a.p.write("/join rust\n")
      yield* line(a.p, (l) => l === "* you are in rust, with 0 others", "a in rust")
      yield* line(b.p, (l) => l === `* ${a.nick} left for rust`, "lobby told")
      b.p.write("/join rust\n")
      yield* line(b.p, (l) => l === "* you are in rust, with 1 other", "b in rust")
      yield* line(a.p, (l) => l === `* ${b.nick} joined`, "a told")
      c.p.write("only lobby\n")
      b.p.write("only rust\n")
      yield* line(a.p, (l) => l === `${b.nick}: only rust`, "a hears b in rust")
      a.p.write("/who\n")
      const who = yield* line(a.p, (l) => l.startsWith("* in rust:"), "who")
      expect(who).toBe(`* in rust: ${[a.nick, b.nick].sort().join(", ")}`)
      c.p.write("/who\n")
      yield* line(c.p, (l) => l === `* in lobby: ${c.nick}`, "who in lobby")
      // By now c's "only lobby" was handled (c's /who came after it); nobody in rust heard it.
      expect(linesOf(a.p).some((l) => l.includes("only lobby"))).toBe(false)
      expect(linesOf(b.p).some((l) => l.includes("only lobby"))).toBe(false)
    }))

  it.live("/quit says goodbye, then closes; the room hears at once; unknown commands are refused", () =>
    Effect.gen(function* () {
      const { join, server } = yield* chatServer()
      const a = yield* join
      const b = yield* join
      a.p.write("/frobnicate\n")
      yield* line(a.p, (l) => l === "! unknown command /frobnicate (/help for commands)", "unknown")
      // The peer keeps its side open (as nc does): the room must not wait for it.
      a.p.write("/quit\nnever said\n")
      yield* line(a.p, (l) => l === `* bye, ${a.nick}`, "bye")
      yield* line(b.p, (l) => l === `* ${a.nick} left`, "b told")
      yield* closed(a.p, "a after /quit")
      expect(linesOf(a.p).at(-1)).toBe(`* bye, ${a.nick}`)
      expect(linesOf(b.p).some((l) => l.includes("never said"))).toBe(false)
      expect(server.sessions.size).toBe(1)
    }))
})

describe("chat: limits", () => {
  it.live("a line over the limit gets a clear last line, then the connection closes; others are untouched", () =>
    Effect.gen(function* () {
      const { join } = yield* chatServer({ maxLineBytes: 100 })
      const a = yield* join
      const b = yield* join
      a.p.write(`${"x".repeat(100)}\n`)
      yield* line(b.p, (l) => l === `${a.nick}: ${"x".repeat(100)}`, "a line of exactly the limit")
      a.p.write(`${"y".repeat(300)}\n`)
      yield* closed(a.p, "a")
      expect(linesOf(a.p).at(-1)).toBe("! line too long: at most 100 bytes; bye")
      yield* line(b.p, (l) => l === `* ${a.nick} left`, "b told")
      expect(linesOf(b.p).some((l) => l.includes("yyy"))).toBe(false)
      b.p.write("/who\n")
      yield* line(b.p, (l) => l === `* in lobby: ${b.nick}`, "b still served")
    }))

  it.live("invalid UTF-8 is refused, and the connection kept", () =>
    Effect.gen(function* () {
      const { join } = yield* chatServer()
      const a = yield* join
      const b = yield* join
      a.p.write(Uint8Array.of(0x68, 0x69, 0xc3, 0x28, 0x0a)) // "hi", a broken 2-byte sequence, LF
      yield* line(a.p, (l) => l === "! not UTF-8: line refused", "refused")
      a.p.write("caf\u00e9 ok\n")
      yield* line(b.p, (l) => l === `${a.nick}: caf\u00e9 ok`, "valid UTF-8 goes through")
      expect(linesOf(b.p).some((l) => l.startsWith(`${a.nick}: hi`))).toBe(false)
    }))

  it.live("more lines a second than the rate are refused; the connection is kept", () =>
    Effect.gen(function* () {
      const { join } = yield* chatServer({ rate: 5 })
      const a = yield* join
      const b = yield* join
      // 30 lines at once: the burst (10) goes through, the rest is refused, whatever the timing
      // (at most a line or two refill while they are handled).
      a.p.write(Array.from({ length: 30 }, (_, i) => `line ${i}\n`).join(""))
      yield* line(b.p, (l) => l === `${a.nick}: line 9`, "the burst")
      const refused = yield* Effect.gen(function* () {
        for (let i = 0; i < 500; i++) {
          const n = linesOf(a.p).filter((l) => l.startsWith("! slow down")).length
          const heard = linesOf(b.p).filter((l) => l.startsWith(`${a.nick}: line`)).length
          if (n + heard === 30) return n
          yield* Effect.sleep("10 millis")
        }
        return -1
      })
      expect(refused).toBeGreaterThanOrEqual(15)
      expect(refused).toBeLessThanOrEqual(20)
      expect(linesOf(a.p).find((l) => l.startsWith("! slow down"))).toBe(
        "! slow down: at most 5 lines a second; line dropped"
      )
      // Later, at a calm pace, lines go through again.
      yield* Effect.sleep("500 millis")
      a.p.write("calm\n")
      yield* line(b.p, (l) => l === `${a.nick}: calm`, "after the burst")
    }))

  it.live("the heartbeat drops a silent peer with a last line saying why; a talking peer stays", () =>
    Effect.gen(function* () {
      const { join } = yield* chatServer({ heartbeat: "100 millis", silence: "800 millis" })
      const quiet = yield* join
      const talker = yield* join
      // The talker speaks every 200 ms; the quiet one never does. Bounded: 40 rounds (8 s).
      const gone = { done: false }
      void quiet.p.closed.then(() => (gone.done = true))
      for (let i = 0; i < 40 && !gone.done; i++) {
        talker.p.write(`tick ${i}\n`)
        yield* Effect.sleep("200 millis")
      }
      yield* closed(quiet.p, "the quiet peer")
      expect(linesOf(quiet.p).at(-1)).toBe("! no word from you in 1 s; bye")
      yield* line(talker.p, (l) => l === `* ${quiet.nick} left (silent)`, "the room told")
      talker.p.write("/who\n")
      yield* line(talker.p, (l) => l === `* in lobby: ${talker.nick}`, "the talker stays")
    }))

  it.live("a peer that does not read is dropped when its queue passes the limit; the others go on", () =>
    Effect.gen(function* () {
      const { join, hub } = yield* chatServer({ maxOutboundBytes: 64 * 1024, rate: 1_000_000 })
      const sleeper = yield* join
      sleeper.p.socket.pause() // reads nothing from now on
      const reader = yield* join
      const speaker = yield* join
      // Up to 40 MB of broadcasts, 1 MB a round: more than the kernel's socket buffers hold, so the
      // sleeper's queue in the server grows; kept, it would grow without bound.
      const said = `${speaker.nick}: ${"z".repeat(1000)}\n`
      const round = `${"z".repeat(1000)}\n`.repeat(1000)
      let sent = 0
      for (let i = 0; i < 40 && hub.dropped === 0; i++) {
        speaker.p.write(round)
        sent += 1000
        // The reader keeps up: wait for this round before the next.
        yield* Effect.promise(() => reader.p.waitFor(sent * said.length, 20_000))
      }
      expect(hub.dropped).toBe(1)
      // The server let go of it (after closeTimeout at most): once the sleeper reads again, it finds
      // the end of its connection after what the kernel had buffered.
      sleeper.p.socket.resume()
      yield* closed(sleeper.p, "the sleeper", 20_000)
      yield* line(reader.p, (l) => l === `* ${sleeper.nick} left (not reading)`, "the room told")
      // The reader got every line the speaker said, whole and in order.
      const heard = linesOf(reader.p).filter((l) => l.startsWith(`${speaker.nick}: `))
      expect(heard.length).toBe(sent)
      expect(heard.every((l) => l === said.slice(0, -1))).toBe(true)
    }))
})

describe("chat: rooms shared through Redis pub/sub", () => {
  it.live("two chat servers on one Redis (here the RESP example server) form one chat", () =>
    Effect.gen(function* () {
      const redis = yield* Resp.serve({ port: 0 })
      const redisUrl = `redis://127.0.0.1:${redis.port}`
      const one = yield* chatServer({ redisUrl })
      const two = yield* chatServer({ redisUrl })
      const a = yield* one.join
      const b = yield* two.join
      const c = yield* two.join
      // Through Redis: a's line reaches the members of the other server; and the other way round.
      a.p.write("hello from one\n")
      yield* line(b.p, (l) => l === `${a.nick}: hello from one`, "b hears a across servers")
      yield* line(c.p, (l) => l === `${a.nick}: hello from one`, "c hears a across servers")
      b.p.write("hello from two\n")
      yield* line(a.p, (l) => l === `${b.nick}: hello from two`, "a hears b across servers")
      yield* line(c.p, (l) => l === `${b.nick}: hello from two`, "c hears b on its own server")
      // Rooms hold across servers too: a and b in rust, c stays in lobby.
      a.p.write("/join rust\n")
      yield* line(a.p, (l) => l.startsWith("* you are in rust"), "a in rust")
      b.p.write("/join rust\n")
      yield* line(a.p, (l) => l === `* ${b.nick} joined`, "a told b joined")
      b.p.write("rust only\n")
      yield* line(a.p, (l) => l === `${b.nick}: rust only`, "a hears b in rust")
      // c's lobby line, then c joining rust, go through Redis in that order (one publisher): once a
      // (on the other server, in rust) hears c join, c's lobby line has been delivered, or not, for good.
      c.p.write("lobby only\n/join rust\n")
      yield* line(a.p, (l) => l === `* ${c.nick} joined`, "a told c joined")
      expect(linesOf(a.p).filter((l) => l.includes("lobby only"))).toEqual([])
      expect(linesOf(b.p).filter((l) => l.includes("lobby only"))).toEqual([])
      a.p.write("/quit\n")
      yield* line(b.p, (l) => l === `* ${a.nick} left`, "b told a left")
      yield* line(c.p, (l) => l === `* ${a.nick} left`, "c told a left")
      // No one heard anything twice.
      expect(linesOf(b.p).filter((l) => l === `${a.nick}: hello from one`).length).toBe(1)
      expect(linesOf(c.p).filter((l) => l === `${b.nick}: hello from two`).length).toBe(1)
      // Each server published its own lines once: the server never re-delivers its own.
      expect(linesOf(c.p).filter((l) => l === `${a.nick}: hello from one`).length).toBe(1)
    }))
})
