/**
 * The socket benchmark (`npm run bench`, run with Bun): sluice against the raw socket API of each
 * runtime, against Effect 4's own `effect/socket` SocketServer and against Go's goroutine per
 * connection, on the echo protocol, measured by two load generators of different makes.
 *
 * For each runtime it starts every server of that runtime at once (each on its own port, pinned to
 * core 0 with `taskset` when it exists), waits for the ports, then, with
 * the load generators pinned to core 1:
 *
 * 1. 1000 x 1 x 64 B on the fresh servers, and each server's idle and peak RSS;
 * 2. each server's history: the framing check (bench/framing.ts: frames of 0 B to 100 KB cut at
 *    awkward places), 2 s of 1 x 1 x 64 B and 3 s of 50 x 16 x 64 B; a server whose state degrades
 *    with what it has seen would look better fresh than it runs in production;
 * 3. 1 x 1 x 64 B (latency), 50 x 16 x 64 B (small-message throughput), 50 x 4 x 4 KiB (bandwidth)
 *    and 1000 x 1 x 64 B, each by both load generators (bench/loadgen.ts on Bun, bench/loadgen.c built
 *    with gcc), in rounds that visit every server in turn, so that drift on the machine hits all alike;
 *    while one server is measured the others are stopped (SIGSTOP), so that their runtimes' deferred
 *    work (a garbage collector shrinking the heap after a burst) does not land in its run;
 * 4. a client that never reads while it keeps sending (bench/flood.ts), bounded by time and by the
 *    server's RSS.
 *
 * Then the codec micro-benchmark (bench/codec.ts) on each runtime, and (not with `--quick`) the
 * protocol benchmarks (bench/protocols: RESP against redis-server, HTTP against each runtime's own
 * server, RPC against effect/rpc's socket protocol), each to `<out>/protocol-<name>.json`. Results go to
 * `<out>/results.json`, `<out>/README.md` (tables of ratios to the same runtime's raw baseline, same
 * load generator, same run; the text between the `notes` markers of an existing README is kept) and
 * `<out>/chart.svg`.
 *
 * Usage: `bun bench/run.ts [--quick] [--out DIR] [--runtimes bun,deno,node,go] [--loadgens bun,c]
 *   [--duration s] [--warmup s] [--rounds n] [--flood-seconds s] [--flood-limit-mb n] [--no-codec]
 *   [--no-flood] [--no-history] [--no-protocols] [--scenarios connections,latency,throughput,bandwidth]
 *   [--servers raw,sluice-sync,...] [--render results.json]`
 *
 * `--quick`: 2 s per run, fewer servers and scenarios, one round, results in $TMPDIR/sluice-bench
 * unless `--out` says otherwise. Every process it starts is stopped on exit, on error and on SIGINT.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import process from "node:process"
import {
  BUN,
  cores,
  cpuModel,
  DENO,
  formatFile,
  HOST,
  killAll,
  NODE,
  pin,
  pinned,
  resetPeak,
  ROOT,
  run,
  sleep,
  spawn,
  status,
  stop,
  waitForPort
} from "./lib/machine.ts"
import {
  cLoadgen,
  type FloodResult,
  type LoadgenName,
  runFlood,
  runHistory,
  runLoad,
  type Running,
  type Sample,
  type Scenario,
  type Settings
} from "./lib/load.ts"
import { argv, flag, option } from "./lib/args.ts"
import { renderChart, renderHeadline, renderReadme } from "./lib/render.ts"
import { type Entry, type Memory, type MemorySample, perConnectionKB, type Report } from "./lib/report.ts"
import { command, goServer, goVersion, type RuntimeName, type ServerSpec, serverSpecs } from "./lib/servers.ts"

// --- options ------------------------------------------------------------------------------------------

const quick = flag("--quick")
const out = path.resolve(
  option("--out") ?? (quick ? path.join(os.tmpdir(), "sluice-bench") : path.join(ROOT, "docs/bench"))
)
const runtimes = (option("--runtimes") ?? "bun,deno,node,go").split(",") as Array<RuntimeName>
const duration = Number(option("--duration") ?? (quick ? 2 : 4))
const warmup = Number(option("--warmup") ?? (quick ? 0.5 : 1))
const roundsOption = option("--rounds")
const floodSeconds = Number(option("--flood-seconds") ?? (quick ? 2 : 10))
const floodLimitMB = Number(option("--flood-limit-mb") ?? 2048)
const withCodec = !flag("--no-codec")
const withFlood = !flag("--no-flood")
const withHistory = !flag("--no-history")
const withProtocols = !quick && !flag("--no-protocols")
const BASE_PORT = Number(option("--port") ?? 17400)
const onlyServers = option("--servers")?.split(",")
const history = { latency: quick ? 1 : 2, throughput: quick ? 1 : 3 }

const settings: Settings = {
  duration,
  warmup,
  noisyPercent: Number(option("--noisy") ?? 25),
  retries: Number(option("--retries") ?? 2),
  retryBudgetSeconds: Number(option("--retry-budget") ?? (quick ? 20 : 240)),
  quietWaitSeconds: Number(option("--quiet-wait") ?? (quick ? 3 : 15)),
  quietBudgetSeconds: Number(option("--quiet-budget") ?? (quick ? 15 : 150))
}

const rendering = option("--render") !== undefined
const skipped: Array<string> = []
const loadgens = (option("--loadgens") ?? "bun,c").split(",").filter((l): l is LoadgenName => {
  if (l !== "c" || rendering) return l === "bun" || l === "c"
  const c = cLoadgen()
  if (c.note !== undefined) skipped.push(c.note)
  return c.binary !== undefined
})
if (!rendering && runtimes.includes("go") && goServer().note !== undefined) skipped.push(goServer().note!)

const scenarios: Array<Scenario> = ([
  { id: "connections", label: "1000 x 1 x 64 B", connections: 1000, inflight: 1, payload: 64, rounds: quick ? 1 : 2 },
  { id: "latency", label: "1 x 1 x 64 B", connections: 1, inflight: 1, payload: 64, rounds: 1 },
  { id: "throughput", label: "50 x 16 x 64 B", connections: 50, inflight: 16, payload: 64, rounds: quick ? 1 : 2 },
  { id: "bandwidth", label: "50 x 4 x 4 KiB", connections: 50, inflight: 4, payload: 4096, rounds: quick ? 1 : 2 }
] as Array<Scenario>).map((s) => roundsOption === undefined ? s : { ...s, rounds: Number(roundsOption) }).filter((s) =>
  option("--scenarios") !== undefined
    ? option("--scenarios")!.split(",").includes(s.id)
    : !quick || s.id !== "bandwidth"
)
const MEMORY_SCENARIO: Scenario = scenarios.find((s) => s.id === "connections") ??
  { id: "connections", label: "1000 x 1 x 64 B", connections: 1000, inflight: 1, payload: 64, rounds: 1 }

const versions = {
  bun: run([path.join(ROOT, "node_modules/.bin/bun"), "--version"]),
  deno: run([DENO, "--version"]).split("\n")[0]?.replace(/^deno /, "").split(" ")[0] ?? "",
  node: run([NODE, "--version"]).replace(/^v/, ""),
  go: runtimes.includes("go") ? goVersion() : "",
  gcc: loadgens.includes("c") ? run(["gcc", "-dumpfullversion"]) : ""
}

// --- codec micro-benchmark ------------------------------------------------------------------------------

const runCodec = async (): Promise<Array<unknown>> => {
  const dir = path.join(os.tmpdir(), "sluice-bench-codec")
  mkdirSync(dir, { recursive: true })
  const extra = quick ? ["--runs", "1", "--seconds", "0.2"] : []
  const commands: Array<[RuntimeName, Array<string>]> = [
    ["bun", [path.join(ROOT, "node_modules/.bin/bun"), "bench/codec.ts"]],
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

// --- protocol benchmarks ---------------------------------------------------------------------------------

/**
 * The example protocols against what their users would otherwise run (bench/protocols/*.ts): RESP
 * against redis-server (redis-benchmark), HTTP against each runtime's own server (wrk), RPC against
 * effect/rpc's own socket protocol. Each writes `<out>/protocol-<name>.json`; a missing peer or a
 * failed run is reported and the others go on.
 */
