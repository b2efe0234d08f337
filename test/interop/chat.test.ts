/**
 * The chat example across processes and runtimes: chat servers on Bun, Deno and Node share their rooms
 * through a real `redis-server`, with clients on each (raw sockets, and `nc` as a user would type).
 */
import { describe, expect, it } from "@effect/vitest"
import * as childProcess from "node:child_process"
import * as net from "node:net"
import { freePort, startExample } from "../util/example.ts"
import { require } from "../util/peers.ts"

/** A real redis-server on a free port of 127.0.0.1, without persistence. */
const startRedis = async () => {
  const port = await freePort()
  const child = childProcess.spawn(
    require("redis-server"),
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    { stdio: "ignore" }
  )
  const deadline = Date.now() + 10_000
  for (;;) {
    const up = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: "127.0.0.1", port })
      socket.once("connect", () => {
        socket.destroy()
        resolve(true)
      })
      socket.once("error", () => resolve(false))
    })
    if (up) break
    if (Date.now() > deadline) throw new Error("redis-server did not start")
    await new Promise((r) => setTimeout(r, 50))
  }
  return {
    port,
    stop: () =>
      new Promise<void>((resolve) => {
        child.once("exit", () => resolve())
        child.kill("SIGTERM")
      })
  }
}

/** A chat user on a raw socket: the lines received so far, and a wait for one. */
const user = (port: number) =>
  new Promise<{
    lines: () => Array<string>
    waitFor: (match: (line: string) => boolean, label: string) => Promise<string>
    say: (text: string) => void
    close: () => void
    nick: string
  }>((resolve, reject) => {
    let text = ""
    const socket = net.connect({ host: "127.0.0.1", port })
    socket.setEncoding("utf8")
    socket.on("data", (chunk: string) => (text += chunk))
    socket.once("error", reject)
    const lines = () => text.split("\n").slice(0, -1)
    const waitFor = async (match: (line: string) => boolean, label: string) => {
      for (let i = 0; i < 1000; i++) {
        const found = lines().find(match)
        if (found !== undefined) return found
        await new Promise((r) => setTimeout(r, 10))
      }
      throw new Error(`no line ${label}; got ${JSON.stringify(lines())}`)
    }
    socket.once("connect", async () => {
      const welcome = await waitFor((l) => l.startsWith("* welcome"), "welcome")
      resolve({
        lines,
        waitFor,
        say: (line) => socket.write(`${line}\n`),
        close: () => socket.destroy(),
        nick: /you are (\S+),/.exec(welcome)![1]!
      })
    })
  })

describe("chat across processes through redis-server", () => {
  it("servers on Bun, Deno and Node form one chat; nc users take part", async () => {
    const redis = await startRedis()
    const env = { REDIS_URL: `redis://127.0.0.1:${redis.port}` }
    const started = await Promise.allSettled([
      startExample("bun", "examples/chat/server.ts", env),
      startExample("deno", "examples/chat/server.ts", env),
      startExample("node", "examples/chat/server.ts", env)
    ])
    const servers = started.flatMap((result) => result.status === "fulfilled" ? [result.value] : [])
    try {
      const failed = started.find((result) => result.status === "rejected")
      if (failed !== undefined) throw (failed as PromiseRejectedResult).reason
      const [onBun, onDeno, onNode] = await Promise.all(servers.map((server) => user(server.port)))
      // Everyone is in lobby: a line said on one server reaches the users of the other two.
      onBun!.say("hello from bun")
      await onDeno!.waitFor((l) => l === `${onBun!.nick}: hello from bun`, "deno hears bun")
      await onNode!.waitFor((l) => l === `${onBun!.nick}: hello from bun`, "node hears bun")
      onDeno!.say("hello from deno")
      await onBun!.waitFor((l) => l === `${onDeno!.nick}: hello from deno`, "bun hears deno")
      await onNode!.waitFor((l) => l === `${onDeno!.nick}: hello from deno`, "node hears deno")

      // An nc user on the Deno server says a line and quits; the Bun user hears both.
      const nc = childProcess.spawnSync(require("nc"), ["-q", "2", "-w", "10", "127.0.0.1", String(servers[1]!.port)], {
        input: "/nick netcat\nsaid with nc\n/quit\n",
        encoding: "utf8",
        timeout: 20_000
      })
      expect(nc.error).toBeUndefined()
      const ncLines = nc.stdout.split("\n")
      expect(ncLines[0]).toMatch(/^\* welcome to sluice chat: you are guest-[0-9a-f]{4}, in room lobby/)
      expect(ncLines).toContain("* you are now netcat")
      expect(ncLines).toContain("* bye, netcat")
      await onBun!.waitFor((l) => l === "netcat: said with nc", "bun hears nc")
      await onNode!.waitFor((l) => l === "* netcat left", "node hears nc leave")

      // Rooms: Bun and Node users in rust; the Deno user's lobby line does not reach them.
      onBun!.say("/join rust")
      onNode!.say("/join rust")
      await onBun!.waitFor((l) => l === `* ${onNode!.nick} joined`, "bun told node joined rust")
      onDeno!.say("lobby line")
      onDeno!.say("/join rust")
      await onNode!.waitFor((l) => l === `* ${onDeno!.nick} joined`, "node told deno joined rust")
      expect(onNode!.lines().some((l) => l.includes("lobby line"))).toBe(false)
      expect(onBun!.lines().some((l) => l.includes("lobby line"))).toBe(false)
      for (const u of [onBun, onDeno, onNode]) u!.close()
    } finally {
      // Each server stops gracefully on SIGTERM, with exit code 0.
      const codes = await Promise.all(servers.map((server) => server.stop()))
      await redis.stop()
      expect(codes).toEqual(servers.map(() => 0))
    }
  })
})
