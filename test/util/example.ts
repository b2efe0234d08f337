/**
 * Runs an example server (`examples/<name>/server.ts`) as a child process on Bun, Deno or Node, on a
 * free port of 127.0.0.1, for tests that talk to it with real clients. The process is stopped with
 * SIGTERM when the scope closes, and must exit by itself (a graceful stop) within 10 s.
 */
import * as Effect from "effect/Effect"
import * as childProcess from "node:child_process"
import * as net from "node:net"
import * as path from "node:path"

export type Runtime = "bun" | "deno" | "node"

export const runtimes: ReadonlyArray<Runtime> = ["bun", "deno", "node"]

const root = path.resolve(import.meta.dirname ?? new URL(".", import.meta.url).pathname, "../..")
const bin = (name: string) => path.join(root, "node_modules", ".bin", name)

/** The command that runs `file` on `runtime`, with the project's own binaries. */
export const command = (runtime: Runtime, file: string): [string, Array<string>] => {
  switch (runtime) {
    case "bun":
      return [bin("bun"), [file]]
    case "deno":
      return [bin("deno"), ["run", "-A", file]]
    case "node":
      return [bin("node"), ["--import", "tsx", file]]
  }
}

/** A free TCP port on 127.0.0.1 (bound, then released). */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const probe = net.createServer()
    probe.once("error", reject)
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address() as net.AddressInfo
      probe.close(() => resolve(address.port))
    })
  })

const canConnect = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port })
    socket.once("connect", () => {
      socket.destroy()
      resolve(true)
    })
    socket.once("error", () => resolve(false))
  })

export interface ExampleProcess {
  readonly port: number
  readonly child: childProcess.ChildProcess
  /** Everything the process wrote to stdout and stderr so far. */
  readonly output: () => string
  /** Sends SIGTERM and resolves with the exit code (null if it had to be killed after 10 s). */
  readonly stop: () => Promise<number | null>
}

/**
 * Starts `examples/<name>/server.ts` (or another file under examples/) with `PORT` set, and waits
 * until it accepts connections (up to 20 s).
 */
export const startExample = async (
  runtime: Runtime,
  file: string,
  env: Record<string, string> = {}
): Promise<ExampleProcess> => {
  const port = await freePort()
  const [cmd, args] = command(runtime, path.join(root, file))
  const child = childProcess.spawn(cmd, args, {
    cwd: root,
    env: { ...process.env, DENO_NO_UPDATE_CHECK: "1", HOST: "127.0.0.1", PORT: String(port), ...env },
    stdio: ["ignore", "pipe", "pipe"]
  })
  let output = ""
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()))
  child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()))
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
  let gone = false
  void exited.then(() => (gone = true))
  const deadline = Date.now() + 20_000
  while (!(await canConnect(port))) {
    if (gone) throw new Error(`${runtime} ${file} exited before listening:\n${output}`)
    if (Date.now() > deadline) {
      child.kill("SIGKILL")
      throw new Error(`${runtime} ${file} did not listen on ${port} within 20 s:\n${output}`)
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  const stop = async (): Promise<number | null> => {
    if (gone) return child.exitCode
    child.kill("SIGTERM")
    const killer = setTimeout(() => child.kill("SIGKILL"), 10_000)
    const code = await exited
    clearTimeout(killer)
    return code
  }
  return { port, child, output: () => output, stop }
}

/** `startExample` as a scoped resource: stopped when the scope closes. */
export const example = (runtime: Runtime, file: string, env: Record<string, string> = {}) =>
  Effect.acquireRelease(
    Effect.promise(() => startExample(runtime, file, env)),
    (proc) => Effect.promise(() => proc.stop())
  )