const runProtocols = async (): Promise<
  Array<{ readonly name: string; readonly file?: string; readonly error?: string }>
> => {
  const results: Array<{ readonly name: string; readonly file?: string; readonly error?: string }> = []
  const only = runtimes.filter((r) => r !== "go").join(",")
  for (const name of ["resp", "http", "rpc"]) {
    const file = path.join(out, `protocol-${name}.json`)
    console.log(`\n==> protocol benchmark: ${name} (bench/protocols/${name}.ts)`)
    const child = spawn([BUN, `bench/protocols/${name}.ts`, "--runtimes", only, "--json", file], {}, "inherit")
    const code = await child.exited
    results.push(
      code === 0 && existsSync(file) ? { name, file: path.relative(out, file) } : {
        name,
        error: `exited with code ${code}`
      }
    )
  }
  return results
}

// --- main -----------------------------------------------------------------------------------------------

const fmtRate = (n: number) => n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : `${(n / 1e3).toFixed(1)}k`
const fmtPct = (n: number | undefined) => n === undefined ? "-" : `${n.toFixed(0)}%`

/** Starts one server's process on `port` (not waiting for it). */
const spawnServer = (spec: ServerSpec, port: number): Running => {
  const env = {
    PORT: String(port),
    HOST,
    ...(spec.handler !== undefined ? { HANDLER: spec.handler } : {}),
    ...spec.env
  }
  return { spec, port, child: spawn(pin(0, command(spec)), env, "ignore"), idleRssMB: undefined }
}

