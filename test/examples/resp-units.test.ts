/**
 * The RESP example's parts without a client library: the command framer (any split of the input,
 * what it examines, Redis's protocol errors), inline splitting, glob matching, 64-bit integers,
 * the reply encoder, and expiry (lazy and active) under `TestClock`.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import fc from "fast-check"
import { Bytes, Frame } from "../../src/index.ts"
import { serve } from "../../examples/resp/app.ts"
import { argumentsOf, type Command, commands, type Examined } from "../../examples/resp/framer.ts"
import { stringMatch } from "../../examples/resp/glob.ts"
import { parseInt64, parseSmall } from "../../examples/resp/int64.ts"
import { encode, ErrorReply, RESP2, RESP3, Status } from "../../examples/resp/reply.ts"
import * as Store from "../../examples/resp/store.ts"
import { peer } from "../util/peer.ts"

const latin1 = (bytes: Uint8Array): string => Buffer.from(bytes).toString("latin1")
const bytes = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, "latin1"))

/** Decodes chunks with the command framer: each command's arguments (copied), and the error if any. */
const decodeCommands = (chunks: ReadonlyArray<Uint8Array>, examined?: Examined) => {
  const decoder = Frame.decoder(commands({ examined }))
  const found: Array<Array<string>> = []
  for (const chunk of chunks) {
    decoder.feed(chunk)
    for (let frame = decoder.next(); frame !== undefined; frame = decoder.next()) {
      found.push(argumentsOf(frame, decoder.value as Command).map(latin1))
    }
    if (decoder.error !== undefined) break
  }
  return { commands: found, error: decoder.error, buffered: decoder.buffered }
}

const multibulk = (args: ReadonlyArray<Uint8Array>): Uint8Array =>
  Bytes.concat([
    bytes(`*${args.length}\r\n`),
    ...args.flatMap((arg) => [bytes(`$${arg.length}\r\n`), arg, bytes("\r\n")])
  ])

const splitAt = (data: Uint8Array, cuts: ReadonlyArray<number>): Array<Uint8Array> => {
  const sorted = [...new Set(cuts)].sort((a, b) => a - b)
  const chunks: Array<Uint8Array> = []
  let at = 0
  for (const cut of [...sorted, data.length]) {
    chunks.push(data.slice(at, cut))
    at = cut
  }
  return chunks
}

