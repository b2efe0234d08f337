/**
 * Running load against a server: the two load generators (bench/loadgen.ts on Bun, bench/loadgen.c
 * built with gcc), the history every server goes through before its headline scenarios, the wait
 * for a quiet machine and the repeat of runs the rest of the machine disturbed, and the client
 * that never reads (bench/flood.ts).
 */
import { mkdirSync } from "node:fs"
import * as path from "node:path"
import {
  build,
  BUN,
  CACHE,
  type Child,
  cpuOf,
  HOST,
  lines,
  machineBusy,
  pin,
  resetPeak,
  sleep,
  spawn,
  status,
  which
} from "./machine.ts"
import { whileStopped } from "./alone.ts"
import type { Kind, RuntimeName, ServerSpec } from "./servers.ts"

export type LoadgenName = "bun" | "c"

export interface Scenario {
  readonly id: "connections" | "latency" | "throughput" | "bandwidth"
  readonly label: string
  readonly connections: number
  readonly inflight: number
  readonly payload: number
  readonly rounds: number
}

export interface LoadResult {
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

export interface Sample extends LoadResult {
  readonly round: number
  /** Runs made for this sample: more than 1 when the machine was busy during a run. */
  readonly attempts: number
  readonly serverCpuPercent: number | undefined
  readonly otherCpuPercent: number | undefined
}

export interface Running {
  readonly spec: ServerSpec
  readonly port: number
  readonly child: Child
  /** RSS once listening, before any connection (MB). */
  idleRssMB: number | undefined
  /** Why the server was left out of the scenarios (a failed framing check, say). */
  failed?: string
}

export interface Settings {
  readonly duration: number
  readonly warmup: number
  /** A run during which the rest of the machine used more than this (% of one core) is repeated. */
  readonly noisyPercent: number
  readonly retries: number
  /** Seconds of repeated runs allowed in one bench run (then busy runs are kept as they are). */
  retryBudgetSeconds: number
  /** How long to wait, before a run, for the rest of the machine to go quiet. */
  readonly quietWaitSeconds: number
  /** All the waiting for quiet of one bench run, at most (then runs go ahead, busy or not). */
  quietBudgetSeconds: number
}

// --- the load generators ----------------------------------------------------------------------------

/** The C load generator, built once per bench run with gcc; `note` says why it is missing. */
let cBuild: { readonly binary?: string; readonly note?: string } | undefined
export const cLoadgen = (): { readonly binary?: string; readonly note?: string } => {
  if (cBuild !== undefined) return cBuild
  const gcc = which("gcc") ?? which("cc")
  if (gcc === undefined) {
    cBuild = { note: "no C compiler (Debian: gcc): only the Bun load generator ran" }
    return cBuild
  }
  const binary = path.join(CACHE, "loadgen-c")
  mkdirSync(CACHE, { recursive: true })
  const failed = build([gcc, "-O2", "-std=gnu11", "-Wall", "-o", binary, "bench/loadgen.c", "-lm"])
  cBuild = failed === undefined ? { binary } : { note: `gcc bench/loadgen.c failed: ${failed}` }
  return cBuild
}

export const loadgenCommand = (
  loadgen: LoadgenName,
  port: number,
  shape: { readonly connections: number; readonly inflight: number; readonly payload: number },
  seconds: { readonly duration: number; readonly warmup: number }
): Array<string> => {
  const program = loadgen === "bun" ? [BUN, "bench/loadgen.ts"] : [cLoadgen().binary!]
  return pin(1, [
    ...program,
    "--host",
    HOST,
    "--port",
    String(port),
    "--connections",
    String(shape.connections),
    "--inflight",
    String(shape.inflight),
    "--payload",
    String(shape.payload),
    "--duration",
    String(seconds.duration),
    "--warmup",
    String(seconds.warmup),
    "--json"
  ])
}

// --- one measurement ----------------------------------------------------------------------------------

/** CPU used by the rest of the machine (% of one core) over `ms`, the servers' own use left out. */
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
const waitForQuiet = async (settings: Settings, servers: ReadonlyArray<Running>): Promise<void> => {
  const started = performance.now()
  const deadline = started + Math.min(settings.quietWaitSeconds, settings.quietBudgetSeconds) * 1000
  let background = await backgroundPercent(servers, 300)
  while (background !== undefined && background > settings.noisyPercent && performance.now() < deadline) {
    background = await backgroundPercent(servers, 500)
  }
  settings.quietBudgetSeconds = Math.max(0, settings.quietBudgetSeconds - (performance.now() - started) / 1000)
}

/**
 * One measurement: waits for the machine to be quiet, runs the load generator, and repeats the run
 * (up to `retries` times) when the rest of the machine was busy during it; keeps the fastest run.
 */
export const runLoad = async (
  settings: Settings,
  server: Running,
  scenario: Scenario,
  loadgen: LoadgenName,
  all: ReadonlyArray<Running>
): Promise<LoadResult & Partial<Sample> & { attempts: number }> => {
  let best: (LoadResult & Partial<Sample>) | undefined
  let attempts = 0
  for (let attempt = 0; attempt <= settings.retries; attempt++) {
    if (attempt > 0) {
      const cost = settings.warmup + settings.duration + 1
      if (settings.retryBudgetSeconds < cost) break
      settings.retryBudgetSeconds -= cost
    }
    attempts++
    await waitForQuiet(settings, all)
    const others = all.filter((s) => s !== server).map((s) => s.child)
    const result = await whileStopped(others, () => runLoadOnce(server, scenario, loadgen, settings))
    if (best === undefined || result.messagesPerSec > best.messagesPerSec) best = result
    if ((result.otherCpuPercent ?? 0) <= settings.noisyPercent) break
  }
  return { ...best!, attempts }
}

/** Runs a load generator once; the server's CPU use and the rest of the machine's over its window. */
export const runLoadOnce = async (
  server: Running,
  shape: { readonly connections: number; readonly inflight: number; readonly payload: number },
  loadgen: LoadgenName,
  seconds: { readonly duration: number; readonly warmup: number }
): Promise<LoadResult & Partial<Sample>> => {
  const child = spawn(loadgenCommand(loadgen, server.port, shape, seconds), {}, "pipe")
  const timer = setTimeout(() => child.kill("SIGKILL"), (seconds.warmup + seconds.duration + 90) * 1000)
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
        const elapsed = (performance.now() - start.at) / 1000
        const s = cpuOf(server.child.pid)
        const l = cpuOf(child.pid)
        const m = machineBusy()
        if (s !== undefined && start.server !== undefined) serverCpu = ((s - start.server) / elapsed) * 100
        if (
          s !== undefined && l !== undefined && m !== undefined && start.server !== undefined &&
          start.loadgen !== undefined && start.machine !== undefined
        ) {
          otherCpu = Math.max(0, ((m - start.machine - (s - start.server) - (l - start.loadgen)) / elapsed) * 100)
        }
      } else if (line.startsWith("{")) {
        result = JSON.parse(line) as LoadResult
      }
    }
    const code = await child.exited
    if (code !== 0 || result === undefined) throw new Error(`${loadgen} load generator exited with code ${code}`)
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