/** Waits for a started server's port; records its idle RSS. */
const ready = async (server: Running): Promise<void> => {
  await waitForPort(server.port, server.child)
  await sleep(200)
  server.idleRssMB = status(server.child.pid, "VmRSS")
}

/** Starts the servers of one runtime and waits for their ports; records their idle RSS. */
const startServers = async (runtime: RuntimeName, firstPort: number): Promise<Array<Running>> => {
  const servers = serverSpecs(runtime, { quick, only: onlyServers }).map((spec, i) => spawnServer(spec, firstPort + i))
  for (const server of servers) await ready(server)
  return servers
}

/**
 * Fresh processes each server's memory is measured in. One run of 1000 connections on one process
 * moves by several KB per connection from one process to the next (the raw servers' own figures
 * included), so the figure kept is the median of these, and all of them are reported.
 */
const MEMORY_SAMPLES = quick ? 1 : 3

/** One memory sample: peak RSS while 1000 connections each keep a request in flight, on `server`. */
const memorySample = async (
  server: Running,
  loadgen: LoadgenName,
  servers: ReadonlyArray<Running>
): Promise<MemorySample> => {
  resetPeak(server.child.pid)
  await runLoad(settings, server, MEMORY_SCENARIO, loadgen, servers)
  return {
    idleRssMB: server.idleRssMB,
    peakRssMB: status(server.child.pid, "VmHWM"),
    afterRssMB: status(server.child.pid, "VmRSS")
  }
}

