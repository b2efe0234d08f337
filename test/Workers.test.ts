import { describe, expect, it } from "@effect/vitest"
import * as childProcess from "node:child_process"
import * as net from "node:net"
import { Transport } from "../src/index.ts"

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const probe = net.createServer()
    probe.once("error", reject)
    probe.listen(0, "127.0.0.1", () => {
      const port = (probe.address() as net.AddressInfo).port
      probe.close(() => resolve(port))
    })
  })

const ask = (port: number): Promise<string | undefined> =>
  new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port })
    let text = ""
    const done = (value: string | undefined) => {
      socket.destroy()
      resolve(value)
    }
    socket.setTimeout(2000, () => done(undefined))
    socket.on("error", () => done(undefined))
    socket.on("connect", () => socket.write("?\n"))
    socket.on("data", (chunk) => {
      text += chunk.toString()
      if (text.includes("\n")) done(text.trim())
    })
  })

const command = (): [string, Array<string>] => {
  const fixture = "test/fixtures/workers-server.ts"
  switch (Transport.runtime) {
    case "bun":
      return [process.execPath, [fixture]]
    case "deno":
      return [process.execPath, ["run", "-A", "--unstable-net", fixture]]
    default:
      return [process.execPath, ["--import", "tsx", fixture]]
  }
}

describe("Server.workers", () => {
  it("spreads connections over two worker processes listening on one port", async () => {
    const port = await freePort()
    const [cmd, args] = command()
    const primary = childProcess.spawn(cmd, args, {
      env: { ...process.env, PORT: String(port), WORKERS: "2" },
      stdio: ["ignore", "ignore", "inherit"],
      detached: true
    })
    const exited = new Promise<number | null>((resolve) => primary.once("exit", (code) => resolve(code)))
    try {
      const seen = new Set<string>()
      const deadline = Date.now() + 30_000
      // Workers start at their own pace: ask until both answered (bounded in count and time).
      for (let i = 0; i < 400 && seen.size < 2 && Date.now() < deadline; i++) {
        const answer = await ask(port)
        if (answer === undefined) await new Promise((r) => setTimeout(r, 100))
        else seen.add(answer.split(" pid ")[0]!)
      }
      expect([...seen].sort()).toEqual(["worker 1", "worker 2"])
    } finally {
      primary.kill("SIGTERM")
      const code = await Promise.race([exited, new Promise<"timeout">((r) => setTimeout(() => r("timeout"), 10_000))])
      if (code === "timeout") process.kill(-primary.pid!, "SIGKILL")
      expect(code).not.toBe("timeout")
    }
  }, 60_000)
})