describe("the command framer", () => {
  const word = fc.stringMatching(/^[a-z0-9:_-]{1,8}$/)
  const script = fc.array(
    fc.oneof(
      fc.array(fc.uint8Array({ maxLength: 40 }), { minLength: 1, maxLength: 5 }).map((args) => ({
        args: args.map(latin1),
        bytes: multibulk(args)
      })),
      fc.array(word, { minLength: 1, maxLength: 4 }).map((words) => ({
        args: words,
        bytes: bytes(`${words.join("  ")}\r\n`)
      }))
    ),
    { minLength: 1, maxLength: 8 }
  )

  it("any split of pipelined commands gives the same arguments, and no byte is examined twice", () => {
    fc.assert(
      fc.property(script, fc.array(fc.nat(), { maxLength: 20 }), (commands, cuts) => {
        const data = Bytes.concat(commands.map((c) => c.bytes))
        const examined = { bytes: 0 }
        const result = decodeCommands(splitAt(data, cuts.map((c) => c % (data.length + 1))), examined)
        expect(result.error).toBeUndefined()
        expect(result.commands).toEqual(commands.map((c) => c.args))
        expect(result.buffered).toBe(0)
        // Header lines are scanned once however the input is split; bulk bytes are never scanned.
        expect(examined.bytes).toBeLessThanOrEqual(data.length)
      }),
      { numRuns: 300 }
    )
  })

  it("a bulk string's bytes are asked for, not scanned: 1 MiB fed a byte at a time examines its headers only", () => {
    const big = new Uint8Array(1024 * 1024).fill(13)
    const data = multibulk([bytes("SET"), bytes("k"), big])
    const examined = { bytes: 0 }
    const chunks = [data.subarray(0, 30), ...Array.from({ length: 200 }, (_, i) => data.subarray(30 + i, 31 + i))]
    chunks.push(data.subarray(230))
    const result = decodeCommands(chunks, examined)
    expect(result.commands.map((c) => c.map((a) => a.length))).toEqual([[3, 1, big.length]])
    // "*3\r\n$3\r\n" ... "$1048576\r\n": a few dozen bytes of headers.
    expect(examined.bytes).toBeLessThan(40)
  })

  it("answers Redis's protocol errors, and waits where Redis waits", () => {
    const errors: Array<[string, string]> = [
      ["*1\r\nX\r\n", "Protocol error: expected '$', got 'X'"],
      ["*x\r\n", "Protocol error: invalid multibulk length"],
      ["*2147483648\r\n", "Protocol error: invalid multibulk length"],
      ["*01\r\n", "Protocol error: invalid multibulk length"],
      ["*1\r\n$-1\r\n", "Protocol error: invalid bulk length"],
      ["*1\r\n$536870913\r\n", "Protocol error: invalid bulk length"],
      ["*1\n$4\r\nPING\r\n", "Protocol error: invalid multibulk length"],
      ['GET "a\r\n', "Protocol error: unbalanced quotes in request"],
      ['GET "a"b\r\n', "Protocol error: unbalanced quotes in request"],
      ["x".repeat(65 * 1024), "Protocol error: too big inline request"],
      ["*" + "1".repeat(65 * 1024), "Protocol error: too big mbulk count string"],
      ["*1\r\n$" + "1".repeat(65 * 1024), "Protocol error: too big bulk count string"]
    ]
    for (const [input, detail] of errors) {
      const result = decodeCommands([bytes(input)])
      expect(result.error?._tag).toBe("MalformedFrame")
      expect(result.error?._tag === "MalformedFrame" && result.error.detail).toBe(detail)
    }
    // Incomplete, not wrong: a CR without the byte after it, a NUL before the line's end (C's strchr).
    for (const input of ["*1\r", "*1\r\n$4\r", "PI\x00NG\r\n", "*1\x00\r\n", "*2\r\n$3\r\nGET\r\n"]) {
      const result = decodeCommands([bytes(input)])
      expect(result.error).toBeUndefined()
      expect(result.commands).toEqual([])
    }
    // The two bytes after a bulk string are skipped unread, as Redis skips them.
    expect(decodeCommands([bytes("*1\r\n$4\r\nPINGxx*0\r\nECHO a\r\n")]).commands).toEqual([["PING"], [], [
      "ECHO",
      "a"
    ]])
  })

  it("splits inline commands as Redis's sdssplitargs does", () => {
    const cases: Array<[string, Array<string>]> = [
      ["  SET   a\tb  \r\n", ["SET", "a", "b"]],
      ["ECHO \"a b\" 'c d'\r\n", ["ECHO", "a b", "c d"]],
      ['ECHO "\\x41\\x4z\\n\\r\\t\\b\\a\\q"\n', ["ECHO", "Ax4z\n\r\t\b\x07q"]],
      ["ECHO 'it\\'s' \"\"\r\n", ["ECHO", "it's", ""]],
      ['SET k a"b c"\r\n', ["SET", "k", "ab c"]],
      ["\r\n", []],
      ["a\rb\r\n", ["a", "b"]]
    ]
    for (const [input, args] of cases) expect(decodeCommands([bytes(input)]).commands).toEqual([args])
  })
})

describe("glob patterns (Redis's stringmatchlen)", () => {
  it("matches as KEYS and PSUBSCRIBE do", () => {
    const cases: Array<[string, string, boolean]> = [
      // Redis's quirk: "*" does not match the empty string (KEYS * takes a shortcut; PSUBSCRIBE * misses "").
      ["*", "", false],
      ["*", "x", true],
      ["h?llo", "hello", true],
      ["h?llo", "hllo", false],
      ["h*llo", "heeeello", true],
      ["h[ae]llo", "hallo", true],
      ["h[ae]llo", "hillo", false],
      ["h[^e]llo", "hallo", true],
      ["h[^e]llo", "hello", false],
      ["h[a-b]llo", "hbllo", true],
      ["h[b-a]llo", "hallo", true],
      ["h\\*llo", "h*llo", true],
      ["h\\*llo", "hello", false],
      ["news.*", "news.sport", true],
      ["[abc", "a", true],
      ["a*a*a*a*a*a*a*a*a*a*b", "a".repeat(200), false],
      ["user:[0-9]*", "user:7:name", true],
      ["*z", "abc", false]
    ]
    for (const [pattern, text, expected] of cases) {
      expect([pattern, text, stringMatch(pattern, text)]).toEqual([pattern, text, expected])
    }
    expect(stringMatch("HELLO", "hello", true)).toBe(true)
    expect(stringMatch("HELLO", "hello")).toBe(false)
  })
})

describe("64-bit integers (Redis's string2ll)", () => {
  it("accepts canonical decimal integers within int64 only", () => {
    const parse = (text: string) => parseInt64(bytes(text), 0, text.length)
    expect(parse("0")).toBe(0n)
    expect(parse("-12")).toBe(-12n)
    expect(parse("9223372036854775807")).toBe(9223372036854775807n)
    expect(parse("-9223372036854775808")).toBe(-9223372036854775808n)
    for (const bad of ["", "-", "-0", "01", "+1", " 1", "1 ", "1.0", "9223372036854775808", "-9223372036854775809"]) {
      expect([bad, parse(bad)]).toEqual([bad, undefined])
    }
    expect(parseSmall(bytes("9007199254740993"), 0, 16)).toBe(Infinity)
    expect(parseSmall(bytes("42"), 0, 2)).toBe(42)
  })
})

