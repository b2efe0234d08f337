/**
 * The HTTP example against each runtime's own HTTP server (`npm run bench:http`, run with Bun):
 * `wrk` with keep-alive on `GET /` (`hello, world!\n`), the sluice server (examples/http/server.ts)
 * and the reference (`Bun.serve`, `Deno.serve`, `node:http`: bench/protocols/http-*.ts) of the same
 * runtime in the same run.
 *
 * For each runtime, both servers run at once, each in its own process pinned to core 0 (with
 * `taskset`, when there is one and 2 cores), and `wrk -t 1` runs pinned to core 1. After a warm-up
 * run of each, rounds visit both servers in turn, so that drift on the machine hits both alike; the
 * median requests/s of each is reported, and the ratio sluice / reference, against the goals: Bun
 * and Deno at least 0.6x their own server, Node at least 1.0x `node:http`. Any wrk socket error or
 * non-2xx response fails the run.
 *
 * Each run also reads the server's CPU time (user + system, all its threads, from /proc) before and
 * after: requests per CPU second is what a server costs, and it holds still on a machine busy with
 * other work, where requests/s (what the server gets of a shared core) does not. Both ratios are
 * reported; the goals are checked on requests/s.
 *
 * Usage: `bun bench/protocols/http.ts [--runtimes bun,deno,node] [--seconds 5] [--warmup 2]
 *   [--rounds 3] [--connections 50] [--json FILE]`. Every process it starts is stopped on exit and
 *   on SIGINT. Exits 1 when a run failed; missed goals are reported, not failed (the machine's load
 *   moves the ratios).
 */
import * as childProcess from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import process from "node:process"
import { whileStopped } from "../lib/alone.ts"
import { option } from "../lib/args.ts"

type Runtime = "bun" | "deno" | "node"

const ROOT = path.resolve(import.meta.dirname ?? new URL(".", import.meta.url).pathname, "../..")
const BIN = path.join(ROOT, "node_modules", ".bin")
const HOST = "127.0.0.1"

const runtimes = (option("--runtimes") ?? "bun,deno,node").split(",") as Array<Runtime>
const seconds = Number(option("--seconds") ?? 5)
const warmup = Number(option("--warmup") ?? 2)
const rounds = Number(option("--rounds") ?? 3)
const connections = Number(option("--connections") ?? 50)
const jsonFile = option("--json")

const goals: Record<Runtime, { readonly ratio: number; readonly reference: string }> = {
  bun: { ratio: 0.6, reference: "Bun.serve" },
  deno: { ratio: 0.6, reference: "Deno.serve" },
  node: { ratio: 1.0, reference: "node:http" }
}

const which = (name: string): string | undefined => {
  const result = childProcess.spawnSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" })
  return result.status === 0 ? result.stdout.trim() : undefined
}
const wrk = which("wrk")
if (wrk === undefined) {
  console.error("bench:http needs wrk (Debian package wrk)")
  process.exit(64)
}
const cores = os.cpus().length
const pinned = which("taskset") !== undefined && cores >= 2
const pin = (core: number, cmd: Array<string>): Array<string> => pinned ? ["taskset", "-c", String(core), ...cmd] : cmd

const command = (runtime: Runtime, file: string): Array<string> => {
  switch (runtime) {
    case "bun":
      return [path.join(BIN, "bun"), file]
    case "deno":
      return [path.join(BIN, "deno"), "run", "-A", file]
    case "node":
      return [path.join(BIN, "node"), "--import", "tsx", file]
  }
}

// --- processes ----------------------------------------------------------------------------------------

const children = new Set<childProcess.ChildProcess>()
const killAll = () => {
  for (const child of children) child.kill("SIGKILL")
}
process.on("exit", killAll)
process.on("SIGINT", () => {
  killAll()
  process.exit(130)
})

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

const canConnect = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = net.connect({ host: HOST, port })
    socket.once("connect", () => {
      socket.destroy()
      resolve(true)
    })
    socket.once("error", () => resolve(false))
  })

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const probe = net.createServer()
    probe.once("error", reject)
    probe.listen(0, HOST, () => {
      const port = (probe.address() as net.AddressInfo).port
      probe.close(() => resolve(port))
    })
  })

