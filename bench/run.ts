/**
 * The socket benchmark (`npm run bench`, run with Bun): sluice against the raw socket API of each
 * runtime and against Effect 4's own `effect/socket` SocketServer, on the echo protocol.
 *
 * For each runtime it starts every server of that runtime at once (each on its own port, pinned to
 * core 0 with `taskset` when it exists; idle servers cost nothing), waits for the ports, then runs
 * bench/loadgen.ts (pinned to core 1) against them:
 *
 * 1. 1000 x 1 x 64 B first, on fresh servers, then reads each server's peak RSS (VmHWM);
 * 2. 1 x 1 x 64 B (latency), 50 x 16 x 64 B (small-message throughput), 50 x 4 x 4 KiB (bandwidth),
 *    in rounds that visit every server in turn, so that drift on the machine hits all alike;
 * 3. a client that never reads while it keeps sending (bench/flood.ts), against the raw baseline,
 *    sluice and the platform server, bounded by time and by the server's RSS.
 *
 * Then the codec micro-benchmark (bench/codec.ts) on each runtime. Results go to
 * `<out>/results.json`, `<out>/README.md` (tables of ratios to the same runtime's raw baseline from
 * the same run; the text between the `notes` markers of an existing README is kept) and
 * `<out>/chart.svg`.
 *
 * Usage: `bun bench/run.ts [--quick] [--out DIR] [--runtimes bun,deno,node] [--duration s]
 *   [--warmup s] [--rounds n] [--flood-seconds s] [--flood-limit-mb n] [--no-codec] [--no-flood]
 *   [--scenarios connections,latency,throughput,bandwidth] [--servers raw,sluice-sync,...]`
 *
 * `--quick`: 2 s per run, fewer servers and scenarios, one round, results in $TMPDIR/sluice-bench
 * unless `--out` says otherwise. Every process it starts is stopped on exit, on error and on SIGINT.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import process from "node:process"

// --- the slice of Bun's API used here ---------------------------------------------------------------

interface Child {
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
  spawnSync(options: { readonly cmd: Array<string>; readonly stdout?: "pipe"; readonly stderr?: "pipe" }): {
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

const Bun = (globalThis as unknown as { Bun?: BunApi }).Bun
if (Bun === undefined) {
  console.error("bench/run.ts runs on Bun: `bun bench/run.ts` (or `npm run bench`)")
  process.exit(64)
}

// --- options ------------------------------------------------------------------------------------------

const ROOT = path.resolve(import.meta.dirname ?? path.dirname(new URL(import.meta.url).pathname), "..")
const BIN = path.join(ROOT, "node_modules", ".bin")
const argv = process.argv.slice(2)
const flag = (name: string): boolean => argv.includes(name)
const option = (name: string): string | undefined => {
  const at = argv.indexOf(name)
  return at === -1 ? undefined : argv[at + 1]
}
const quick = flag("--quick")
const out = path.resolve(
  option("--out") ?? (quick ? path.join(os.tmpdir(), "sluice-bench") : path.join(ROOT, "docs/bench"))
)
const runtimes = (option("--runtimes") ?? "bun,deno,node").split(",") as Array<RuntimeName>
const duration = Number(option("--duration") ?? (quick ? 2 : 4))
const warmup = Number(option("--warmup") ?? (quick ? 0.5 : 1))
const roundsOption = option("--rounds")
const floodSeconds = Number(option("--flood-seconds") ?? (quick ? 2 : 10))
const floodLimitMB = Number(option("--flood-limit-mb") ?? 2048)
const withCodec = !flag("--no-codec")
const withFlood = !flag("--no-flood")
/** A run during which the rest of the machine used more than this (% of one core) is repeated. */
const noisyPercent = Number(option("--noisy") ?? 25)
const retries = Number(option("--retries") ?? 2)
/** Seconds of repeated runs allowed in one bench run (then busy runs are kept as they are). */
let retryBudgetSeconds = Number(option("--retry-budget") ?? (quick ? 20 : 150))
/** How long to wait, before a run, for the rest of the machine to go quiet. */
const quietWaitSeconds = Number(option("--quiet-wait") ?? (quick ? 3 : 15))
/** All the waiting for quiet of one bench run, at most (then runs go ahead, busy or not). */
let quietBudgetSeconds = Number(option("--quiet-budget") ?? (quick ? 15 : 90))
const HOST = "127.0.0.1"
const BASE_PORT = Number(option("--port") ?? 17400)

// --- machine ------------------------------------------------------------------------------------------

const run = (cmd: Array<string>): string => {
  try {
    const result = Bun.spawnSync({ cmd, stdout: "pipe", stderr: "pipe" })
    return new TextDecoder().decode(result.stdout).trim()
  } catch {
    return ""
  }
}

const hasTaskset = run(["sh", "-c", "command -v taskset"]) !== ""
const cores = os.cpus().length
const pinned = hasTaskset && cores >= 2
const pin = (core: number, cmd: Array<string>): Array<string> => pinned ? ["taskset", "-c", String(core), ...cmd] : cmd

const cpuModel = (): string => {
  try {
    const line = readFileSync("/proc/cpuinfo", "utf8").split("\n").find((l) => l.startsWith("model name"))
    return line?.split(":")[1]?.trim() ?? os.cpus()[0]?.model ?? "unknown"
  } catch {
    return os.cpus()[0]?.model ?? "unknown"
  }
}

const BUN = path.join(BIN, "bun")
const DENO = path.join(BIN, "deno")
/** Node 24 from the `node` devDependency: never whatever `node` is on PATH. */
const NODE = path.join(BIN, "node")
const versions = {
  bun: run([BUN, "--version"]),
  deno: run([DENO, "--version"]).split("\n")[0]?.replace(/^deno /, "").split(" ")[0] ?? "",
  node: run([NODE, "--version"]).replace(/^v/, ""),
  loadgen: `bun ${Bun.version}`
}

/** Formats a generated file (Markdown, SVG, JSON) as `deno fmt`, the repository's format check, would. */
const formatFile = (file: string): void => {
  try {
    Bun.spawnSync({ cmd: [DENO, "fmt", "--quiet", file], stdout: "pipe", stderr: "pipe" })
  } catch {
    // deno missing: leave the file as written
  }
}

// --- /proc ----------------------------------------------------------------------------------------------

const status = (pid: number, field: "VmRSS" | "VmHWM"): number | undefined => {
  try {
    const text = readFileSync(`/proc/${pid}/status`, "utf8")
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(text)
    return match === null ? undefined : Number(match[1]) / 1024
  } catch {
    return undefined
  }
}

/** Resets a process's peak RSS (VmHWM) to its current RSS; false when the kernel does not allow it. */
const resetPeak = (pid: number): boolean => {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5")
    return true
  } catch {
    return false
  }
}

