/**
 * The socket benchmark's results and what is computed from them: the ratios to the raw baseline of
 * the same runtime, from the same load generator, in the same run; the targets; the places where the
 * two load generators disagree. Rendering is in render.ts.
 */
import type { FloodResult, LoadgenName, Sample, Scenario } from "./load.ts"
import type { Kind, RuntimeName } from "./servers.ts"

export interface Entry {
  readonly server: string
  readonly runtime: RuntimeName
  readonly kind: Kind
  readonly handler: string | undefined
  readonly label: string
  readonly scenario: Scenario["id"]
  readonly loadgen: LoadgenName
  samples: Array<Sample>
  error?: string
  /** The fastest sample: noise from the rest of a shared machine only ever slows a run down. */
  result?: Sample
}

/** One fresh process of a server: idle, then at 1000 connections (its first run). */
export interface MemorySample {
  /** RSS once listening, before any connection. */
  readonly idleRssMB: number | undefined
  /** Peak RSS during the 1000-connection run (VmHWM, reset before it). */
  readonly peakRssMB: number | undefined
  /** RSS once the run was over and its connections closed. */
  readonly afterRssMB: number | undefined
}

/**
 * Memory of one server: the sample with the median memory per connection, of `samples` (one per
 * fresh process; results from before they were kept have one, the fresh server's, and no `samples`).
 */
export interface Memory extends MemorySample {
  readonly server: string
  readonly runtime: RuntimeName
  readonly kind: Kind
  readonly label: string
  readonly loadgen: LoadgenName
  readonly samples?: ReadonlyArray<MemorySample>
  readonly error?: string
}

export interface Report {
  readonly bench: "sockets"
  readonly schema: 2
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
    readonly kernel: string
  }
  readonly versions: { bun: string; deno: string; node: string; go: string; gcc: string }
  readonly settings: {
    readonly duration: number
    readonly warmup: number
    readonly floodSeconds: number
    readonly floodLimitMB: number
    readonly scenarios: Array<Scenario>
    readonly loadgens: Array<LoadgenName>
    readonly history: string
  }
  /** What was left out, and why (no `go`, no C compiler, ...). */
  readonly skipped: Array<string>
  readonly notes: Record<string, string>
  readonly results: Array<Entry>
  readonly memory: Array<Memory>
  readonly flood: Array<FloodResult>
  readonly codec: Array<unknown>
  /** The protocol benchmarks' result files (relative to the report), or why one is missing. */
  readonly protocols?: ReadonlyArray<{ readonly name: string; readonly file?: string; readonly error?: string }>
}

export const LOADGEN_LABEL: Record<LoadgenName, string> = { bun: "Bun (bench/loadgen.ts)", c: "C (bench/loadgen.c)" }

export const find = (
  report: Report,
  server: string,
  scenario: Scenario["id"],
  loadgen: LoadgenName
): Entry | undefined =>
  report.results.find((e) => e.server === server && e.scenario === scenario && e.loadgen === loadgen)

export const rawOf = (report: Report, entry: Entry): Entry | undefined =>
  find(report, `${entry.runtime}-raw`, entry.scenario, entry.loadgen)

export const ratio = (a: number | undefined, b: number | undefined): number | undefined =>
  a === undefined || b === undefined || b === 0 ? undefined : a / b

export const fx = (n: number | undefined, digits = 2) => n === undefined ? "-" : `${n.toFixed(digits)}x`

export const fmtRate = (n: number) => n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : `${(n / 1e3).toFixed(1)}k`

/** Messages per second of the server's own CPU time: what it costs, whatever else ran on its core. */
export const perCpu = (e: Entry | undefined): number | undefined =>
  e?.result?.serverCpuPercent === undefined || e.result.serverCpuPercent <= 0
    ? undefined
    : e.result.messagesPerSec / (e.result.serverCpuPercent / 100)

/** The figures the ratios are taken of: msg/s (higher is better) and p99 latency (lower is better). */
export type Figure = "msg" | "p99"

export const figureOf = (sample: Sample | undefined, figure: Figure): number | undefined =>
  figure === "msg" ? sample?.messagesPerSec : sample?.latencyMs.p99

/** A figure of one server over another's, best round against best round (the headline's ratio). */
export const bestRatio = (entry: Entry | undefined, base: Entry | undefined, figure: Figure): number | undefined =>
  ratio(figureOf(entry?.result, figure), figureOf(base?.result, figure))

/**
 * A figure of one server over another's, round by round: each round's sample against the other's
 * sample of the same round (they ran minutes apart at most, on the same machine state). Sorted;
 * empty without rounds.
 */
export const pairedRatios = (
  entry: Entry | undefined,
  base: Entry | undefined,
  figure: Figure = "msg"
): Array<number> => {
  if (entry === undefined || base === undefined) return []
  const out: Array<number> = []
  for (const sample of entry.samples) {
    const r = ratio(figureOf(sample, figure), figureOf(base.samples.find((x) => x.round === sample.round), figure))
    if (r !== undefined) out.push(r)
  }
  return out.sort((a, b) => a - b)
}