interface Server {
  readonly name: string
  readonly port: number
  readonly child: childProcess.ChildProcess
}

const start = async (name: string, runtime: Runtime, file: string): Promise<Server> => {
  const port = await freePort()
  const [cmd, ...args] = pin(0, command(runtime, path.join(ROOT, file)))
  const child = childProcess.spawn(cmd!, args, {
    cwd: ROOT,
    env: { ...process.env, DENO_NO_UPDATE_CHECK: "1", HOST, PORT: String(port) },
    stdio: ["ignore", "ignore", "inherit"]
  })
  children.add(child)
  child.once("exit", () => children.delete(child))
  const deadline = Date.now() + 30_000
  while (!(await canConnect(port))) {
    if (child.exitCode !== null) throw new Error(`${name} exited with code ${child.exitCode} before listening`)
    if (Date.now() > deadline) throw new Error(`${name} did not listen on ${port} within 30 s`)
    await sleep(100)
  }
  return { name, port, child }
}

const stop = async (server: Server): Promise<void> => {
  if (server.child.exitCode !== null) return
  const exited = new Promise<void>((resolve) => server.child.once("exit", () => resolve()))
  server.child.kill("SIGTERM")
  const killer = setTimeout(() => server.child.kill("SIGKILL"), 5_000)
  await exited
  clearTimeout(killer)
}

// --- wrk -----------------------------------------------------------------------------------------------

interface Run {
  readonly requestsPerSecond: number
  /** Requests per CPU second of the server (undefined without /proc). */
  readonly requestsPerCpuSecond: number | undefined
  readonly errors: string | undefined
}

const CLK_TCK = 100
/** CPU seconds (user + system) a process has used, all its threads included. */
const cpuOf = (pid: number | undefined): number | undefined => {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ")
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK
  } catch {
    return undefined
  }
}

const load = (server: Server, duration: number): Run => {
  const cpuBefore = cpuOf(server.child.pid)
  const [cmd, ...args] = pin(1, [
    wrk,
    "-t",
    "1",
    "-c",
    String(connections),
    "-d",
    `${duration}s`,
    `http://${HOST}:${server.port}/`
  ])
  const result = childProcess.spawnSync(cmd!, args, { encoding: "utf8", timeout: (duration + 30) * 1000 })
  const output = `${result.stdout ?? ""}${result.stderr ?? ""}`
  const rate = /Requests\/sec:\s+([\d.]+)/.exec(output)
  const errors = [/Socket errors:.*/.exec(output)?.[0], /Non-2xx or 3xx responses:.*/.exec(output)?.[0]]
    .filter((e) => e !== undefined)
    .join("; ")
  const cpuAfter = cpuOf(server.child.pid)
  const requests = /(\d+) requests in/.exec(output)
  const cpu = cpuBefore === undefined || cpuAfter === undefined ? undefined : cpuAfter - cpuBefore
  return {
    requestsPerSecond: rate === null ? 0 : Number(rate[1]),
    requestsPerCpuSecond: cpu === undefined || cpu <= 0 || requests === null ? undefined : Number(requests[1]) / cpu,
    errors: result.status !== 0 || rate === null ? `wrk failed: ${output.trim()}` : errors || undefined
  }
}

const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

// --- the run -------------------------------------------------------------------------------------------

interface Result {
  readonly runtime: Runtime
  readonly reference: string
  /** Requests/s of each round. */
  readonly sluice: ReadonlyArray<number>
  readonly referenceRuns: ReadonlyArray<number>
  readonly ratio: number
  /** Requests per server CPU second of each round. */
  readonly sluiceCpu: ReadonlyArray<number>
  readonly referenceCpu: ReadonlyArray<number>
  readonly cpuRatio: number | undefined
  readonly goal: number
}

const version = (runtime: Runtime): string =>
  childProcess.spawnSync(command(runtime, "--version")[0]!, ["--version"], { encoding: "utf8" }).stdout.split("\n")[0]!
    .trim()

