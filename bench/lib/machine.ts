/**
 * What the socket benchmark (bench/run.ts, on Bun) needs of the machine: the binaries, CPU pinning,
 * /proc (RSS, CPU time), and the processes it starts, every one of which is stopped on exit, on
 * error and on SIGINT.
 */
import { readFileSync, writeFileSync } from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import process from "node:process"

// --- the slice of Bun's API used here ---------------------------------------------------------------

export interface Child {
  readonly pid: number
  readonly stdout: ReadableStream<Uint8Array>
  readonly exited: Promise<number>
  readonly exitCode: number | null
  kill(signal?: number | string): void
}

interface BunApi {
  spawn(options: {
    readonly cmd: Array<string>
    readonly cwd?: string
    readonly env?: Record<string, string | undefined>
    readonly stdin?: "ignore"
    readonly stdout?: "pipe" | "inherit" | "ignore"
    readonly stderr?: "pipe" | "inherit" | "ignore"
  }): Child
  spawnSync(options: {
    readonly cmd: Array<string>
    readonly cwd?: string
    readonly env?: Record<string, string | undefined>
    readonly stdout?: "pipe"
    readonly stderr?: "pipe"
  }): {
    readonly stdout: Uint8Array
    readonly stderr: Uint8Array
    readonly success: boolean
  }
  connect(options: {
    readonly hostname: string
    readonly port: number
    readonly socket: {
      readonly data: () => void
      readonly open?: () => void
      readonly close?: () => void
      readonly error?: () => void
    }
  }): Promise<{ terminate(): void }>
  readonly version: string
}

const maybeBun = (globalThis as unknown as { Bun?: BunApi }).Bun
if (maybeBun === undefined) {
  console.error("bench/run.ts runs on Bun: `bun bench/run.ts` (or `npm run bench`)")
  process.exit(64)
}
export const Bun: BunApi = maybeBun

// --- binaries -------------------------------------------------------------------------------------------

export const ROOT = path.resolve(import.meta.dirname ?? path.dirname(new URL(import.meta.url).pathname), "../..")
const BIN = path.join(ROOT, "node_modules", ".bin")
export const BUN = path.join(BIN, "bun")
export const DENO = path.join(BIN, "deno")
/** Node 24 from the `node` devDependency: never whatever `node` is on PATH. */
export const NODE = path.join(BIN, "node")
/** Where built servers and the C load generator go. */
export const CACHE = path.join(ROOT, "node_modules", ".cache", "sluice-bench")
export const HOST = "127.0.0.1"

/** Runs a command and returns its standard output, or "" when it cannot run. */
export const run = (cmd: Array<string>): string => {
  try {
    const result = Bun.spawnSync({ cmd, stdout: "pipe", stderr: "pipe" })
    return new TextDecoder().decode(result.stdout).trim()
  } catch {
    return ""
  }
}