/** msg/s over raw round by round (see `pairedRatios`). */
export const roundRatios = (report: Report, entry: Entry): Array<number> =>
  pairedRatios(entry, rawOf(report, entry), "msg")

/** Rounds a ratio needs before targets are judged on its median round rather than on best rounds. */
export const MEDIAN_ROUNDS = 3

/** The median of sorted values (the lower middle one for an even count: never flattering). */
export const median = (sorted: ReadonlyArray<number>): number | undefined =>
  sorted.length === 0 ? undefined : sorted[Math.floor((sorted.length - 1) / 2)]

/**
 * What targets are judged on: the median of the paired per-round ratios once there are
 * `MEDIAN_ROUNDS` of them; with fewer, the best round against the best round.
 */
const central = (entry: Entry | undefined, base: Entry | undefined, figure: Figure): number | undefined => {
  const paired = pairedRatios(entry, base, figure)
  return paired.length >= MEDIAN_ROUNDS ? median(paired) : bestRatio(entry, base, figure)
}

export const memoryOf = (report: Report, server: string): Memory | undefined =>
  report.memory.find((m) => m.server === server)

/** Peak minus idle RSS at 1000 connections, per connection (KB). */
export const perConnectionKB = (m: MemorySample | undefined): number | undefined =>
  m?.peakRssMB === undefined || m.idleRssMB === undefined ? undefined : ((m.peakRssMB - m.idleRssMB) * 1024) / 1000

// --- targets ------------------------------------------------------------------------------------------

export interface Target {
  readonly text: string
  /**
   * One value per load generator, or one for both (memory): the median round's ratio (see
   * `central`).
   */
  readonly values: Partial<Record<LoadgenName | "both", number | undefined>>
  /** The best round against the best round, where `values` is a median of rounds. */
  readonly best?: Partial<Record<LoadgenName, number | undefined>>
  /** `undefined`: information only. */
  readonly met: boolean | undefined
  readonly moonshot?: boolean
}

const SCENARIO_SHORT: Record<Scenario["id"], string> = {
  latency: "1x1x64B",
  throughput: "50x16x64B",
  bandwidth: "50x4x4KiB",
  connections: "1000x1x64B"
}