// --- history ------------------------------------------------------------------------------------------

/**
 * What every server goes through before its headline scenarios, as a server in production would
 * have: the framing check (frames of 0 B to 100 KB cut at awkward places, bench/framing.ts), then
 * 1 x 1 x 64 B and 50 x 16 x 64 B. A server whose state degrades with what it has seen shows it in
 * the scenarios that follow; a fresh server would hide it. Throws when the framing check fails.
 */
export const runHistory = async (
  server: Running,
  loadgen: LoadgenName,
  seconds: { readonly latency: number; readonly throughput: number }
): Promise<void> => {
  const framing = spawn(pin(1, [BUN, "bench/framing.ts", "--host", HOST, "--port", String(server.port)]), {}, "pipe")
  const timer = setTimeout(() => framing.kill("SIGKILL"), 60_000)
  let output = ""
  for await (const line of lines(framing.stdout)) output += line
  const code = await framing.exited
  clearTimeout(timer)
  if (code !== 0) throw new Error(`framing check failed (exit ${code}) ${output}`)
  await runLoadOnce(server, { connections: 1, inflight: 1, payload: 64 }, loadgen, {
    duration: seconds.latency,
    warmup: 0
  })
  await runLoadOnce(server, { connections: 50, inflight: 16, payload: 64 }, loadgen, {
    duration: seconds.throughput,
    warmup: 0
  })
}

// --- the never-reading client ---------------------------------------------------------------------------

export interface FloodResult {
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

export const runFlood = async (server: Running, floodSeconds: number, floodLimitMB: number): Promise<FloodResult> => {
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
      `${floodSeconds}`,
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
  const after = status(pid, "VmRSS")
  return {
    server: server.spec.id,
    runtime: server.spec.runtime,
    kind: server.spec.kind,
    label: server.spec.label,
    rssBeforeMB: before === undefined ? undefined : Math.round(before),
    peakRssMB: Math.round(peak),
    growthMB: before === undefined ? undefined : Math.round(peak - before),
    rssAfterMB: after === undefined ? undefined : Math.round(after),
    stoppedBy,
    seconds: Number(seconds.toFixed(1)),
    timeline,
    ...(client !== undefined ? { client } : { error: "the flood client printed no result" })
  }
}