const main = async (): Promise<void> => {
  const started = Date.now()
  const entries: Array<Entry> = []
  const memory: Array<Memory> = []
  const floods: Array<FloodResult> = []
  const loadBefore = os.loadavg()
  console.log(
    `sluice socket benchmark${quick ? " (quick)" : ""}: ${cores} x ${cpuModel()}, bun ${versions.bun}, ` +
      `deno ${versions.deno}, node ${versions.node}${versions.go ? `, go ${versions.go}` : ""}; load generators: ` +
      `${loadgens.join(", ")}; ${pinned ? "servers on core 0, load generators on core 1" : "no pinning"}; ` +
      `${duration} s per run after ${warmup} s warm-up; results to ${out}`
  )
  for (const note of skipped) console.log(`note: ${note}`)
  if (loadBefore[0] > 0.5) console.log(`note: the machine is busy before the run (load average ${loadBefore[0]})`)
  const total = runtimes.reduce(
    (n, r) =>
      n + serverSpecs(r, { quick, only: onlyServers }).length * loadgens.length *
        scenarios.reduce((m, s) => m + s.rounds, 0),
    0
  )
  let step = 0
  let port = BASE_PORT

  for (const runtime of runtimes) {
    if (serverSpecs(runtime, { quick, only: onlyServers }).length === 0) continue
    console.log(`\n==> ${runtime}: starting ${serverSpecs(runtime, { quick, only: onlyServers }).map((s) => s.id)}`)
    let servers: Array<Running> = []
    try {
      servers = await startServers(runtime, port)
      port += servers.length

      // 1. Memory: on the fresh servers, then on fresh processes of each, in rounds.
      const loadgen: LoadgenName = loadgens.includes("c") ? "c" : "bun"
      const samples = new Map<Running, Array<MemorySample>>(servers.map((s) => [s, []]))
      const failures = new Map<Running, string>()
      for (let sample = 1; sample <= MEMORY_SAMPLES; sample++) {
        for (const server of servers) {
          if (failures.has(server)) continue
          const fresh = sample === 1 ? server : spawnServer(server.spec, port++)
          try {
            if (fresh !== server) await ready(fresh)
            const m = await memorySample(fresh, loadgen, servers)
            samples.get(server)!.push(m)
            console.log(
              `[memory] ${runtime} ${server.spec.label} (process ${sample}/${MEMORY_SAMPLES}): idle ` +
                `${m.idleRssMB?.toFixed(0)} MB, peak at 1000 connections ${m.peakRssMB?.toFixed(0)} MB`
            )
          } catch (error) {
            failures.set(server, `${error}`)
          } finally {
            if (fresh !== server) await stop(fresh.child)
          }
        }
      }
      for (const server of servers) {
        const base = { server: server.spec.id, runtime, kind: server.spec.kind, label: server.spec.label, loadgen }
        try {
          const error = failures.get(server)
          if (error !== undefined) throw new Error(error)
          const all = samples.get(server)!
          const median = [...all].sort((a, b) => (perConnectionKB(a) ?? 0) - (perConnectionKB(b) ?? 0))[
            Math.floor(all.length / 2)
          ]
          const m: Memory = { ...base, ...median, samples: all }
          memory.push(m)
          console.log(
            `[memory] ${runtime} ${server.spec.label}: median per connection ${perConnectionKB(m)?.toFixed(1)} KB ` +
              `(${all.map((x) => perConnectionKB(x)?.toFixed(1)).join(", ")})`
          )
        } catch (error) {
          memory.push({
            ...base,
            idleRssMB: server.idleRssMB,
            peakRssMB: undefined,
            afterRssMB: undefined,
            error: `${error}`
          })
          console.log(`[memory] ${runtime} ${server.spec.label}: FAILED: ${error}`)
        }
      }

      // 2. History.
      if (withHistory) {
        for (const server of servers) {
          try {
            await runHistory(server, loadgens.includes("c") ? "c" : "bun", history)
            console.log(`[history] ${runtime} ${server.spec.label}: framing check passed, warm`)
          } catch (error) {
            server.failed = error instanceof Error ? error.message : String(error)
            console.log(`[history] ${runtime} ${server.spec.label}: FAILED: ${server.failed}`)
          }
        }
      }

      // 3. The scenarios, by both load generators, in rounds.
      const entryOf = (server: Running, scenario: Scenario, loadgen: LoadgenName): Entry => {
        let entry = entries.find((e) =>
          e.server === server.spec.id && e.scenario === scenario.id && e.loadgen === loadgen
        )
        if (entry === undefined) {
          entry = {
            server: server.spec.id,
            runtime,
            kind: server.spec.kind,
            handler: server.spec.handler,
            label: server.spec.label,
            scenario: scenario.id,
            loadgen,
            samples: [],
            ...(server.failed !== undefined ? { error: server.failed } : {})
          }
          entries.push(entry)
        }
        return entry
      }
      for (const scenario of scenarios) {
        const rounds = scenario.rounds
        for (let round = 1; round <= rounds; round++) {
          for (const loadgen of loadgens) {
            let raw: Sample | undefined
            for (const server of servers) {
              step++
              const entry = entryOf(server, scenario, loadgen)
              const head = `[${step}/${total}] ${runtime} ${server.spec.label} ${scenario.label} (${loadgen})` +
                (rounds > 1 ? ` round ${round}/${rounds}` : "")
              if (entry.error !== undefined) {
                console.log(`${head}: skipped (${entry.error})`)
                continue
              }
              try {
                const r = await runLoad(settings, server, scenario, loadgen, servers)
                const sample: Sample = {
                  ...r,
                  round,
                  serverCpuPercent: r.serverCpuPercent,
                  otherCpuPercent: r.otherCpuPercent
                }
                entry.samples.push(sample)
                if (server.spec.kind === "raw") raw = sample
                const vsRaw = (a: number, b: number | undefined) =>
                  server.spec.kind === "raw" || b === undefined ? "" : ` (${(a / b).toFixed(2)}x raw)`
                console.log(
                  `${head}: ${fmtRate(r.messagesPerSec)} msg/s${vsRaw(r.messagesPerSec, raw?.messagesPerSec)}, ` +
                    `${r.mbPerSec} MB/s, p50 ${r.latencyMs.p50.toFixed(3)} ms, p99 ${r.latencyMs.p99.toFixed(3)} ms` +
                    `${vsRaw(r.latencyMs.p99, raw?.latencyMs.p99)}; cpu: loadgen ${fmtPct(r.loadgenCpuPercent)}, ` +
                    `server ${fmtPct(r.serverCpuPercent)}, other ${fmtPct(r.otherCpuPercent)}` +
                    (r.attempts > 1 ? ` (${r.attempts} attempts: machine busy)` : "")
                )
              } catch (error) {
                entry.error = error instanceof Error ? error.message : String(error)
                console.log(`${head}: FAILED: ${entry.error}`)
              }
            }
          }
        }
      }

      // 4. The client that never reads.
      if (withFlood) {
        for (const server of servers) {
          if (!server.spec.flood || server.child.exitCode !== null) continue
          console.log(
            `[flood] ${runtime} ${server.spec.label}: a client that never reads sends for up to ${floodSeconds} s ` +
              `(stops at ${floodLimitMB} MB server RSS)...`
          )
          const f = await runFlood(server, floodSeconds, floodLimitMB)
          floods.push(f)
          console.log(
            `[flood] ${runtime} ${server.spec.label}: RSS ${f.rssBeforeMB} -> peak ${f.peakRssMB} MB ` +
              `(+${f.growthMB} MB, stopped by ${f.stoppedBy} after ${f.seconds} s); client sent ` +
              `${f.client?.sentMB ?? "?"} MB` +
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
    if (entry.samples.length > 0) {
      entry.result = entry.samples.reduce((best, s) => s.messagesPerSec > best.messagesPerSec ? s : best)
    }
  }
  const codec = withCodec ? await runCodec() : []
  mkdirSync(out, { recursive: true })
  const protocols = withProtocols ? await runProtocols() : []

  const report: Report = {
    bench: "sockets",
    schema: 2,
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
    settings: {
      duration,
      warmup,
      floodSeconds,
      floodLimitMB,
      scenarios,
      loadgens,
      history: withHistory
        ? `framing check, ${history.latency} s of 1 x 1 x 64 B, ${history.throughput} s of 50 x 16 x 64 B`
        : "none"
    },
    skipped,
    notes: {
      messagesPerSec: "replies verified by the load generator per second of the measured window; with several " +
        "rounds (and with runs repeated because the machine was busy) the fastest run is kept, with its latencies",
      mbPerSec: "bytes of replies (header + payload) per second, one direction",
      cpu: "% of one core over the measured window: loadgen = the load generator process, server = the server " +
        "process (all threads), other = everything else on the machine",
      ratio: "figure / the same runtime's raw baseline, same load generator, same run",
      memory: "idle RSS once listening; peak RSS (VmHWM) during the first 1000 x 1 x 64 B run, on the fresh server"
    },
    results: entries,
    memory,
    flood: floods,
    codec,
    protocols
  }
  writeReport(report, out)
  console.log(`\n${renderHeadline(report)}`)
  console.log(`\nwritten: ${path.join(out, "results.json")}, README.md, chart.svg (${report.minutes} min)`)
}

const writeReport = (report: Report, dir: string, json = true): void => {
  mkdirSync(dir, { recursive: true })
  if (json) writeFileSync(path.join(dir, "results.json"), JSON.stringify(report, null, 2) + "\n")
  const readme = path.join(dir, "README.md")
  writeFileSync(readme, renderReadme(report, existsSync(readme) ? readFileSync(readme, "utf8") : undefined))
  formatFile(readme)
  writeFileSync(path.join(dir, "chart.svg"), renderChart(report))
  formatFile(path.join(dir, "chart.svg"))
}

const render = option("--render")
const entry: Promise<void> = render !== undefined
  ? Promise.resolve().then(() => {
    // Re-renders README.md and chart.svg from a results.json (e.g. after editing the notes).
    const report = JSON.parse(readFileSync(render, "utf8")) as Report
    const dir = path.resolve(option("--out") ?? path.dirname(render))
    writeReport(report, dir, false)
    console.log(`${renderHeadline(report)}\n\nwritten: ${path.join(dir, "README.md")}, chart.svg`)
  })
  : main()
entry.catch((error) => {
  console.error("bench FAILED:", error)
  killAll()
  process.exit(1)
})
