/**
 * The RESP example against the real thing: a `redis-server` started here on a free port, and the
 * example server (examples/resp/server.ts) run as a process on Bun, Deno and Node.
 *
 * - Differential: both get the same raw byte scripts on fresh connections; their replies must be
 *   equal byte for byte, and both must close (or keep) the connection alike. HELLO's `server`,
 *   `version` and `id` values differ by nature ("sluice" 0.1.0 against "redis" 7.0.x, and each
 *   server's own client ids): in the scripts marked `hello`, those three values are replaced by
 *   placeholders on both sides before comparing; every other byte, the map's shape and order
 *   included, must be equal.
 * - redis-cli (one-shot, `-3`, its `help` built from COMMAND DOCS, and commands piped into its
 *   prompt) prints the same output for both servers.
 * - redis-benchmark completes without an error, and the keys it wrote hold what it wrote.
 * - The sluice client against the real redis-server: commands, errors, pub/sub.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Stream } from "effect"
import * as childProcess from "node:child_process"
import * as net from "node:net"
import * as os from "node:os"
import * as Resp from "../../examples/resp/client.ts"
import { type ExampleProcess, freePort, type Runtime, runtimes, startExample } from "../util/example.ts"
import { require } from "../util/peers.ts"

// --- a real redis-server -------------------------------------------------------------------------

interface RedisServer {
  readonly port: number
  readonly stop: () => Promise<void>
}

const canConnect = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port })
    socket.once("connect", () => {
      socket.destroy()
      resolve(true)
    })
    socket.once("error", () => resolve(false))
  })

const startRedis = async (): Promise<RedisServer> => {
  const port = await freePort()
  const child = childProcess.spawn(
    require("redis-server"),
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", os.tmpdir()],
    { stdio: ["ignore", "pipe", "pipe"] }
  )
  let output = ""
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()))
  child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()))
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  const deadline = Date.now() + 20_000
  while (!(await canConnect(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill("SIGKILL")
      throw new Error(`redis-server did not listen on ${port}:\n${output}`)
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  return {
    port,
    stop: async () => {
      child.kill("SIGTERM")
      const killer = setTimeout(() => child.kill("SIGKILL"), 10_000)
      await exited
      clearTimeout(killer)
    }
  }
}

// --- raw exchanges ---------------------------------------------------------------------------------

const MARKER = "__end_of_script__"

/**
 * How a script's reply ends: `marker`, with the reply to a `PING <marker>` sent after it (answered
 * in every mode); `close`, with the server closing the connection; `quiet`, the script leaves the
 * server waiting, and the reply is what came within 300 ms.
 */
type Ending = "marker" | "close" | "quiet"

/** Sends `script` on a fresh connection and collects the reply bytes until it ends. */
const exchange = (port: number, script: Buffer, ending: Ending): Promise<{ reply: string; closed: boolean }> =>
  new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port })
    const chunks: Array<Buffer> = []
    let done = false
    const finish = (closed: boolean) => {
      if (done) return
      done = true
      clearTimeout(timer)
      socket.destroy()
      let reply = Buffer.concat(chunks).toString("latin1")
      if (ending === "marker") reply = reply.replace(/(\*2\r\n\$4\r\npong\r\n)?\$17\r\n__end_of_script__\r\n$/, "")
      resolve({ reply, closed })
    }
    const timer = setTimeout(
      () =>
        ending === "quiet" ? finish(false) : reject(
          new Error(`the reply did not end (${ending}) within 10 s: ${JSON.stringify(script.subarray(0, 80))}`)
        ),
      ending === "quiet" ? 300 : 10_000
    )
    socket.on("data", (chunk: Buffer) => {
      chunks.push(chunk)
      if (ending === "marker" && Buffer.concat(chunks).toString("latin1").endsWith(`${MARKER}\r\n`)) finish(false)
    })
    socket.on("close", () => finish(true))
    socket.on("error", () => {})
    socket.write(ending === "marker" ? Buffer.concat([script, Buffer.from(`PING ${MARKER}\r\n`)]) : script)
  })

/** HELLO's server, version and id values, replaced on both sides (see the module's documentation). */
const normalizeHello = (reply: string): string =>
  reply
    .replace(/\$6\r\nserver\r\n\$\d+\r\n[^\r]*\r\n/g, "$6\r\nserver\r\n<server>\r\n")
    .replace(/\$7\r\nversion\r\n\$\d+\r\n[^\r]*\r\n/g, "$7\r\nversion\r\n<version>\r\n")
    .replace(/\$2\r\nid\r\n:\d+\r\n/g, "$2\r\nid\r\n<id>\r\n")

