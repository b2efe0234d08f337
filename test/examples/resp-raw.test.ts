/**
 * The RESP example over raw sockets (test/util/peer.ts), byte for byte: inline commands as `nc`
 * sends them, pipelining, RESP3 after HELLO 3, subscribed mode, protocol errors (the reply, then the
 * close), QUIT, and the slow-subscriber policy. The expected bytes are redis-server 7.0's (the
 * interop suite checks them against a real one).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import fc from "fast-check"
import { serve } from "../../examples/resp/app.ts"
import { connectPeer, type Peer, peer } from "../util/peer.ts"

const text = (p: Peer): string => Buffer.from(p.received()).toString("latin1")

/** Waits until the peer has received exactly `expected` (failing on more, or after 10 s). */
const expectReply = (p: Peer, expected: string) =>
  Effect.gen(function* () {
    const bytes = Buffer.from(expected, "latin1")
    yield* Effect.promise(() => p.waitFor(bytes.length))
    expect(text(p)).toBe(expected)
  })

/** Waits for the peer's socket to close, failing after 10 s. */
const closed = (p: Peer) =>
  Effect.promise(() =>
    Promise.race([
      p.closed.then(() => true),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 10_000))
    ])
  )

/** A multibulk command, as clients send them. */
const command = (...args: Array<string>): string =>
  `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a, "latin1")}\r\n${a}\r\n`).join("")}`

describe("RESP server over raw sockets", () => {
  it.live("inline commands as nc or telnet send them: words, quotes, escapes, blank lines", () =>
    Effect.gen(function* () {
      const resp = yield* serve({ port: 0 })
      const p = yield* peer(resp.port)
      p.write("PING\r\nSET greeting \"hello world\\n\"\r\n\r\n  GET   greeting \t\r\nECHO 'it\\'s'\nINCR n\r\n")
      // The blank line is no command at all: no reply for it.
      yield* expectReply(p, "+PONG\r\n+OK\r\n$12\r\nhello world\n\r\n$4\r\nit's\r\n:1\r\n")
    }))

  it.live("pipelined commands in one write are answered in order, in one stream", () =>
    Effect.gen(function* () {
      const resp = yield* serve({ port: 0 })
      const p = yield* peer(resp.port)
      const script = [
        command("SET", "a", "1"),
        command("INCRBY", "a", "41"),
        command("GET", "a"),
        command("LPUSH", "a", "x"),
        command("GET", "missing"),
        command("MGET", "a", "missing"),
        "*0\r\n",
        command("DEL", "a", "missing")
      ].join("")
      p.write(script)
      yield* expectReply(
        p,
        "+OK\r\n:42\r\n$2\r\n42\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n" +
          "$-1\r\n*2\r\n$2\r\n42\r\n$-1\r\n:1\r\n"
      )
    }))

  it.live("the same pipelined script gives the same bytes however it is split into writes", () =>
    Effect.gen(function* () {
      const resp = yield* serve({ port: 0 })
      const script = Buffer.from(
        [
          command("SET", "k", "v\r\nwith\x00bytes"),
          "GET k\r\n",
          command("RPUSH", "l", "a", "b", "c"),
          command("LRANGE", "l", "0", "-1"),
          'ECHO "x y"\r\n',
          command("INCR", "n"),
          command("NOSUCH", "arg"),
          command("DEL", "k", "l", "n")
        ].join(""),
        "latin1"
      )
      const run = async (cuts: ReadonlyArray<number>, length: number): Promise<string> => {
        const p = await connectPeer(resp.port)
        try {
          let at = 0
          for (const cut of [...cuts, script.length]) {
            p.write(script.subarray(at, cut))
            at = cut
            // A pause between writes, so that the server reads them separately.
            await new Promise((resolve) => setTimeout(resolve, 1))
          }
          // The whole reply of the unsplit script (or, for that run itself, whatever comes in a second).
          await (length > 0 ? p.waitFor(length) : new Promise((resolve) => setTimeout(resolve, 1000)))
          return text(p)
        } finally {
          p.destroy()
        }
      }
      const expected = yield* Effect.promise(() => run([], 0))
      expect(expected).toContain("-ERR unknown command 'NOSUCH'")
      yield* Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(
            fc.uniqueArray(fc.integer({ min: 1, max: script.length - 1 }), { maxLength: 12 }),
            async (cuts) => {
              expect(await run([...cuts].sort((a, b) => a - b), expected.length)).toBe(expected)
            }
          ),
          { numRuns: 25 }
        )
      )
    }))

  it.live("stored values are copies: they survive later reads and pin no read buffer", () =>
    Effect.gen(function* () {
      const resp = yield* serve({ port: 0 })
      const p = yield* peer(resp.port)
      // 100 KiB of varied bytes, written 1000 bytes at a time (a frame assembled across reads), and a
      // 3-byte value in the same write as 64 KiB of others.
      const value = Buffer.from(Array.from({ length: 100 * 1024 }, (_, i) => (i * 7 + (i >> 8)) & 0xff))
      const head = Buffer.from(`*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$${value.length}\r\n`)
      const set = Buffer.concat([head, value, Buffer.from("\r\n")])
      for (let at = 0; at < set.length; at += 1000) {
        p.write(set.subarray(at, at + 1000))
        yield* Effect.sleep("1 millis")
      }
      p.write(command("SET", "small", "abc") + command("SET", "filler", "z".repeat(64 * 1024)))
      yield* expectReply(p, "+OK\r\n".repeat(3))
      const db = resp.shared.store.dbs[0]!
      const small = db.keys.get("small") as Uint8Array
      // A view would keep the whole read it came in alive, over 64 KiB here (and on Node, Buffer.slice
      // makes views). A small copy may share a 16 KiB slab with other small copies (Bytes.copy).
      expect(Buffer.from(small).toString()).toBe("abc")
      expect(small.buffer.byteLength).toBeLessThanOrEqual(16 * 1024)
      const big = db.keys.get("big") as Uint8Array
      expect([big.byteOffset, big.buffer.byteLength]).toEqual([0, value.length])
      p.write("GET big\r\n")
      yield* expectReply(p, "+OK\r\n".repeat(3) + `$${value.length}\r\n${value.toString("latin1")}\r\n`)
    }))

  it.live("a protocol error is answered with Redis's text after the replies before it, then the connection closes", () =>
    Effect.gen(function* () {
      const resp = yield* serve({ port: 0 })
      const cases: Array<[string, string]> = [
        ["PING\r\n*1\r\nX\r\n", "+PONG\r\n-ERR Protocol error: expected '$', got 'X'\r\n"],
        ["*1\r\n$-1\r\n", "-ERR Protocol error: invalid bulk length\r\n"],
        ["*abc\r\n", "-ERR Protocol error: invalid multibulk length\r\n"],
        ['SET a "unclosed\r\n', "-ERR Protocol error: unbalanced quotes in request\r\n"],
        ["x".repeat(70_000), "-ERR Protocol error: too big inline request\r\n"]
      ]
      for (const [script, reply] of cases) {
        const p = yield* peer(resp.port)
        p.write(script)
        yield* expectReply(p, reply)
        // A server that kept the connection open would leave this waiting until it gives up.
        expect(yield* closed(p)).toBe(true)
      }
      // The server itself goes on.
      const p = yield* peer(resp.port)
      p.write("PING\r\n")
      yield* expectReply(p, "+PONG\r\n")
    }))

  it.live("QUIT answers +OK and closes; an HTTP request is dropped unanswered, as Redis drops it", () =>
    Effect.gen(function* () {
      const resp = yield* serve({ port: 0 })
      const quit = yield* peer(resp.port)
      quit.write("QUIT\r\nPING\r\n")
      yield* expectReply(quit, "+OK\r\n")
      expect(yield* closed(quit)).toBe(true)
      expect(text(quit)).toBe("+OK\r\n")
      const http = yield* peer(resp.port)
      http.write("POST / HTTP/1.1\r\nHost: localhost\r\n\r\n")
      expect(yield* closed(http)).toBe(true)
      expect(text(http)).toBe("")
    }))

  it.live("HELLO 3 switches the connection to RESP3: maps, `_` nulls, `>` pushes; HELLO 2 back", () =>
    Effect.gen(function* () {
      const resp = yield* serve({ port: 0 })
      const p = yield* peer(resp.port)
      p.write("HELLO 3\r\n")
      const hello = "%7\r\n$6\r\nserver\r\n$6\r\nsluice\r\n$7\r\nversion\r\n$5\r\n0.1.0\r\n$5\r\nproto\r\n:3\r\n" +
        "$2\r\nid\r\n:1\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n"
      yield* expectReply(p, hello)
      p.write("GET nothing\r\nSUBSCRIBE ch\r\nGET nothing\r\nPUBLISH ch hi\r\nHELLO 2\r\nGET nothing\r\n")
      yield* expectReply(
        p,
        hello + "_\r\n>3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n_\r\n" +
          // Published to itself: the message comes before PUBLISH's own reply, as in Redis.
          ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n:1\r\n" +
          hello.replace("%7", "*14").replace(":3", ":2") +
          // Back in RESP2 and still subscribed: subscribed mode applies again.
          "-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in " +
          "this context\r\n"
      )
    }))

  it.live("RESP2 subscribed mode: only (P)(UN)SUBSCRIBE, PING, QUIT, RESET; messages from another connection", () =>
    Effect.gen(function* () {
      const resp = yield* serve({ port: 0 })
      const subscriber = yield* peer(resp.port)
      const publisher = yield* peer(resp.port)
      subscriber.write("SUBSCRIBE a b\r\n")
      const subscribed = "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n"
      yield* expectReply(subscriber, subscribed)
      publisher.write("PUBLISH a one\r\nPUBLISH c none\r\nPUBLISH b two\r\n")
      yield* expectReply(publisher, ":1\r\n:0\r\n:1\r\n")
      subscriber.write("SET x 1\r\nPING\r\nPING hi\r\nUNSUBSCRIBE\r\nGET x\r\n")
      yield* expectReply(
        subscriber,
        subscribed +
          "*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$3\r\none\r\n*3\r\n$7\r\nmessage\r\n$1\r\nb\r\n$3\r\ntwo\r\n" +
          "-ERR Can't execute 'set': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in " +
          "this context\r\n" +
          "*2\r\n$4\r\npong\r\n$0\r\n\r\n*2\r\n$4\r\npong\r\n$2\r\nhi\r\n" +
          "*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:0\r\n" +
          // Out of subscribed mode: GET runs again.
          "$-1\r\n"
      )
    }))

  it.live("a subscriber that stops reading is dropped once maxOutboundBytes wait for it; the others go on", () =>
    Effect.gen(function* () {
      const limit = 256 * 1024
      const resp = yield* serve({ port: 0, maxOutboundBytes: limit, highWaterMark: 64 * 1024 })
      // `paused`: this peer never reads, so what the server sends it piles up.
      const slow = yield* peer(resp.port, { paused: true })
      const fast = yield* peer(resp.port)
      const publisher = yield* peer(resp.port)
      slow.write("SUBSCRIBE news\r\n")
      fast.write("SUBSCRIBE news\r\n")
      const subscribed = "*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n"
      yield* expectReply(fast, subscribed)
      const subscribers = () => [...resp.shared.conns.values()].filter((c) => c.channels.has("news"))
      for (let i = 0; subscribers().length < 2; i++) {
        if (i > 2000) throw new Error("the slow subscriber never subscribed")
        yield* Effect.sleep("5 millis")
      }
      const remotePort = (c: typeof subscribers extends () => Array<infer C> ? C : never) =>
        c.session.remoteAddress._tag === "Tcp" ? c.session.remoteAddress.port : -1
      const slowConn = subscribers().find((c) => remotePort(c) === slow.socket.localPort)!
      expect(slowConn).toBeDefined()
      // 64 KiB messages: up to 400 of them (25 MiB, more than the kernel's socket buffers hold), all
      // of which would be queued for the slow peer without the limit.
      const payload = "x".repeat(64 * 1024)
      const counts: Array<number> = []
      let maxQueued = 0
      for (let i = 0; i < 400; i++) {
        publisher.write(command("PUBLISH", "news", payload))
        const before = publisher.received().length
        yield* Effect.promise(() => publisher.waitFor(before + 4))
        maxQueued = Math.max(maxQueued, slowConn.session.queuedBytes)
        const replies = text(publisher).split("\r\n").filter((line) => line.startsWith(":"))
        counts.push(Number(replies[replies.length - 1]!.slice(1)))
        // Keep the fast subscriber reading.
        if (counts[counts.length - 1] === 1 && counts.length > 8) break
      }
      // Both received the first messages; then the slow one was dropped and counts fell to 1.
      expect(counts[0]).toBe(2)
      expect(counts[counts.length - 1]).toBe(1)
      expect(slowConn.channels.size).toBe(0)
      // Never much more than the limit was held for it (one message past it at most).
      expect(maxQueued).toBeLessThanOrEqual(limit + payload.length + 1024)
      // Its connection closes; the fast subscriber got every message.
      slow.socket.resume()
      expect(yield* closed(slow)).toBe(true)
      const fastMessages = counts.length
      const message = `*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$${payload.length}\r\n${payload}\r\n`
      yield* Effect.promise(() => fast.waitFor(subscribed.length + fastMessages * message.length))
      expect(text(fast).split(message).length - 1).toBe(fastMessages)
    }))
})