const CLK_TCK = 100
/** CPU seconds (user + system) a process has used, all its threads included. */
const cpuOf = (pid: number): number | undefined => {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8")
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ")
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK
  } catch {
    return undefined
  }
}

/** Busy CPU seconds of the whole machine. */
const machineBusy = (): number | undefined => {
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

const spawn = (cmd: Array<string>, env: Record<string, string>, stdout: "pipe" | "inherit" | "ignore"): Child => {
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

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

const stop = async (child: Child, graceMs = 3000): Promise<void> => {
  if (child.exitCode !== null) return
  child.kill("SIGTERM")
  const exited = await Promise.race([child.exited.then(() => true), sleep(graceMs).then(() => false)])
  if (!exited) {
    child.kill("SIGKILL")
    await child.exited
  }
}

const killAll = (): void => {
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
async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
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

const waitForPort = async (port: number, child: Child, timeoutMs = 60_000): Promise<void> => {
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

// --- servers ---------------------------------------------------------------------------------------------

type RuntimeName = "bun" | "deno" | "node"
/** `reference`: the raw server with Effect's modules loaded and unused, to tell their fixed cost from sluice's. */
type Kind = "raw" | "reference" | "sluice" | "platform"

interface ServerSpec {
  readonly id: string
  readonly runtime: RuntimeName
  readonly kind: Kind
  readonly handler?: "sync" | "succeed" | "handler-gen" | "gen"
  readonly label: string
  readonly file: string
  readonly env?: Record<string, string>
  readonly flood: boolean
}

/**
 * Node runs each server as JavaScript, as it would be deployed: the TypeScript is compiled first
 * (`bun build --target=node`, dependencies left as imports from node_modules). Run through tsx
 * instead, every server would also carry tsx and its compiled sources: ~75 MB more idle RSS for
 * sluice, ~25 MB for raw.
 */
const nodeBuilds = new Map<string, string>()
const nodeEntry = (file: string): string => {
  const built = nodeBuilds.get(file)
  if (built !== undefined) return built
  const out = path.join(ROOT, "node_modules", ".cache", "sluice-bench", path.basename(file).replace(/\.ts$/, ".mjs"))
  const result = Bun.spawnSync({
    cmd: [BUN, "build", file, "--target=node", "--packages=external", "--outfile", out],
    stdout: "pipe",
    stderr: "pipe"
  })
  if (!result.success) throw new Error(`bun build ${file} failed: ${new TextDecoder().decode(result.stderr)}`)
  nodeBuilds.set(file, out)
  return out
}

const command = (runtime: RuntimeName, file: string): Array<string> =>
  runtime === "bun" ? [BUN, file] : runtime === "deno" ? [DENO, "run", "-A", file] : [NODE, nodeEntry(file)]

const serverSpecs = (runtime: RuntimeName): Array<ServerSpec> => {
  const specs: Array<ServerSpec> = [
    {
      id: `${runtime}-raw`,
      runtime,
      kind: "raw",
      label: "raw",
      file: `bench/servers/raw-${runtime}.ts`,
      flood: true
    }
  ]
  if (!quick) {
    specs.push({
      id: `${runtime}-raw-effect`,
      runtime,
      kind: "reference",
      label: "raw + effect loaded",
      file: `bench/servers/raw-${runtime}.ts`,
      env: { IMPORT_EFFECT: "1" },
      flood: false
    })
  }
  // On Bun, the four handler shapes, each under its own name; elsewhere the sync handler.
  const handlers = runtime === "bun" ? ["sync", "succeed", "handler-gen", "gen"] as const : ["sync"] as const
  for (const handler of handlers) {
    specs.push({
      id: `${runtime}-sluice-${handler}`,
      runtime,
      kind: "sluice",
      handler,
      label: `sluice (${handler})`,
      file: "bench/servers/sluice.ts",
      flood: handler === "sync"
    })
  }
  if (runtime !== "deno") {
    specs.push({
      id: `${runtime}-platform`,
      runtime,
      kind: "platform",
      label: "effect/socket SocketServer",
      file: "bench/servers/effect-socket.ts",
      env: { PLATFORM_STYLE: "message" },
      flood: !quick
    })
    if (!quick) {
      specs.push({
        id: `${runtime}-platform-batched`,
        runtime,
        kind: "platform",
        label: "effect/socket SocketServer, batched",
        file: "bench/servers/effect-socket.ts",
        env: { PLATFORM_STYLE: "batched" },
        flood: false
      })
    }
  }
  // `--servers raw,sluice-sync`: only these (the raw baseline is always kept: every ratio needs it).
  const only = option("--servers")?.split(",")
  return only === undefined
    ? specs
    : specs.filter((spec) => spec.kind === "raw" || only.some((name) => spec.id === `${runtime}-${name}`))
}

interface Running {
  readonly spec: ServerSpec
  readonly port: number
  readonly child: Child
  idleRssMB: number | undefined
}

// --- scenarios -------------------------------------------------------------------------------------------

interface Scenario {
  readonly id: "connections" | "latency" | "throughput" | "bandwidth"
  readonly label: string
  readonly connections: number
  readonly inflight: number
  readonly payload: number
  readonly rounds: number
}

const scenarios: Array<Scenario> = [
  { id: "connections", label: "1000 x 1 x 64 B", connections: 1000, inflight: 1, payload: 64, rounds: 1 },
  { id: "latency", label: "1 x 1 x 64 B", connections: 1, inflight: 1, payload: 64, rounds: quick ? 1 : 1 },
  { id: "throughput", label: "50 x 16 x 64 B", connections: 50, inflight: 16, payload: 64, rounds: quick ? 1 : 3 },
  { id: "bandwidth", label: "50 x 4 x 4 KiB", connections: 50, inflight: 4, payload: 4096, rounds: quick ? 1 : 2 }
].filter((s) =>
  option("--scenarios") !== undefined
    ? option("--scenarios")!.split(",").includes(s.id)
    : !quick || s.id !== "bandwidth"
) as Array<Scenario>

interface LoadResult {
  readonly messagesPerSec: number
  readonly mbPerSec: number
  readonly latencyMs: {
    readonly mean: number
    readonly p50: number
    readonly p99: number
    readonly p999: number
    readonly max: number
  }
  readonly loadgenCpuPercent: number
  readonly connectMs: number
  readonly messages: number
}

interface Sample extends LoadResult {
  readonly round: number
  /** Runs made for this sample: more than 1 when the machine was busy during a run. */
  readonly attempts: number
  readonly serverCpuPercent: number | undefined
  readonly otherCpuPercent: number | undefined
}

interface Entry {
  readonly server: string
  readonly runtime: RuntimeName
  readonly kind: Kind
  readonly handler: string | undefined
  readonly label: string
  readonly scenario: Scenario["id"]
  samples: Array<Sample>
  error?: string
  /** Median of the samples' figures. */
  result?: Sample
  peakRssMB?: number | undefined
  rssAfterMB?: number | undefined
  idleRssMB?: number | undefined
}

/** The fastest sample: noise from the rest of a shared machine only ever slows a run down. */
const bestSample = (samples: Array<Sample>): Sample =>
  samples.reduce((best, s) => s.messagesPerSec > best.messagesPerSec ? s : best)

/** CPU used by the rest of the machine (% of one core) over `ms`, the server's own use left out. */
const backgroundPercent = async (servers: ReadonlyArray<Running>, ms: number): Promise<number | undefined> => {
  const busy0 = machineBusy()
  const own0 = servers.reduce((sum, s) => sum + (cpuOf(s.child.pid) ?? 0), 0)
  const t0 = performance.now()
  await sleep(ms)
  const busy1 = machineBusy()
  const own1 = servers.reduce((sum, s) => sum + (cpuOf(s.child.pid) ?? 0), 0)
  if (busy0 === undefined || busy1 === undefined) return undefined
  return Math.max(0, ((busy1 - busy0 - (own1 - own0)) / ((performance.now() - t0) / 1000)) * 100)
}

/** Waits (up to `quietWaitSeconds`) until the rest of the machine uses less than `noisyPercent` of a core. */
const waitForQuiet = async (servers: ReadonlyArray<Running>): Promise<number | undefined> => {
  const started = performance.now()
  const deadline = started + Math.min(quietWaitSeconds, quietBudgetSeconds) * 1000
  let background = await backgroundPercent(servers, 300)
  while (background !== undefined && background > noisyPercent && performance.now() < deadline) {
    background = await backgroundPercent(servers, 500)
  }
  quietBudgetSeconds = Math.max(0, quietBudgetSeconds - (performance.now() - started) / 1000)
  return background
}

/**
 * One measurement: waits for the machine to be quiet, runs the load generator, and repeats the run
 * (up to `retries` times) when the rest of the machine was busy during it; keeps the quietest run.
 */
const runLoad = async (
  server: Running,
  scenario: Scenario,
  all: ReadonlyArray<Running>
): Promise<LoadResult & Partial<Sample> & { attempts: number }> => {
  let best: (LoadResult & Partial<Sample>) | undefined
  let attempts = 0
  for (let attempt = 0; attempt <= retries; attempt++) {
    if (attempt > 0) {
      const cost = warmup + duration + 1
      if (retryBudgetSeconds < cost) break
      retryBudgetSeconds -= cost
    }
    attempts++
    await waitForQuiet(all)
    const result = await runLoadOnce(server, scenario)
    if (best === undefined || result.messagesPerSec > best.messagesPerSec) best = result
    if ((result.otherCpuPercent ?? 0) <= noisyPercent) break
  }
  return { ...best!, attempts }
}

const runLoadOnce = async (server: Running, scenario: Scenario): Promise<LoadResult & Partial<Sample>> => {
  const cmd = pin(1, [
    BUN,
    "bench/loadgen.ts",
    "--host",
    HOST,
    "--port",
    String(server.port),
    "--connections",
    String(scenario.connections),
    "--inflight",
    String(scenario.inflight),
    "--payload",
    String(scenario.payload),
    "--duration",
    String(duration),
    "--warmup",
    String(warmup),
    "--json"
  ])
  const child = spawn(cmd, {}, "pipe")
  const timer = setTimeout(() => child.kill("SIGKILL"), (warmup + duration + 90) * 1000)
  let start:
    | { server: number | undefined; loadgen: number | undefined; machine: number | undefined; at: number }
    | undefined
  let serverCpu: number | undefined
  let otherCpu: number | undefined
  let result: LoadResult | undefined
  try {
    for await (const line of lines(child.stdout)) {
      if (line === "#window-start") {
        start = {
          server: cpuOf(server.child.pid),
          loadgen: cpuOf(child.pid),
          machine: machineBusy(),
          at: performance.now()
        }
      } else if (line === "#window-end" && start !== undefined) {
        const seconds = (performance.now() - start.at) / 1000
        const s = cpuOf(server.child.pid)
        const l = cpuOf(child.pid)
        const m = machineBusy()
        if (s !== undefined && start.server !== undefined) serverCpu = ((s - start.server) / seconds) * 100
        if (
          s !== undefined && l !== undefined && m !== undefined && start.server !== undefined &&
          start.loadgen !== undefined && start.machine !== undefined
        ) {
          otherCpu = Math.max(0, ((m - start.machine - (s - start.server) - (l - start.loadgen)) / seconds) * 100)
        }
      } else if (line.startsWith("{")) {
        result = JSON.parse(line) as LoadResult
      }
    }
    const code = await child.exited
    if (code !== 0 || result === undefined) throw new Error(`loadgen exited with code ${code}`)
  } finally {
    clearTimeout(timer)
  }
  if (server.child.exitCode !== null) throw new Error(`server exited with code ${server.child.exitCode}`)
  return {
    ...result,
    serverCpuPercent: serverCpu === undefined ? undefined : Number(serverCpu.toFixed(1)),
    otherCpuPercent: otherCpu === undefined ? undefined : Number(otherCpu.toFixed(1))
  }
}

// --- the never-reading client ---------------------------------------------------------------------------

interface FloodResult {
  readonly server: string
  readonly runtime: RuntimeName
  readonly kind: Kind
  readonly label: string
  readonly rssBeforeMB: number | undefined
  readonly peakRssMB: number | undefined
  readonly growthMB: number | undefined
  readonly rssAfterMB: number | undefined
  readonly stoppedBy: "time" | "rss-limit"
  readonly seconds: number
  readonly timeline: Array<[number, number]>
  readonly client?: {
    readonly sentMB: number
    readonly sentInFirstSecondMB: number
    readonly closedByServer: number
    readonly firstCloseAfterSeconds: number | null
    readonly closeReason: string | null
  }
  readonly error?: string
}

const runFlood = async (server: Running): Promise<FloodResult> => {
  const pid = server.child.pid
  const before = status(pid, "VmRSS")
  const peakReset = resetPeak(pid)
  const child = spawn(
    pin(1, [
      BUN,
      "bench/flood.ts",
      "--host",
      HOST,
      "--port",
      String(server.port),
      "--duration",
      String(floodSeconds),
      "--json"
    ]),
    {},
    "pipe"
  )
  const started = performance.now()
  let peak = before ?? 0
  let stoppedBy: "time" | "rss-limit" = "time"
  const timeline: Array<[number, number]> = []
  let lastMark = -1
  let done = false
  const poll = (async () => {
    while (!done) {
      const rss = status(pid, "VmRSS")
      const t = (performance.now() - started) / 1000
      if (rss !== undefined) {
        if (rss > peak) peak = rss
        const mark = Math.floor(t * 2)
        if (mark !== lastMark) {
          lastMark = mark
          timeline.push([Number(t.toFixed(1)), Math.round(rss)])
        }
        if (rss > floodLimitMB && stoppedBy === "time") {
          stoppedBy = "rss-limit"
          child.kill("SIGTERM")
        }
      }
      await sleep(50)
    }
  })()
  const timer = setTimeout(() => child.kill("SIGKILL"), (floodSeconds + 30) * 1000)
  let client: FloodResult["client"]
  try {
    for await (const line of lines(child.stdout)) {
      if (line.startsWith("{")) client = JSON.parse(line)
    }
    await child.exited
  } finally {
    clearTimeout(timer)
    done = true
    await poll
  }
  const seconds = (performance.now() - started) / 1000
  await sleep(1000)
  // VmHWM catches what the polling missed, once it has been reset to leave earlier runs out.
  const hwm = peakReset ? status(pid, "VmHWM") : undefined
  if (hwm !== undefined && hwm > peak) peak = hwm
  return {
    server: server.spec.id,
    runtime: server.spec.runtime,
    kind: server.spec.kind,
    label: server.spec.label,
    rssBeforeMB: before === undefined ? undefined : Math.round(before),
    peakRssMB: Math.round(peak),
    growthMB: before === undefined ? undefined : Math.round(peak - before),
    rssAfterMB: (() => {
      const rss = status(pid, "VmRSS")
      return rss === undefined ? undefined : Math.round(rss)
    })(),
    stoppedBy,
    seconds: Number(seconds.toFixed(1)),
    timeline,
    ...(client !== undefined ? { client } : { error: "the flood client printed no result" })
  }
}

// --- codec micro-benchmark ------------------------------------------------------------------------------

const runCodec = async (): Promise<Array<unknown>> => {
  const dir = path.join(os.tmpdir(), "sluice-bench-codec")
  mkdirSync(dir, { recursive: true })
  const extra = quick ? ["--runs", "1", "--seconds", "0.2"] : []
  const commands: Array<[RuntimeName, Array<string>]> = [
    ["bun", [BUN, "bench/codec.ts"]],
    ["deno", [DENO, "run", "-A", "--v8-flags=--expose-gc", "bench/codec.ts"]],
    ["node", [NODE, "--expose-gc", "--import", "tsx", "bench/codec.ts"]]
  ]
  const reports: Array<unknown> = []
  for (const [name, cmd] of commands) {
    if (!runtimes.includes(name)) continue
    const file = path.join(dir, `codec-${name}.json`)
    console.log(`\n==> codec micro-benchmark on ${name}`)
    const child = spawn(pin(0, [...cmd, "--json", file, ...extra]), {}, "inherit")
    const code = await child.exited
    if (code !== 0 && !existsSync(file)) {
      reports.push({ runtime: name, error: `exited with code ${code}` })
      continue
    }
    reports.push(JSON.parse(readFileSync(file, "utf8")))
  }
  return reports
}

// --- main -----------------------------------------------------------------------------------------------

const fmtRate = (n: number) => n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : `${(n / 1e3).toFixed(1)}k`
const fmtPct = (n: number | undefined) => n === undefined ? "-" : `${n.toFixed(0)}%`

const main = async (): Promise<void> => {
  const started = Date.now()
  const entries: Array<Entry> = []
  const floods: Array<FloodResult> = []
  const loadBefore = os.loadavg()
  console.log(
    `sluice socket benchmark${quick ? " (quick)" : ""}: ${cores} x ${cpuModel()}, ` +
      `bun ${versions.bun}, deno ${versions.deno}, node ${versions.node}; ` +
      `${pinned ? "servers on core 0, load generator on core 1" : "no pinning (taskset missing or 1 core)"}; ` +
      `${duration} s per run after ${warmup} s warm-up; results to ${out}`
  )
  if (loadBefore[0] > 0.5) {
    console.log(`note: the machine is busy before the run (load average ${loadBefore[0].toFixed(2)})`)
  }
  const total = runtimes.reduce(
    (n, r) =>
      n + serverSpecs(r).length * scenarios.reduce((m, s) => m + (roundsOption ? Number(roundsOption) : s.rounds), 0),
    0
  )
  let step = 0

  let port = BASE_PORT
  for (const runtime of runtimes) {
    const specs = serverSpecs(runtime)
    console.log(`\n==> ${runtime}: starting ${specs.map((s) => s.id).join(", ")}`)
    const servers: Array<Running> = []
    try {
      for (const spec of specs) {
        const p = port++
        const child = spawn(
          pin(0, command(runtime, spec.file)),
          { PORT: String(p), HOST, ...(spec.handler !== undefined ? { HANDLER: spec.handler } : {}), ...spec.env },
          "ignore"
        )
        servers.push({ spec, port: p, child, idleRssMB: undefined })
      }
      for (const server of servers) {
        await waitForPort(server.port, server.child)
        await sleep(200)
        server.idleRssMB = status(server.child.pid, "VmRSS")
      }

      const entryOf = (server: Running, scenario: Scenario): Entry => {
        let entry = entries.find((e) => e.server === server.spec.id && e.scenario === scenario.id)
        if (entry === undefined) {
          entry = {
            server: server.spec.id,
            runtime,
            kind: server.spec.kind,
            handler: server.spec.handler,
            label: server.spec.label,
            scenario: scenario.id,
            samples: []
          }
          entries.push(entry)
        }
        return entry
      }

      for (const scenario of scenarios) {
        const rounds = roundsOption !== undefined ? Number(roundsOption) : scenario.rounds
        for (let round = 1; round <= rounds; round++) {
          let rawRate: number | undefined
          let rawP99: number | undefined
          for (const server of servers) {
            step++
            const entry = entryOf(server, scenario)
            const head = `[${step}/${total}] ${runtime} ${server.spec.label} ${scenario.label}` +
              (rounds > 1 ? ` round ${round}/${rounds}` : "")
            if (entry.error !== undefined) {
              console.log(`${head}: skipped (${entry.error})`)
              continue
            }
            try {
              if (scenario.id === "connections") resetPeak(server.child.pid)
              const r = await runLoad(server, scenario, servers)
              const sample: Sample = {
                ...r,
                round,
                serverCpuPercent: r.serverCpuPercent,
                otherCpuPercent: r.otherCpuPercent
              }
              entry.samples.push(sample)
              if (server.spec.kind === "raw") {
                rawRate = r.messagesPerSec
                rawP99 = r.latencyMs.p99
              }
              let line = `${head}: ${fmtRate(r.messagesPerSec)} msg/s`
              if (server.spec.kind !== "raw" && rawRate !== undefined) {
                line += ` (${(r.messagesPerSec / rawRate).toFixed(2)}x raw)`
              }
              line += `, ${r.mbPerSec} MB/s, p50 ${r.latencyMs.p50.toFixed(3)} ms, p99 ${r.latencyMs.p99.toFixed(3)} ms`
              if (server.spec.kind !== "raw" && rawP99 !== undefined && scenario.id === "latency") {
                line += ` (${(r.latencyMs.p99 / rawP99).toFixed(2)}x raw)`
              }
              line += `; cpu: loadgen ${fmtPct(r.loadgenCpuPercent)}, server ${fmtPct(r.serverCpuPercent)}, ` +
                `other ${fmtPct(r.otherCpuPercent)}` + (r.attempts > 1 ? ` (${r.attempts} attempts: machine busy)` : "")
              if (scenario.id === "connections") {
                entry.peakRssMB = status(server.child.pid, "VmHWM")
                entry.rssAfterMB = status(server.child.pid, "VmRSS")
                entry.idleRssMB = server.idleRssMB
                line += `; server peak RSS ${entry.peakRssMB?.toFixed(0)} MB (idle ${server.idleRssMB?.toFixed(0)} MB)`
              }
              console.log(line)
            } catch (error) {
              entry.error = error instanceof Error ? error.message : String(error)
              console.log(`${head}: FAILED: ${entry.error}`)
            }
          }
        }
      }

      if (withFlood) {
        for (const server of servers) {
          if (!server.spec.flood || server.child.exitCode !== null) continue
          console.log(
            `[flood] ${runtime} ${server.spec.label}: a client that never reads sends for up to ${floodSeconds} s ` +
              `(stops at ${floodLimitMB} MB server RSS)...`
          )
          const f = await runFlood(server)
          floods.push(f)
          console.log(
            `[flood] ${runtime} ${server.spec.label}: RSS ${f.rssBeforeMB} -> peak ${f.peakRssMB} MB ` +
              `(+${f.growthMB} MB, stopped by ${f.stoppedBy} after ${f.seconds} s); client sent ${
                f.client?.sentMB ?? "?"
              } MB` +
              (f.client !== undefined && f.client.closedByServer > 0
                ? `, closed by the server after ${f.client.firstCloseAfterSeconds} s`
                : "")
          )
          // A baseline that buffered gigabytes has nothing more to show.
          if (f.kind !== "sluice") await stop(server.child, 1000)
        }
      }
    } finally {
      await Promise.all(servers.map((s) => stop(s.child)))
    }
  }

  for (const entry of entries) {
    if (entry.samples.length > 0) entry.result = bestSample(entry.samples)
  }

  const codec = withCodec ? await runCodec() : []

  const report = {
    bench: "sockets",
    date: new Date(started).toISOString(),
    command: `npm run bench${argv.length > 0 ? ` -- ${argv.join(" ")}` : ""}`,
    quick,
    minutes: Number(((Date.now() - started) / 60000).toFixed(1)),
    machine: {
      cores,
      cpuModel: cpuModel(),
      memoryGB: Number((os.totalmem() / 2 ** 30).toFixed(1)),
      kernel: os.release(),
      pinned,
      loadAverageBefore: loadBefore.map((n) => Number(n.toFixed(2))),
      loadAverageAfter: os.loadavg().map((n) => Number(n.toFixed(2)))
    },
    versions,
    settings: { duration, warmup, floodSeconds, floodLimitMB, scenarios },
    notes: {
      messagesPerSec: "replies verified by the load generator per second of the measured window; with several " +
        "rounds (and with runs repeated because the machine was busy) the fastest run is kept, with its latencies",
      mbPerSec: "bytes of replies (header + payload) per second, one direction",
      cpu: "% of one core over the measured window: loadgen = the load generator process, server = the server " +
        "process (all threads), other = everything else on the machine",
      ratio: "figure / the same runtime's raw baseline in the same run"
    },
    results: entries,
    flood: floods,
    codec
  }
  mkdirSync(out, { recursive: true })
  writeFileSync(path.join(out, "results.json"), JSON.stringify(report, null, 2) + "\n")
  const readme = path.join(out, "README.md")
  const previous = existsSync(readme) ? readFileSync(readme, "utf8") : undefined
  writeFileSync(readme, renderReadme(report, previous))
  formatFile(readme)
  writeFileSync(path.join(out, "chart.svg"), renderChart(report))
  formatFile(path.join(out, "chart.svg"))
  console.log(`\n${renderHeadline(report)}`)
  console.log(`\nwritten: ${path.join(out, "results.json")}, README.md, chart.svg (${report.minutes} min)`)
}

// --- report -----------------------------------------------------------------------------------------------

type Report = {
  readonly date: string
  readonly command: string
  readonly quick: boolean
  readonly minutes: number
  readonly machine: {
    readonly cores: number
    readonly cpuModel: string
    readonly pinned: boolean
    readonly loadAverageBefore: Array<number>
    readonly loadAverageAfter: Array<number>
    readonly memoryGB: number
  }
  readonly versions: typeof versions
  readonly settings: {
    readonly duration: number
    readonly warmup: number
    readonly floodSeconds: number
    readonly scenarios: Array<Scenario>
  }
  readonly results: Array<Entry>
  readonly flood: Array<FloodResult>
  readonly codec: Array<unknown>
}

const find = (report: Report, server: string, scenario: Scenario["id"]): Entry | undefined =>
  report.results.find((e) => e.server === server && e.scenario === scenario)

const rawOf = (report: Report, entry: Entry): Entry | undefined => find(report, `${entry.runtime}-raw`, entry.scenario)

const ratio = (a: number | undefined, b: number | undefined): number | undefined =>
  a === undefined || b === undefined || b === 0 ? undefined : a / b

/** Messages per second of the server's own CPU time: what it costs, whatever else ran on its core. */
const perCpu = (e: Entry | undefined): number | undefined =>
  e?.result?.serverCpuPercent === undefined || e.result.serverCpuPercent <= 0
    ? undefined
    : e.result.messagesPerSec / (e.result.serverCpuPercent / 100)

const fx = (n: number | undefined, digits = 2) => n === undefined ? "-" : `${n.toFixed(digits)}x`

interface Target {
  readonly text: string
  readonly value: number | undefined
  readonly shown: string
  readonly met: boolean | undefined
}

const targets = (report: Report): Array<Target> => {
  const list: Array<Target> = []
  const msgRatio = (server: string, scenario: Scenario["id"]) => {
    const e = find(report, server, scenario)
    return e === undefined ? undefined : ratio(e.result?.messagesPerSec, rawOf(report, e)?.result?.messagesPerSec)
  }
  const add = (text: string, value: number | undefined, min: number | undefined, max?: number) =>
    list.push({
      text,
      value,
      shown: fx(value),
      met: value === undefined ? undefined : (min === undefined || value >= min) && (max === undefined || value <= max)
    })
  const info = (text: string, value: number | undefined) =>
    list.push({ text: `(information) ${text}`, value, shown: fx(value), met: undefined })
  add("Bun 50x16x64B, sync handler >= 0.9x raw", msgRatio("bun-sluice-sync", "throughput"), 0.9)
  add("Bun 50x16x64B, Handler.effect(Effect.succeed) >= 0.9x raw", msgRatio("bun-sluice-succeed", "throughput"), 0.9)
  add("Bun 50x16x64B, Handler.gen >= 0.85x raw", msgRatio("bun-sluice-handler-gen", "throughput"), 0.85)
  add(
    "Bun 50x16x64B, Handler.effect(() => Effect.gen(...)) per message >= 0.7x raw",
    msgRatio("bun-sluice-gen", "throughput"),
    0.7
  )
  add("Deno 50x16x64B, sync >= 0.8x raw", msgRatio("deno-sluice-sync", "throughput"), 0.8)
  add("Node 50x16x64B, sync >= 0.8x raw", msgRatio("node-sluice-sync", "throughput"), 0.8)
  for (const runtime of ["bun", "deno", "node"] as const) {
    const e = find(report, `${runtime}-sluice-sync`, "latency")
    if (e !== undefined) {
      add(
        `${runtime} 1x1x64B p99 latency <= 1.2x raw`,
        ratio(e.result?.latencyMs.p99, rawOf(report, e)?.result?.latencyMs.p99),
        undefined,
        1.2
      )
    }
  }
  for (const runtime of ["bun", "deno", "node"] as const) {
    if (find(report, `${runtime}-sluice-sync`, "bandwidth") !== undefined) {
      add(`${runtime} 50x4x4KiB >= 0.9x raw`, msgRatio(`${runtime}-sluice-sync`, "bandwidth"), 0.9)
      if (find(report, `${runtime}-raw-effect`, "bandwidth") !== undefined) {
        info(
          `${runtime} 50x4x4KiB: the raw server with Effect's modules loaded (and unused), x raw`,
          msgRatio(`${runtime}-raw-effect`, "bandwidth")
        )
      }
    }
  }
  for (const runtime of ["bun", "deno", "node"] as const) {
    const e = find(report, `${runtime}-sluice-sync`, "connections")
    if (e !== undefined) {
      const raw = rawOf(report, e)
      add(`${runtime} 1000 conns peak RSS <= 1.3x raw`, ratio(e.peakRssMB, raw?.peakRssMB), undefined, 1.3)
      const growth = (x: Entry | undefined) =>
        x?.peakRssMB === undefined || x.idleRssMB === undefined ? undefined : x.peakRssMB - x.idleRssMB
      info(
        `${runtime} 1000 conns: peak RSS minus idle RSS (per-connection memory), x raw`,
        ratio(growth(e), growth(raw))
      )
      const reference = find(report, `${runtime}-raw-effect`, "connections")
      if (reference !== undefined) {
        info(
          `${runtime} 1000 conns: peak RSS of the raw server with Effect's modules loaded (and unused), x raw`,
          ratio(reference.peakRssMB, raw?.peakRssMB)
        )
      }
    }
  }
  for (const runtime of ["bun", "node"] as const) {
    const s = find(report, `${runtime}-sluice-sync`, "throughput")
    const p = find(report, `${runtime}-platform`, "throughput")
    if (s !== undefined && p !== undefined) {
      add(
        `${runtime} 50x16x64B sluice / Effect 4's effect/socket SocketServer (idiomatic)`,
        ratio(s.result?.messagesPerSec, p.result?.messagesPerSec),
        1
      )
    }
    const b = find(report, `${runtime}-platform-batched`, "throughput")
    if (s !== undefined && b !== undefined) {
      info(
        `${runtime} 50x16x64B sluice / effect/socket SocketServer in its most favourable (batched) shape`,
        ratio(s.result?.messagesPerSec, b.result?.messagesPerSec)
      )
    }
  }
  return list
}

const servers = (report: Report, runtime: RuntimeName): Array<Entry> => {
  const seen = new Set<string>()
  return report.results.filter((e) => e.runtime === runtime && !seen.has(e.server) && seen.add(e.server))
}

const renderHeadline = (report: Report): string => {
  const rows: Array<string> = [
    "| runtime | server | 1x1x64B msg/s | 1x1x64B p99 | 50x16x64B msg/s | 50x16x64B msg per server CPU-s | " +
    "50x4x4KiB msg/s | 1000x1x64B msg/s | 1000 conns peak RSS |",
    "|---|---|---|---|---|---|---|---|---|"
  ]
  type Figure = "msg" | "p99" | "rss" | "cpu"
  const value = (e: Entry, figure: Figure): number | undefined =>
    figure === "msg"
      ? e.result?.messagesPerSec
      : figure === "p99"
      ? e.result?.latencyMs.p99
      : figure === "cpu"
      ? perCpu(e)
      : e.peakRssMB
  const absolute = (v: number, figure: Figure): string =>
    figure === "msg" || figure === "cpu" ? fmtRate(v) : figure === "p99" ? `${v.toFixed(3)} ms` : `${v.toFixed(0)} MB`
  for (const runtime of ["bun", "deno", "node"] as const) {
    for (const s of servers(report, runtime)) {
      const cell = (scenario: Scenario["id"], figure: Figure): string => {
        const e = find(report, s.server, scenario)
        if (e === undefined) return "-"
        if (e.error !== undefined) return "failed"
        const v = value(e, figure)
        if (s.kind === "raw") return v === undefined ? "-" : absolute(v, figure)
        const raw = rawOf(report, e)
        return fx(ratio(v, raw === undefined ? undefined : value(raw, figure)))
      }
      rows.push(
        `| ${runtime} | ${s.label} | ${cell("latency", "msg")} | ${cell("latency", "p99")} | ` +
          `${cell("throughput", "msg")} | ${cell("throughput", "cpu")} | ${cell("bandwidth", "msg")} | ` +
          `${cell("connections", "msg")} | ` +
          `${cell("connections", "rss")} |`
      )
    }
  }
  return rows.join("\n")
}

const renderReadme = (report: Report, previous: string | undefined): string => {
  const NOTES_START = "<!-- notes:start -->"
  const NOTES_END = "<!-- notes:end -->"
  let notes = `${NOTES_START}\n## What the profiles showed\n\n(not written yet)\n${NOTES_END}`
  if (previous !== undefined) {
    const a = previous.indexOf(NOTES_START)
    const b = previous.indexOf(NOTES_END)
    if (a !== -1 && b > a) notes = previous.slice(a, b + NOTES_END.length)
  }
  const m = report.machine
  const v = report.versions
  const lines: Array<string> = []
  lines.push("# sluice benchmarks")
  lines.push("")
  lines.push(
    `Produced by \`${report.command}\` on ${report.date.slice(0, 10)} (${report.minutes} min): ` +
      `${m.cores} x ${m.cpuModel}, ${m.memoryGB} GB; Bun ${v.bun}, Deno ${v.deno}, Node ${v.node}; ` +
      `load generator bench/loadgen.ts on ${v.loadgen}. ` +
      (m.pinned ? "Servers pinned to core 0, the load generator to core 1 (`taskset`). " : "No CPU pinning. ") +
      `Each run: ${report.settings.warmup} s warm-up, then ${report.settings.duration} s measured; load average ` +
      `${m.loadAverageBefore[0]} before, ${m.loadAverageAfter[0]} after. Raw figures: results.json.`
  )
  lines.push("")
  lines.push(
    "Every figure of a sluice or effect/socket server is a ratio to the raw baseline of the same runtime " +
      "in the same run (raw rows show absolute figures). Messages/s: higher is better; p99 latency and RSS: " +
      "lower is better. The load generator's CPU use is beside every result in the tables below: near 100% " +
      "(as against raw Bun and raw Deno at 50 x 16 x 64 B) the load generator, not the server, set the pace."
  )
  lines.push("")
  lines.push("![ratios to raw](chart.svg)")
  lines.push("")
  lines.push("## Headline")
  lines.push("")
  lines.push(renderHeadline(report))
  lines.push("")
  lines.push("## Targets")
  lines.push("")
  lines.push("| target | measured | met |")
  lines.push("|---|---|---|")
  for (const t of targets(report)) {
    lines.push(`| ${t.text} | ${t.shown} | ${t.met === undefined ? "-" : t.met ? "yes" : "**no**"} |`)
  }
  lines.push("")
  for (const scenario of report.settings.scenarios) {
    lines.push(`## ${scenario.label} (${scenario.id})`)
    lines.push("")
    lines.push(
      "| runtime | server | msg/s | x raw | MB/s | p50 ms | p99 ms | p99.9 ms | p99 x raw | loadgen CPU | server CPU | " +
        "other CPU | msg per server CPU-s | x raw |" +
        (scenario.id === "connections" ? " peak RSS MB | x raw | idle RSS MB |" : "")
    )
    lines.push(
      "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|" +
        (scenario.id === "connections" ? "---|---|---|" : "")
    )
    for (const runtime of ["bun", "deno", "node"] as const) {
      for (const s of servers(report, runtime)) {
        const e = find(report, s.server, scenario.id)
        if (e === undefined) continue
        if (e.error !== undefined || e.result === undefined) {
          lines.push(`| ${runtime} | ${s.label} | failed: ${e.error ?? "no result"} |`)
          continue
        }
        const r = e.result
        const raw = rawOf(report, e)
        const pct = (n: number | undefined) => n === undefined ? "-" : `${n.toFixed(0)}%`
        let row = `| ${runtime} | ${s.label} | ${fmtRate(r.messagesPerSec)} | ` +
          `${s.kind === "raw" ? "1" : fx(ratio(r.messagesPerSec, raw?.result?.messagesPerSec))} | ${r.mbPerSec} | ` +
          `${r.latencyMs.p50.toFixed(3)} | ${r.latencyMs.p99.toFixed(3)} | ${r.latencyMs.p999.toFixed(3)} | ` +
          `${s.kind === "raw" ? "1" : fx(ratio(r.latencyMs.p99, raw?.result?.latencyMs.p99))} | ` +
          `${pct(r.loadgenCpuPercent)} | ${pct(r.serverCpuPercent)} | ${pct(r.otherCpuPercent)} | ` +
          `${perCpu(e) === undefined ? "-" : fmtRate(perCpu(e)!)} | ${
            s.kind === "raw" ? "1" : fx(ratio(perCpu(e), perCpu(raw)))
          } |`
        if (scenario.id === "connections") {
          row +=
            ` ${e.peakRssMB?.toFixed(0) ?? "-"} | ${
              s.kind === "raw" ? "1" : fx(ratio(e.peakRssMB, raw?.peakRssMB))
            } | ` +
            `${e.idleRssMB?.toFixed(0) ?? "-"} |`
        }
        lines.push(row)
      }
    }
    if (scenario.rounds > 1) {
      lines.push("")
      lines.push(`Best of ${scenario.rounds} rounds, each visiting every server of the runtime in turn.`)
    }
    lines.push("")
  }
  lines.push("## A client that never reads while it keeps sending")
  lines.push("")
  lines.push(
    `bench/flood.ts connects, stops reading, and writes 64 KiB requests as fast as the server takes them, for ` +
      `${report.settings.floodSeconds} s or until the server's RSS passes the limit. A server without ` +
      "backpressure keeps reading and buffers every reply; sluice (default options: highWaterMark 1 MiB, " +
      "maxOutboundBytes 16 MiB, writeTimeout 30 s) stops reading from that peer once its outbound queue passes " +
      "the high-water mark, so the client's sends stall in the kernel's buffers."
  )
  lines.push("")
  lines.push(
    "| runtime | server | RSS before MB | peak RSS MB | growth MB | client sent MB | stopped by | RSS after MB |"
  )
  lines.push("|---|---|---|---|---|---|---|---|")
  for (const f of report.flood) {
    lines.push(
      `| ${f.runtime} | ${f.label} | ${f.rssBeforeMB ?? "-"} | ${f.peakRssMB ?? "-"} | ${f.growthMB ?? "-"} | ` +
        `${f.client?.sentMB ?? "-"} | ${f.stoppedBy} after ${f.seconds} s | ${f.rssAfterMB ?? "-"} |`
    )
  }
  lines.push("")
  lines.push("## Codec micro-benchmark (bench/codec.ts, `npm run bench:codec`)")
  lines.push("")
  lines.push("| runtime | variant | M frames/s | x plain loop | target |")
  lines.push("|---|---|---|---|---|")
  for (
    const c of report.codec as Array<
      {
        runtime: string
        version?: string
        error?: string
        results?: Array<
          { label: string; framesPerSec: number; ratioToPlain: number; target?: string; targetMet?: boolean }
        >
      }
    >
  ) {
    if (c.error !== undefined || c.results === undefined) {
      lines.push(`| ${c.runtime} | failed: ${c.error ?? "no results"} | | | |`)
      continue
    }
    for (const r of c.results) {
      lines.push(
        `| ${c.runtime} ${c.version ?? ""} | ${r.label} | ${(r.framesPerSec / 1e6).toFixed(1)} | ` +
          `${r.ratioToPlain.toFixed(2)} | ${
            r.target === undefined ? "" : `${r.target}: ${r.targetMet ? "met" : "**missed**"}`
          } |`
      )
    }
  }
  lines.push("")
  lines.push("## How it runs")
  lines.push("")
  lines.push(
    "- `npm run bench` (about 10-15 minutes) or `npm run bench -- --quick` (about 2-3 minutes, fewer servers " +
      "and scenarios, written to $TMPDIR/sluice-bench unless `--out DIR`). Other options: `--runtimes bun,node`, " +
      "`--duration s`, `--warmup s`, `--rounds n`, `--flood-seconds s`, `--flood-limit-mb n`, `--no-codec`, " +
      "`--no-flood`."
  )
  lines.push(
    "- On a shared machine: before each run the bench waits (a little) for the rest of the machine to go quiet, " +
      "and repeats a run during which other processes used more than a quarter of a core (`--noisy`, " +
      "`--retries`); the fastest run is kept. The `other CPU` column shows what else ran during the kept run."
  )
  lines.push(
    "- bench/loadgen.ts: Bun.connect, pipelined (`--inflight` requests outstanding per connection, one write " +
      "per burst); verifies every reply (length, sequence number, content); latency from the write of a request " +
      "to the read of its reply. Run it alone: `bun bench/loadgen.ts --port 7000 --connections 50 --inflight 16`."
  )
  lines.push(
    "- Servers (each runnable alone with `PORT`): bench/servers/raw-{bun,deno,node}.ts (native socket API, " +
      "hand-written length-prefix parser, frame by frame, one coalesced write per read, partial writes buffered " +
      "and flushed on drain, no backpressure), bench/servers/sluice.ts (`HANDLER=sync|succeed|handler-gen|gen`, " +
      "default options), bench/servers/effect-socket.ts (Effect 4's `effect/socket` SocketServer from " +
      "`@effect/platform-node`, a pull loop per connection, hand-written framing; `message`: one handler Effect " +
      "and one write per message, `batched`: one write per read; run on Node and on Bun)."
  )
  lines.push("")
  lines.push(notes)
  lines.push("")
  return lines.join("\n")
}

const renderChart = (report: Report): string => {
  const rows: Array<{ label: string; value: number; kind: Kind; group: string }> = []
  const order: Array<Scenario["id"]> = ["throughput", "bandwidth", "latency", "connections"]
  for (const id of order) {
    const scenario = report.settings.scenarios.find((s) => s.id === id)
    if (scenario === undefined) continue
    for (const runtime of ["bun", "deno", "node"] as const) {
      for (const s of servers(report, runtime)) {
        if (s.kind === "raw") continue
        const e = find(report, s.server, scenario.id)
        if (e === undefined || e.result === undefined) continue
        const value = ratio(e.result.messagesPerSec, rawOf(report, e)?.result?.messagesPerSec)
        if (value === undefined) continue
        rows.push({ label: `${runtime} ${s.label}`, value, kind: s.kind, group: `${scenario.label}: messages/s` })
      }
    }
  }
  const BAR = 16
  const GAP = 4
  const HEAD = 26
  const LEFT = 200
  const SCALE = 360 // pixels for 1.0x
  const CAP = 1.5
  const WIDTH = LEFT + CAP * SCALE + 60
  const groups = [...new Set(rows.map((r) => r.group))]
  const height = 50 + groups.length * HEAD + rows.length * (BAR + GAP) + 24
  const color = (kind: Kind) => kind === "sluice" ? "#1f9e89" : kind === "platform" ? "#e0823d" : "#888"
  const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;")
  const n = (x: number) => Math.round(x * 10) / 10
  const parts: Array<string> = []
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" ` +
      `font-family="sans-serif" font-size="12">`
  )
  parts.push(`<rect width="${WIDTH}" height="${height}" fill="#fff"/>`)
  parts.push(
    `<text x="10" y="20" font-size="14" font-weight="bold">${
      esc(
        `Ratio to the same runtime's raw baseline, same run (${report.date.slice(0, 10)}${
          report.quick ? ", quick pass" : ""
        })`
      )
    }</text>`
  )
  let y = 40
  for (const group of groups) {
    y += HEAD
    parts.push(`<text x="10" y="${y - 8}" font-weight="bold">${esc(group)}</text>`)
    for (const r of rows.filter((x) => x.group === group)) {
      const w = Math.max(1, Math.min(r.value, CAP) * SCALE)
      parts.push(`<text x="${LEFT - 6}" y="${y + BAR - 4}" text-anchor="end">${esc(r.label)}</text>`)
      parts.push(`<rect x="${LEFT}" y="${y}" width="${n(w)}" height="${BAR}" fill="${color(r.kind)}"/>`)
      parts.push(`<text x="${n(LEFT + w + 4)}" y="${y + BAR - 4}">${r.value.toFixed(2)}x</text>`)
      y += BAR + GAP
    }
  }
  const x1 = LEFT + SCALE
  parts.push(
    `<line x1="${x1}" y1="40" x2="${x1}" y2="${y}" stroke="#333" stroke-dasharray="4 3"/>` +
      `<text x="${x1 + 4}" y="${y + 14}">raw = 1.0</text>`
  )
  parts.push(
    `<rect x="${LEFT}" y="${y + 4}" width="10" height="10" fill="${color("sluice")}"/>` +
      `<text x="${LEFT + 14}" y="${y + 13}">sluice</text>` +
      `<rect x="${LEFT + 70}" y="${y + 4}" width="10" height="10" fill="${color("platform")}"/>` +
      `<text x="${LEFT + 84}" y="${y + 13}">effect/socket</text>`
  )
  parts.push("</svg>")
  return parts.join("\n") + "\n"
}

const render = option("--render")
const entry: Promise<void> = render !== undefined
  ? Promise.resolve().then(() => {
    // Re-renders README.md and chart.svg from a results.json (e.g. after editing the notes).
    const report = JSON.parse(readFileSync(render, "utf8")) as Report
    const dir = path.resolve(option("--out") ?? path.dirname(render))
    mkdirSync(dir, { recursive: true })
    const readme = path.join(dir, "README.md")
    writeFileSync(readme, renderReadme(report, existsSync(readme) ? readFileSync(readme, "utf8") : undefined))
    formatFile(readme)
    writeFileSync(path.join(dir, "chart.svg"), renderChart(report))
    formatFile(path.join(dir, "chart.svg"))
    console.log(`${renderHeadline(report)}\n\nwritten: ${readme}, chart.svg`)
  })
  : main()
entry.catch((error) => {
  console.error("bench FAILED:", error)
  killAll()
  process.exit(1)
})