describe("reply encoding", () => {
  it("writes RESP2 and RESP3 forms as the connection's protocol says", () => {
    expect(latin1(encode(RESP2.map(["a", 1])))).toBe("*2\r\n$1\r\na\r\n:1\r\n")
    expect(latin1(encode(RESP3.map(["a", 1])))).toBe("%1\r\n$1\r\na\r\n:1\r\n")
    expect(latin1(encode([RESP2.nil, RESP3.nil, RESP2.nilArray]))).toBe("*3\r\n$-1\r\n_\r\n*-1\r\n")
    expect(latin1(encode(RESP3.push(["message", "c", bytes("m")])))).toBe(
      ">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n"
    )
    expect(latin1(encode(RESP3.verbatim("x:1\r\n")))).toBe("=9\r\ntxt:x:1\r\n\r\n")
    expect(latin1(encode(RESP2.bool(true))) + latin1(encode(RESP3.bool(false)))).toBe(":1\r\n#f\r\n")
    expect(latin1(encode(new Status("OK")))).toBe("+OK\r\n")
    expect(latin1(encode(new ErrorReply("ERR x")))).toBe("-ERR x\r\n")
    expect(latin1(encode(-9223372036854775808n))).toBe(":-9223372036854775808\r\n")
  })
})

describe("expiry under TestClock", () => {
  it.effect("lazy: a key that expires at T is there at T and gone just after it", () =>
    Effect.gen(function* () {
      const store = yield* Store.make({ sweepInterval: "1 hour" })
      const db = store.dbs[0]!
      store.set(db, "k", bytes("v"))
      store.setExpire(db, "k", store.now() + 1000)
      yield* TestClock.adjust("1000 millis")
      expect(store.lookup(db, "k")).toEqual(bytes("v"))
      yield* TestClock.adjust("1 millis")
      expect(store.lookup(db, "k")).toBeUndefined()
      expect(db.keys.size).toBe(0)
      expect(store.expiredKeys).toBe(1)
    }))

  it.effect("active: one sweep for the whole store deletes keys nobody reads, a bounded number per tick", () =>
    Effect.gen(function* () {
      const store = yield* Store.make({ sweepInterval: "100 millis", sweepBudget: 1000 })
      const [db0, db3] = [store.dbs[0]!, store.dbs[3]!]
      for (let i = 0; i < 1500; i++) {
        store.set(db0, `a${i}`, bytes("v"))
        store.setExpire(db0, `a${i}`, store.now() + 50)
      }
      for (let i = 0; i < 500; i++) {
        store.set(db3, `b${i}`, bytes("v"))
        store.setExpire(db3, `b${i}`, store.now() + 50)
      }
      store.set(db0, "forever", bytes("v"))
      yield* TestClock.adjust("100 millis")
      // One tick: 1000 checks at most, so 1000 of the 2000 expired keys.
      expect(store.expiredKeys).toBe(1000)
      yield* TestClock.adjust("100 millis")
      expect(store.expiredKeys).toBe(2000)
      expect(db0.keys.size + db3.keys.size).toBe(1)
      expect(db0.expires.size + db3.expires.size).toBe(0)
    }))

  it.effect("over a socket: SET PX, then the key is gone once TestClock passes its time", () =>
    Effect.gen(function* () {
      const resp = yield* serve({ port: 0 })
      const p = yield* peer(resp.port)
      const ask = (command: string, reply: string) =>
        Effect.gen(function* () {
          const before = p.received().length
          p.write(command)
          yield* Effect.promise(() => p.waitFor(before + reply.length))
          expect(latin1(p.received().subarray(before))).toBe(reply)
        })
      yield* ask("SET k v PX 5000\r\n", "+OK\r\n")
      yield* ask("SET other v EX 100\r\n", "+OK\r\n")
      yield* TestClock.adjust("5000 millis")
      yield* ask("PTTL k\r\n", ":0\r\n")
      yield* TestClock.adjust("1 millis")
      yield* ask("GET k\r\nTTL other\r\n", "$-1\r\n:95\r\n")
      // `other` was never read again: active expiry deletes it after its time.
      yield* TestClock.adjust("95 seconds")
      yield* TestClock.adjust("200 millis")
      expect(resp.shared.store.dbs[0]!.keys.size).toBe(0)
      yield* ask("DBSIZE\r\n", ":0\r\n")
    }))
})