export const targets = (report: Report): Array<Target> => {
  const list: Array<Target> = []
  const loadgens = report.settings.loadgens
  const has = (server: string, scenario: Scenario["id"]) =>
    loadgens.some((l) => find(report, server, scenario, l) !== undefined)
  /**
   * A target on a ratio of `server` over `base` (by default the runtime's raw server), met when every
   * load generator's value is within bounds.
   */
  const add = (
    text: string,
    at: { readonly server: string; readonly base?: string; readonly scenario: Scenario["id"] },
    figure: Figure,
    bounds: { readonly min?: number; readonly max?: number } | undefined,
    moonshot = false
  ) => {
    const values: Record<string, number | undefined> = {}
    const best: Record<string, number | undefined> = {}
    for (const l of loadgens) {
      const e = find(report, at.server, at.scenario, l)
      const b = at.base !== undefined ? find(report, at.base, at.scenario, l) : e && rawOf(report, e)
      values[l] = central(e, b, figure)
      best[l] = bestRatio(e, b, figure)
    }
    const known = loadgens.map((l) => values[l]).filter((v): v is number => v !== undefined)
    const met = bounds === undefined || known.length === 0
      ? undefined
      : known.every((v) =>
        (bounds.min === undefined || v >= bounds.min) && (bounds.max === undefined || v <= bounds.max)
      )
    list.push({ text: bounds === undefined ? `(information) ${text}` : text, values, best, met, moonshot })
  }
  const minimums = { bun: 0.95, deno: 0.9, node: 0.9 } as const
  for (const runtime of ["bun", "deno", "node"] as const) {
    const server = `${runtime}-sluice-sync`
    if (!has(server, "throughput")) continue
    add(
      `${runtime} 50x16x64B, sync handler >= ${minimums[runtime]}x raw`,
      { server, scenario: "throughput" },
      "msg",
      { min: minimums[runtime] }
    )
  }
  for (const runtime of ["bun", "deno", "node"] as const) {
    for (const scenario of ["latency", "throughput", "bandwidth", "connections"] as const) {
      const server = `${runtime}-sluice-sync`
      if (!has(server, scenario)) continue
      add(
        `${runtime} ${SCENARIO_SHORT[scenario]}, sync handler >= 0.85x raw`,
        { server, scenario },
        "msg",
        { min: 0.85 }
      )
    }
  }
  if (has("node-sluice-sync", "bandwidth")) {
    const at = { server: "node-sluice-sync", scenario: "bandwidth" } as const
    add("node 50x4x4KiB >= 0.9x raw", at, "msg", { min: 0.9 })
    add("node 50x4x4KiB p99 <= 1.5x raw", at, "p99", { max: 1.5 })
  }
  for (const runtime of ["bun", "deno", "node"] as const) {
    const sluice = memoryOf(report, `${runtime}-sluice-sync`)
    const raw = memoryOf(report, `${runtime}-raw`)
    if (sluice === undefined || raw === undefined) continue
    list.push({
      text: `${runtime} per-connection memory at 1000 connections (peak minus idle RSS) <= 1.2x raw`,
      values: { both: ratio(perConnectionKB(sluice), perConnectionKB(raw)) },
      met: (() => {
        const v = ratio(perConnectionKB(sluice), perConnectionKB(raw))
        return v === undefined ? undefined : v <= 1.2
      })()
    })
  }
  for (const runtime of ["bun", "deno", "node"] as const) {
    for (const scenario of ["latency", "throughput", "bandwidth", "connections"] as const) {
      for (
        const [platform, shape] of [[`${runtime}-platform`, "idiomatic"], [`${runtime}-platform-batched`, "batched"]]
      ) {
        if (!has(platform, scenario) || !has(`${runtime}-sluice-sync`, scenario)) continue
        add(
          `${runtime} ${SCENARIO_SHORT[scenario]}: sluice (sync) / effect/socket SocketServer (${shape}) > 1`,
          { server: `${runtime}-sluice-sync`, base: platform, scenario },
          "msg",
          { min: 1.0000001 }
        )
      }
    }
  }
  if (has("bun-sluice-gen", "throughput")) {
    add(
      "bun 50x16x64B, Handler.effect(() => Effect.gen(...)) per message >= 0.8x raw",
      { server: "bun-sluice-gen", scenario: "throughput" },
      "msg",
      { min: 0.8 }
    )
  }
  for (const handler of ["succeed", "handler-gen"] as const) {
    if (!has(`bun-sluice-${handler}`, "throughput")) continue
    add(
      `bun 50x16x64B, ${handler} handler, x raw`,
      { server: `bun-sluice-${handler}`, scenario: "throughput" },
      "msg",
      undefined
    )
  }
  if (has("bun-sluice-sync", "throughput")) {
    add(
      "moonshot: bun 50x16x64B p99 latency <= raw Bun's p99",
      { server: "bun-sluice-sync", scenario: "throughput" },
      "p99",
      { max: 1 },
      true
    )
  }
  for (const runtime of ["bun", "deno", "node"] as const) {
    if (has(`${runtime}-sluice-sync`, "latency")) {
      add(
        `${runtime} 1x1x64B p99 latency, x raw`,
        { server: `${runtime}-sluice-sync`, scenario: "latency" },
        "p99",
        undefined
      )
    }
    if (has(`${runtime}-raw-effect`, "bandwidth")) {
      add(
        `${runtime} 50x4x4KiB: the raw server with Effect's modules loaded (and unused), x raw`,
        { server: `${runtime}-raw-effect`, scenario: "bandwidth" },
        "msg",
        undefined
      )
    }
  }
  return list
}

// --- the load generators against each other ------------------------------------------------------------

export interface Disagreement {
  readonly server: string
  readonly label: string
  readonly runtime: RuntimeName
  readonly scenario: Scenario["id"]
  readonly what: "msg/s x raw" | "p99 x raw"
  readonly bun: number
  readonly c: number
}

/**
 * Ratios to raw that the two load generators see differently (by more than `tolerance`, relative):
 * a result only one of them sees is a finding to explain, not noise to average away.
 */
export const disagreements = (report: Report, tolerance = 0.15): Array<Disagreement> => {
  const list: Array<Disagreement> = []
  for (const e of report.results) {
    if (e.loadgen !== "bun" || e.kind === "raw" || e.kind === "go") continue
    const c = find(report, e.server, e.scenario, "c")
    if (c === undefined) continue
    const [eRaw, cRaw] = [rawOf(report, e), rawOf(report, c)]
    const pairs: Array<[Disagreement["what"], number | undefined, number | undefined]> = [
      ["msg/s x raw", bestRatio(e, eRaw, "msg"), bestRatio(c, cRaw, "msg")],
      ["p99 x raw", bestRatio(e, eRaw, "p99"), bestRatio(c, cRaw, "p99")]
    ]
    for (const [what, bun, cValue] of pairs) {
      if (bun === undefined || cValue === undefined) continue
      if (Math.abs(bun / cValue - 1) > tolerance) {
        list.push({ server: e.server, label: e.label, runtime: e.runtime, scenario: e.scenario, what, bun, c: cValue })
      }
    }
  }
  return list
}

/** One entry per server of a runtime, in the order they ran. */
export const serversOf = (report: Report, runtime: RuntimeName): Array<Entry> => {
  const seen = new Set<string>()
  return report.results.filter((e) => e.runtime === runtime && !seen.has(e.server) && seen.add(e.server))
}