console.log(
  `bench:http: wrk -t 1 -c ${connections}, ${seconds} s per run after ${warmup} s warm-up, ${rounds} rounds; ` +
    `${pinned ? "servers on core 0, wrk on core 1" : "no pinning"}`
)
const results: Array<Result> = []
let failed = false
for (const runtime of runtimes) {
  const goal = goals[runtime]
  console.log(`\n==> ${runtime} (${version(runtime)}): sluice against ${goal.reference}`)
  const servers: Array<Server> = []
  try {
    servers.push(await start("sluice", runtime, "examples/http/server.ts"))
    servers.push(await start(goal.reference, runtime, `bench/protocols/http-${runtime}.ts`))
    for (const server of servers) load(server, warmup)
    const runs = new Map<string, Array<number>>(servers.map((s) => [s.name, []]))
    const cpuRuns = new Map<string, Array<number>>(servers.map((s) => [s.name, []]))
    for (let round = 1; round <= rounds; round++) {
      // Alternate which goes first, so that neither always runs right after the other.
      const order = round % 2 === 1 ? servers : [...servers].reverse()
      for (const server of order) {
        // The other server is stopped meanwhile (bench/lib/alone.ts).
        const others = servers.filter((s) => s !== server).map((s) => s.child)
        const run = whileStopped(others, () => load(server, seconds))
        if (run.errors !== undefined) {
          failed = true
          console.log(`  round ${round} ${server.name}: ${run.errors}`)
        }
        runs.get(server.name)!.push(run.requestsPerSecond)
        if (run.requestsPerCpuSecond !== undefined) cpuRuns.get(server.name)!.push(run.requestsPerCpuSecond)
        console.log(
          `  round ${round} ${server.name}: ${Math.round(run.requestsPerSecond)} requests/s` +
            (run.requestsPerCpuSecond === undefined
              ? ""
              : `, ${Math.round(run.requestsPerCpuSecond)} requests per CPU second`)
        )
      }
    }
    const sluice = runs.get("sluice")!
    const reference = runs.get(goal.reference)!
    const ratio = median(sluice) / median(reference)
    const sluiceCpu = cpuRuns.get("sluice")!
    const referenceCpu = cpuRuns.get(goal.reference)!
    const cpuRatio = sluiceCpu.length === rounds && referenceCpu.length === rounds
      ? median(sluiceCpu) / median(referenceCpu)
      : undefined
    results.push({
      runtime,
      reference: goal.reference,
      sluice,
      referenceRuns: reference,
      ratio,
      sluiceCpu,
      referenceCpu,
      cpuRatio,
      goal: goal.ratio
    })
  } catch (error) {
    failed = true
    console.log(`  FAILED: ${error instanceof Error ? error.message : String(error)}`)
  } finally {
    for (const server of servers) await stop(server)
  }
}

console.log(
  "\n| runtime | sluice (requests/s) | reference (requests/s) | ratio | goal | ratio of requests per CPU second |"
)
console.log(
  "| ------- | ------------------- | ---------------------- | ----- | ---- | -------------------------------- |"
)
for (const r of results) {
  const verdict = r.ratio >= r.goal ? "met" : "MISSED"
  console.log(
    `| ${r.runtime} | ${Math.round(median(r.sluice))} | ${Math.round(median(r.referenceRuns))} (${r.reference}) | ` +
      `${r.ratio.toFixed(2)}x | >= ${r.goal.toFixed(1)}x ${verdict} | ` +
      `${r.cpuRatio === undefined ? "-" : `${r.cpuRatio.toFixed(2)}x`} |`
  )
}
const loadAverage = fs.existsSync("/proc/loadavg") ? fs.readFileSync("/proc/loadavg", "utf8").split(" ")[0] : undefined
if (loadAverage !== undefined) console.log(`load average at the end: ${loadAverage} (on ${cores} cores)`)
if (jsonFile !== undefined) {
  fs.writeFileSync(jsonFile, JSON.stringify({ connections, seconds, rounds, pinned, results }, null, 2) + "\n")
}
process.exit(failed ? 1 : 0)