/** Runs a build command: `undefined` when it worked, else what it printed. */
export const build = (cmd: Array<string>, env?: Record<string, string>): string | undefined => {
  try {
    const result = Bun.spawnSync({ cmd, cwd: ROOT, env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" })
    if (result.success) return undefined
    const text = new TextDecoder().decode(result.stderr).trim() || new TextDecoder().decode(result.stdout).trim()
    return text.split("\n").slice(0, 5).join(" / ") || "failed"
  } catch (error) {
    return error instanceof Error ? error.message : String(error)
  }
}

/** The path of a program on PATH, or undefined. */
export const which = (name: string): string | undefined => run(["sh", "-c", `command -v ${name}`]) || undefined

export const cores = os.cpus().length
export const pinned = which("taskset") !== undefined && cores >= 2
/** Servers run on core 0, load generators on core 1 (when `taskset` exists and there are 2 cores). */
export const pin = (core: number, cmd: Array<string>): Array<string> =>
  pinned ? ["taskset", "-c", String(core), ...cmd] : cmd

export const cpuModel = (): string => {
  try {
    const line = readFileSync("/proc/cpuinfo", "utf8").split("\n").find((l) => l.startsWith("model name"))
    return line?.split(":")[1]?.trim() ?? os.cpus()[0]?.model ?? "unknown"
  } catch {
    return os.cpus()[0]?.model ?? "unknown"
  }
}

/** Formats a generated file (Markdown, SVG, JSON) as `deno fmt`, the repository's format check, would. */
export const formatFile = (file: string): void => {
  try {
    Bun.spawnSync({ cmd: [DENO, "fmt", "--quiet", file], stdout: "pipe", stderr: "pipe" })
  } catch {
    // deno missing: leave the file as written
  }
}

// --- /proc ----------------------------------------------------------------------------------------------

/** A process's RSS or peak RSS, in MB. */
export const status = (pid: number, field: "VmRSS" | "VmHWM"): number | undefined => {
  try {
    const text = readFileSync(`/proc/${pid}/status`, "utf8")
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(text)
    return match === null ? undefined : Number(match[1]) / 1024
  } catch {
    return undefined
  }
}

/** Resets a process's peak RSS (VmHWM) to its current RSS; false when the kernel does not allow it. */
export const resetPeak = (pid: number): boolean => {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5")
    return true
  } catch {
    return false
  }
}

const CLK_TCK = 100
/** CPU seconds (user + system) a process has used, all its threads included. */
export const cpuOf = (pid: number): number | undefined => {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8")
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ")
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK
  } catch {
    return undefined
  }
}

/** Busy CPU seconds of the whole machine. */
export const machineBusy = (): number | undefined => {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n")[0]
    const v = line.trim().split(/\s+/).slice(1).map(Number)
    // user nice system idle iowait irq softirq steal
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / CLK_TCK
  } catch {
    return undefined
  }
}

// --- processes ------------------------------------------------------------------------------------------

const children = new Set<Child>()

export const spawn = (
  cmd: Array<string>,
  env: Record<string, string>,
  stdout: "pipe" | "inherit" | "ignore"
): Child => {
  const child = Bun.spawn({
    cmd,
    cwd: ROOT,
    env: { ...process.env, DENO_NO_UPDATE_CHECK: "1", ...env },
    stdin: "ignore",
    stdout,
    stderr: "inherit"
  })
  children.add(child)
  void child.exited.then(() => children.delete(child))
  return child
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

export const stop = async (child: Child, graceMs = 3000): Promise<void> => {
  if (child.exitCode !== null) return
  child.kill("SIGCONT") // a stopped process would not handle SIGTERM
  child.kill("SIGTERM")
  const exited = await Promise.race([child.exited.then(() => true), sleep(graceMs).then(() => false)])
  if (!exited) {
    child.kill("SIGKILL")
    await child.exited
  }
}

export const killAll = (): void => {
  for (const child of children) {
    try {
      child.kill("SIGKILL")
    } catch {
      // gone
    }
  }
}
process.on("exit", killAll)
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(signal, () => {
    console.error(`\n${signal}: stopping ${children.size} process(es)`)
    killAll()
    process.exit(130)
  })
}

/** Lines of a child's stdout, as they come. */
export async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder()
  let buffered = ""
  for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) {
    buffered += decoder.decode(chunk, { stream: true })
    let at: number
    while ((at = buffered.indexOf("\n")) !== -1) {
      yield buffered.slice(0, at)
      buffered = buffered.slice(at + 1)
    }
  }
  if (buffered.length > 0) yield buffered
}

export const waitForPort = async (port: number, child: Child, timeoutMs = 60_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`exited with code ${child.exitCode} before listening`)
    try {
      const socket = await Bun.connect({ hostname: HOST, port, socket: { data: () => {} } })
      socket.terminate()
      return
    } catch {
      await sleep(100)
    }
  }
  throw new Error(`port ${port} not open after ${timeoutMs / 1000} s`)
}