const cmd = (...args: Array<string>): string =>
  `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a, "latin1")}\r\n${a}\r\n`).join("")}`

interface Script {
  readonly name: string
  readonly script: string
  readonly hello?: boolean
  /** Default `marker`. */
  readonly ending?: Ending
}

const scripts: ReadonlyArray<Script> = [
  { name: "PING inline and multibulk", script: "PING\r\n*1\r\n$4\r\nPING\r\nPING hello\r\n" },
  { name: "wrong arity", script: "GET\r\nSET k\r\nINCRBY k\r\nPING a b\r\nMSET a 1 b\r\nCLIENT SETNAME\r\n" },
  {
    name: "wrong type",
    script: "LPUSH l a b\r\nGET l\r\nINCR l\r\nAPPEND l x\r\nSTRLEN l\r\nSET s 1\r\nLPUSH s x\r\n"
  },
  {
    name: "INCR overflow and not-an-integer",
    script: "SET n 9223372036854775806\r\nINCR n\r\nINCR n\r\nSET m -9223372036854775807\r\nDECR m\r\nDECR m\r\n" +
      "DECRBY m -9223372036854775808\r\nINCRBY m 9223372036854775808\r\nSET f 1.5\r\nINCR f\r\nSET z 007\r\nINCR z\r\n"
  },
  {
    name: "SET with EX, NX, XX, GET and their syntax errors",
    script: "SET k v EX 100 NX\r\nSET k w NX\r\nSET k x GET\r\nSET k y XX GET\r\nSET none y XX GET\r\nTTL k\r\n" +
      "SET k v EX 0\r\nSET k v EX -5\r\nSET k v EX abc\r\nSET k v EX\r\nSET k v NX XX\r\nSET k v KEEPTTL EX 5\r\n" +
      "SET k v PX 9223372036854775807\r\nSET k v EX 9223372036854776\r\nSET k v FOO\r\nSET l v\r\nLPUSH list x\r\n" +
      "SET list v GET\r\n"
  },
  {
    name: "unknown commands and subcommands",
    script: "FOO\r\nFOO a b\r\n" + cmd("nosuch", "x".repeat(200), "y") + cmd("bad", "a\r\nb", "c\x00d") +
      "CLIENT NOSUCH\r\nCOMMAND NOSUCH\r\nCONFIG NOSUCH x\r\n"
  },
  {
    name: "pipelined commands in one write",
    script: cmd("SET", "a", "1") + cmd("INCRBY", "a", "41") + cmd("GET", "a") + cmd("MGET", "a", "b") +
      cmd("DEL", "a", "b") + cmd("EXISTS", "a") + "*0\r\n*-1\r\n" + cmd("APPEND", "a", "xyz") + cmd("STRLEN", "a")
  },
  {
    name: "inline commands with quotes and escapes",
    script:
      'SET a "b c" \r\nGET a\r\nSET b \'it\\\'s\'\r\nGET b\r\nECHO "\\x41\\x4z\\n\\t"\r\n  GET   a  \r\n\r\nSET k a"b c"\r\n' +
      "GET k\r\nECHO \"\" ''\r\n"
  },
  {
    name: "expiry commands",
    script: "SET k v\r\nEXPIRE k 100\r\nEXPIRE k 200 NX\r\nEXPIRE k 50 GT\r\nEXPIRE k 50 LT\r\nTTL k\r\nPERSIST k\r\n" +
      "TTL k\r\nTTL none\r\nPTTL none\r\nEXPIRE k 1 FOO\r\nEXPIRE k 1 NX XX\r\nEXPIRE k 1 GT LT\r\nEXPIRE none 5\r\n" +
      "EXPIRE k 9223372036854775807\r\nPEXPIRE k -1\r\nEXISTS k\r\n"
  },
  {
    name: "lists, KEYS, DBSIZE, TYPE, SELECT, FLUSHALL",
    script:
      "RPUSH l a b c\r\nLPUSH l z\r\nLRANGE l 0 -1\r\nLRANGE l -2 10\r\nLRANGE l 5 1\r\nLRANGE l x 1\r\nLLEN l\r\n" +
      "LLEN none\r\nTYPE l\r\nTYPE none\r\nSET key1 a\r\nKEYS key?\r\nKEYS [j-l]ey*\r\nKEYS nothing*\r\nDBSIZE\r\n" +
      "SELECT 1\r\nDBSIZE\r\nSELECT 16\r\nSELECT -1\r\nSELECT x\r\nSELECT 0\r\nFLUSHALL x\r\nFLUSHALL\r\nDBSIZE\r\n"
  },
  {
    name: "HELLO 3: RESP3 replies, then HELLO 2",
    hello: true,
    script: "HELLO 3\r\nGET none\r\nMGET none\r\nSET k v GET\r\nCLIENT GETNAME\r\nHELLO 2\r\nGET none\r\n"
  },
  {
    name: "HELLO errors and options",
    hello: true,
    script: "HELLO 4\r\nHELLO x\r\nHELLO 3 FOO\r\nHELLO 3 AUTH default secret SETNAME me\r\nCLIENT GETNAME\r\n" +
      'HELLO 3 AUTH nobody secret\r\nHELLO 2 SETNAME "a b"\r\nAUTH x\r\nAUTH default x\r\nAUTH a b c\r\n'
  },
  {
    name: "RESP2 subscribed mode",
    script: "SUBSCRIBE a b\r\nGET x\r\nPING\r\nPING hi\r\nPUBLISH a x\r\nPSUBSCRIBE p*\r\nUNSUBSCRIBE b\r\n" +
      "PUNSUBSCRIBE\r\nUNSUBSCRIBE\r\nUNSUBSCRIBE\r\nGET x\r\n"
  },
  {
    name: "RESP3 subscribed: every command allowed, messages to self before the reply",
    hello: true,
    script: "HELLO 3\r\nSUBSCRIBE a\r\nGET x\r\nPUBLISH a hello\r\nUNSUBSCRIBE a\r\n"
  },
  { name: "QUIT", script: "QUIT\r\nPING\r\n", ending: "close" },
  { name: "protocol error: expected '$'", script: "PING\r\n*1\r\nX\r\nPING\r\n", ending: "close" },
  { name: "protocol error: invalid multibulk length", script: "*abc\r\n", ending: "close" },
  { name: "protocol error: invalid bulk length", script: "*1\r\n$-1\r\n", ending: "close" },
  { name: "protocol error: unbalanced quotes", script: 'SET a "b\r\n', ending: "close" },
  { name: "protocol error: too big inline request", script: "x".repeat(70_000), ending: "close" },
  { name: "protocol error: too big mbulk count", script: "*" + "1".repeat(70_000), ending: "close" },
  { name: "an HTTP request is dropped", script: "POST / HTTP/1.1\r\nHost: x\r\n\r\n", ending: "close" },
  { name: "a NUL hides the line's end", script: "PI\x00NG\r\n", ending: "quiet" },
  { name: "an incomplete command waits", script: "*2\r\n$3\r\nGET\r\n$1\r\n", ending: "quiet" },
  { name: "bulk strings' trailing bytes are skipped unread", script: "*1\r\n$4\r\nPINGxx*1\r\n$4\r\nPING\r\n" }
]

/** The output of a redis-cli run. */
const cli = (port: number, args: ReadonlyArray<string>, input?: string): string => {
  const result = childProcess.spawnSync(require("redis-cli"), ["-p", String(port), ...args], {
    encoding: "utf8",
    timeout: 20_000,
    input: input ?? ""
  })
  if (result.error !== undefined) throw result.error
  return result.stdout + result.stderr
}

// --- the tests -----------------------------------------------------------------------------------

let redis: RedisServer

beforeAll(async () => {
  redis = await startRedis()
})

afterAll(async () => {
  await redis?.stop()
})

for (const runtime of runtimes) {
  describe(`the example server on ${runtime} against redis-server`, () => {
    let sluice: ExampleProcess

    beforeAll(async () => {
      sluice = await startExample(runtime as Runtime, "examples/resp/server.ts")
    })

    afterAll(async () => {
      // A graceful stop: SIGTERM, exit code 0.
      expect(await sluice.stop()).toBe(0)
    })

    it("answers every raw script byte for byte as redis-server does, and closes where it closes", async () => {
      for (const { name, script, hello, ending = "marker" } of scripts) {
        const bytes = Buffer.from(script, "latin1")
        cli(redis.port, ["FLUSHALL"])
        cli(sluice.port, ["FLUSHALL"])
        const [ours, theirs] = await Promise.all([
          exchange(sluice.port, bytes, ending),
          exchange(redis.port, bytes, ending)
        ])
        const normalize = hello ? normalizeHello : (reply: string) => reply
        expect({ name, reply: normalize(ours.reply), closed: ours.closed }).toEqual({
          name,
          reply: normalize(theirs.reply),
          closed: theirs.closed
        })
      }
    })

    it("redis-cli prints the same for both: one-shot commands, -3, help from COMMAND DOCS, piped commands", () => {
      const runs: Array<Array<string>> = [
        ["FLUSHALL"],
        ["SET", "greeting", "hello world"],
        ["GET", "greeting"],
        ["INCR", "counter"],
        ["LPUSH", "greeting", "x"],
        ["NOSUCH", "arg"],
        ["MGET", "greeting", "none"],
        ["--no-raw", "MGET", "greeting", "none"],
        ["-3", "GET", "none"],
        ["-3", "--no-raw", "MGET", "greeting", "none"],
        ["help", "set"],
        ["help", "get"]
      ]
      for (const args of runs) {
        expect({ args, out: cli(sluice.port, args) }).toEqual({ args, out: cli(redis.port, args) })
      }
      // Commands typed at the prompt (stdin): redis-cli builds its help from COMMAND DOCS first.
      const piped = "SET a 1\nINCRBY a 41\nGET a\nTTL a\nSUBSCRIBE\n"
      expect(cli(sluice.port, [], piped)).toBe(cli(redis.port, [], piped))
      expect(cli(sluice.port, ["-3", "HELLO", "3"])).toContain("server sluice\n")
    })

    it("redis-benchmark -P 16 completes without errors, and the keys hold what it wrote", () => {
      const result = childProcess.spawnSync(
        require("redis-benchmark"),
        [
          "-h",
          "127.0.0.1",
          "-p",
          String(sluice.port),
          "-t",
          "ping,set,get,incr,mset",
          "-n",
          "100000",
          "-P",
          "16",
          "-q"
        ],
        { encoding: "utf8", timeout: 100_000 }
      )
      expect(result.error).toBeUndefined()
      expect(result.status).toBe(0)
      const output = result.stdout + result.stderr
      expect(output).not.toMatch(/error|ERR/i)
      for (const test of ["PING_INLINE", "PING_MBULK", "SET", "GET", "INCR", "MSET (10 keys)"]) {
        expect(output).toContain(`${test}: `)
      }
      // redis-benchmark checks no reply: the values tell whether every command was done.
      expect(cli(sluice.port, ["GET", "counter:__rand_int__"]).trim()).toBe("100000")
      expect(cli(sluice.port, ["STRLEN", "key:__rand_int__"]).trim()).toBe("3")
    })
  })
}

describe("the sluice RESP client against redis-server", () => {
  for (const protocol of [2, 3] as const) {
    it.live(`RESP${protocol}: commands, typed errors, pub/sub`, () =>
      Effect.gen(function* () {
        const client = yield* Resp.make({ port: redis.port, protocol })
        yield* client.flushall()
        expect(yield* client.set("k", "v", { ex: 100 })).toBe(true)
        expect(yield* client.set("k", "w", { nx: true })).toBe(false)
        expect(yield* client.get("k")).toBe("v")
        expect(yield* client.ttl("k")).toBe(100)
        expect(yield* client.incrBy("n", 41)).toBe(41)
        expect(yield* client.rpush("l", "a", "b")).toBe(2)
        expect(yield* client.lrange("l", 0, -1)).toEqual(["a", "b"])
        const hello = yield* client.hello()
        expect(Buffer.from(hello.get("server") as Uint8Array).toString()).toBe("redis")
        expect(hello.get("proto")).toBe(protocol)
        expect(yield* Effect.flip(client.get("l"))).toMatchObject({
          _tag: "RedisError",
          code: "WRONGTYPE",
          reply: "WRONGTYPE Operation against a key holding the wrong kind of value"
        })
        expect(yield* Effect.flip(client.command("NOSUCH"))).toMatchObject({ _tag: "RedisError", code: "ERR" })
        const subscriber = yield* client.subscriber()
        yield* subscriber.subscribe("news")
        yield* subscriber.psubscribe("room:*")
        expect(yield* client.publish("news", "one")).toBe(1)
        expect(yield* client.publish("room:1", "two")).toBe(1)
        const messages = yield* subscriber.messages.pipe(Stream.take(2), Stream.runCollect)
        expect(messages.map((m) => [m.channel, m.message, m.pattern])).toEqual([
          ["news", "one", undefined],
          ["room:1", "two", "room:*"]
        ])
        // A stream subscription on its own connection, closed when the stream is done.
        const fiber = yield* Effect.forkChild(client.subscribe("chat").pipe(Stream.take(1), Stream.runCollect))
        for (let i = 0; (yield* client.publish("chat", "hi")) === 0; i++) {
          if (i > 1000) throw new Error("the chat subscription never came")
          yield* Effect.sleep("5 millis")
        }
        expect((yield* Fiber.join(fiber)).map((m) => m.message)).toEqual(["hi"])
      }))
  }
})
