import { describe, expect, it } from "@effect/vitest"
import * as childProcess from "node:child_process"
import * as fs from "node:fs"
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

/** Whether a process still runs: it exists (signal 0 only checks) and, where /proc tells, is no zombie. */
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  try {
    // `pid (comm) S ...`: the state follows the last ")".
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z"
  } catch {
    return true
  }
}

/**
 * The fixture's command line. Node: this very binary (the project's Node 24, which binds with `reusePort`)
 * with tsx to run TypeScript; the workers it spawns get the same flags (`process.execArgv`).
 */
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
  it("spreads connections over two worker processes listening on one port, and stops them", async () => {
    const port = await freePort()
    const [cmd, args] = command()
    const primary = childProcess.spawn(cmd, args, {
      env: { ...process.env, PORT: String(port), WORKERS: "2" },
      stdio: ["ignore", "ignore", "inherit"],
      detached: true
    })
    const exited = new Promise<number | null>((resolve) => primary.once("exit", (code) => resolve(code)))
    /** Worker id to its process id, as the workers answer. */
    const seen = new Map<string, number>()
    try {
      const deadline = Date.now() + 30_000
      // Workers start at their own pace (a busy machine may take seconds to start the second one):
      // ask until both answered, bounded in count and time.
      for (let i = 0; i < 3000 && seen.size < 2 && Date.now() < deadline; i++) {
        const answer = await ask(port)
        if (answer === undefined) await new Promise((r) => setTimeout(r, 100))
        else {
          const [worker, pid] = answer.split(" pid ")
          seen.set(worker!, Number(pid))
          await new Promise((r) => setTimeout(r, 10))
        }
      }
      expect([...seen.keys()].sort()).toEqual(["worker 1", "worker 2"])
      // Two processes of their own, not the primary: each bound the port itself.
      const pids = [...seen.values()]
      expect(new Set(pids).size).toBe(2)
      expect(pids).not.toContain(primary.pid)
    } finally {
      primary.kill("SIGTERM")
      const code = await Promise.race([exited, new Promise<"timeout">((r) => setTimeout(() => r("timeout"), 10_000))])
      if (code === "timeout") process.kill(-primary.pid!, "SIGKILL")
      expect(code).not.toBe("timeout")
    }
    // Stopping the primary stops its workers (bounded wait; the group is killed if one is left).
    const workers = [...seen.values()]
    const deadline = Date.now() + 10_000
    while (workers.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
    const left = workers.filter(alive)
    if (left.length > 0) process.kill(-primary.pid!, "SIGKILL")
    expect(left).toEqual([])
  }, 60_000)
})
