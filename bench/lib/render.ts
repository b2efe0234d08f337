/**
 * docs/bench/README.md and chart.svg from a report. The text between the `notes` markers of an
 * existing README is kept: the analysis is written by hand, the tables are generated.
 */
import type { LoadgenName, Scenario } from "./load.ts"
import {
  disagreements,
  type Entry,
  type Figure,
  figureOf,
  find,
  fmtRate,
  fx,
  LOADGEN_LABEL,
  median,
  MEDIAN_ROUNDS,
  memoryOf,
  perConnectionKB,
  perCpu,
  ratio,
  rawOf,
  type Report,
  roundRatios,
  serversOf,
  targets
} from "./report.ts"
import type { Kind, RuntimeName } from "./servers.ts"

const RUNTIMES: ReadonlyArray<RuntimeName> = ["bun", "deno", "node", "go"]
const absolute = (kind: Kind) => kind === "raw" || kind === "go"

const value = (e: Entry | undefined, figure: Figure): number | undefined => figureOf(e?.result, figure)
const shown = (v: number, figure: Figure): string => figure === "msg" ? fmtRate(v) : `${v.toFixed(2)} ms`

/** One figure of a server in a scenario, one value per load generator ("Bun / C"). */
const cell = (report: Report, s: Entry, scenario: Scenario["id"], figure: Figure): string => {
  const parts = report.settings.loadgens.map((l) => {
    const e = find(report, s.server, scenario, l)
    if (e === undefined) return "-"
    if (e.error !== undefined) return "failed"
    const v = value(e, figure)
    if (v === undefined) return "-"
    if (absolute(s.kind)) return shown(v, figure)
    return fx(ratio(v, value(rawOf(report, e), figure)))
  })
  return parts.every((p) => p === "-") ? "-" : parts.join(" / ")
}

const memoryCell = (report: Report, s: Entry): string => {
  const m = memoryOf(report, s.server)
  const kb = perConnectionKB(m)
  if (kb === undefined) return "-"
  if (absolute(s.kind)) return `${kb.toFixed(1)} KB`
  return fx(ratio(kb, perConnectionKB(memoryOf(report, `${s.runtime}-raw`))))
}

export const renderHeadline = (report: Report): string => {
  const rows = [
    "| runtime | server | 1x1x64B msg/s | 1x1x64B p99 | 50x16x64B msg/s | 50x16x64B p99 | 50x4x4KiB msg/s | " +
    "50x4x4KiB p99 | 1000x1x64B msg/s | memory per connection |",
    "|---|---|---|---|---|---|---|---|---|---|"
  ]
  for (const runtime of RUNTIMES) {
    for (const s of serversOf(report, runtime)) {
      rows.push(
        `| ${runtime} | ${s.label} | ${cell(report, s, "latency", "msg")} | ${cell(report, s, "latency", "p99")} | ` +
          `${cell(report, s, "throughput", "msg")} | ${cell(report, s, "throughput", "p99")} | ` +
          `${cell(report, s, "bandwidth", "msg")} | ${cell(report, s, "bandwidth", "p99")} | ` +
          `${cell(report, s, "connections", "msg")} | ${memoryCell(report, s)} |`
      )
    }
  }
  return rows.join("\n")
}

/** Rounds a scenario ran, from its samples (settings of older reports did not record `--rounds`). */
const roundsOf = (report: Report, scenario: Scenario["id"]): number =>
  report.results.reduce(
    (n, e) => e.scenario === scenario ? Math.max(n, ...e.samples.map((x) => x.round)) : n,
    0
  )

/**
 * The headline's msg/s ratios another way: the median of per-round ratios, with their range. The headline
 * keeps each server's fastest round, so one quick round can decide a cell; this one cannot.
 */
const renderRounds = (report: Report): Array<string> => {
  const scenarios = report.settings.scenarios.filter((s) => roundsOf(report, s.id) > 1)
  if (scenarios.length === 0) return []
  const lines = [
    "## Round by round",
    "",
    "msg/s over raw, per round: each round of a server against the raw server's run in the same round. Each cell: " +
    "the median round's ratio, then the lowest and highest, " +
    `${report.settings.loadgens.map((l) => LOADGEN_LABEL[l]).join(" / ")} load generator. The headline takes ` +
    "each server's fastest round instead, so one fast round can decide a cell there.",
    "",
    `| runtime | server | ${scenarios.map((s) => `${s.label} (${roundsOf(report, s.id)} rounds)`).join(" | ")} |`,
    `|---|---|${scenarios.map(() => "---|").join("")}`
  ]
  for (const runtime of RUNTIMES) {
    for (const s of serversOf(report, runtime)) {
      if (absolute(s.kind)) continue
      const cells = scenarios.map((scenario) => {
        const parts = report.settings.loadgens.map((l) => {
          const e = find(report, s.server, scenario.id, l)
          const rs = e === undefined ? [] : roundRatios(report, e)
          if (rs.length === 0) return "-"
          return `${fx(median(rs))} (${rs[0]!.toFixed(2)}-${rs[rs.length - 1]!.toFixed(2)})`
        })
        return parts.join(" / ")
      })
      lines.push(`| ${runtime} | ${s.label} | ${cells.join(" | ")} |`)
    }
  }
  lines.push("")
  return lines
}

const renderTargets = (report: Report): Array<string> => {
  const loadgens = report.settings.loadgens
  const lines = [
    `| target | ${loadgens.map((l) => `${LOADGEN_LABEL[l]} load generator`).join(" | ")} | met |`,
    `|---|${loadgens.map(() => "---|").join("")}---|`
  ]
  for (const t of targets(report)) {
    const values = "both" in t.values
      ? loadgens.map((_, i) => (i === 0 ? fx(t.values.both) : "(same)"))
      : loadgens.map((l) => {
        const best = t.best?.[l]
        return best === undefined || fx(best) === fx(t.values[l])
          ? fx(t.values[l])
          : `${fx(t.values[l])} (best ${fx(best)})`
      })
    const met = t.met === undefined ? "-" : t.met ? "yes" : t.moonshot ? "missed" : "**no**"
    lines.push(`| ${t.text} | ${values.join(" | ")} | ${met} |`)
  }
  return lines
}

const renderScenario = (report: Report, scenario: Scenario): Array<string> => {
  const lines = [
    `## ${scenario.label} (${scenario.id})`,
    "",
    "| runtime | server | load generator | msg/s | x raw | MB/s | p50 ms | p99 ms | p99.9 ms | p99 x raw | " +
    "loadgen CPU | server CPU | other CPU | msg per server CPU-s | x raw |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
  ]
  const pct = (n: number | undefined) => n === undefined ? "-" : `${n.toFixed(0)}%`
  for (const runtime of RUNTIMES) {
    for (const s of serversOf(report, runtime)) {
      for (const loadgen of report.settings.loadgens) {
        const e = find(report, s.server, scenario.id, loadgen)
        if (e === undefined) continue
        if (e.error !== undefined || e.result === undefined) {
          lines.push(`| ${runtime} | ${s.label} | ${loadgen} | failed: ${e.error ?? "no result"} |`)
          continue
        }
        const r = e.result
        const raw = rawOf(report, e)
        const own = absolute(s.kind)
        lines.push(
          `| ${runtime} | ${s.label} | ${loadgen} | ${fmtRate(r.messagesPerSec)} | ` +
            `${own ? "-" : fx(ratio(r.messagesPerSec, raw?.result?.messagesPerSec))} | ${r.mbPerSec} | ` +
            `${r.latencyMs.p50.toFixed(3)} | ${r.latencyMs.p99.toFixed(3)} | ${r.latencyMs.p999.toFixed(3)} | ` +
            `${own ? "-" : fx(ratio(r.latencyMs.p99, raw?.result?.latencyMs.p99))} | ` +
            `${pct(r.loadgenCpuPercent)} | ${pct(r.serverCpuPercent)} | ${pct(r.otherCpuPercent)} | ` +
            `${perCpu(e) === undefined ? "-" : fmtRate(perCpu(e)!)} | ${
              own ? "-" : fx(ratio(perCpu(e), perCpu(raw)))
            } |`
        )
      }
    }
  }
  const rounds = roundsOf(report, scenario.id)
  if (rounds > 1) lines.push("", `Best of ${rounds} rounds, each visiting every server of the runtime in turn.`)
  lines.push("")
  return lines
}

const renderMemory = (report: Report): Array<string> => {
  const lines = [
    "## Memory",
    "",
    "Each server's RSS once listening (idle), then its peak RSS (VmHWM) while 1000 connections each keep one " +
    "64-byte request in flight: the first run of a fresh process. Memory per connection is peak minus idle RSS, " +
    "over 1000. Each server is measured on several fresh processes (they differ by a few KB per connection, raw " +
    "servers too); the table shows the process with the median figure, and every process's figure in the last " +
    "column. For sluice, the idle RSS above raw's is split into what \"raw + effect loaded\" shows Effect's " +
    "modules take on their own, and the rest (sluice's code, msgpackr).",
    "",
    "| runtime | server | idle RSS MB | peak RSS at 1000 connections MB | per connection KB | x raw | " +
    "idle RSS above raw MB | of which Effect's modules | per connection KB, each process |",
    "|---|---|---|---|---|---|---|---|---|"
  ]
  for (const runtime of RUNTIMES) {
    const raw = memoryOf(report, `${runtime}-raw`)
    const reference = memoryOf(report, `${runtime}-raw-effect`)
    for (const m of report.memory.filter((x) => x.runtime === runtime)) {
      if (m.error !== undefined) {
        lines.push(`| ${runtime} | ${m.label} | failed: ${m.error} |`)
        continue
      }
      const kb = perConnectionKB(m)
      const above = m.idleRssMB !== undefined && raw?.idleRssMB !== undefined ? m.idleRssMB - raw.idleRssMB : undefined
      const effect = reference?.idleRssMB !== undefined && raw?.idleRssMB !== undefined
        ? reference.idleRssMB - raw.idleRssMB
        : undefined
      const share = m.kind === "sluice" && above !== undefined && effect !== undefined && above > 0
        ? `${effect.toFixed(0)} MB (${((effect / above) * 100).toFixed(0)}%)`
        : "-"
      lines.push(
        `| ${runtime} | ${m.label} | ${m.idleRssMB?.toFixed(0) ?? "-"} | ${m.peakRssMB?.toFixed(0) ?? "-"} | ` +
          `${kb?.toFixed(1) ?? "-"} | ${absolute(m.kind) ? "-" : fx(ratio(kb, perConnectionKB(raw)))} | ${
            m.kind === "raw" || above === undefined ? "-" : above.toFixed(0)
          } | ${share} | ${m.samples?.map((x) => perConnectionKB(x)?.toFixed(1) ?? "-").join(", ") ?? "-"} |`
      )
    }
  }
  lines.push("")
  return lines
}

const renderDisagreements = (report: Report): Array<string> => {
  if (report.settings.loadgens.length < 2) return []
  const list = disagreements(report)
  const lines = [
    "## Where the two load generators disagree",
    "",
    "Ratios to raw that the Bun and the C load generator put more than 15% apart. A result only one of them " +
    "sees is looked into (see the notes below), not averaged away."
  ]
  lines.push("")
  if (list.length === 0) {
    lines.push("None in this run.", "")
    return lines
  }
  lines.push(
    "| runtime | server | scenario | figure | Bun load generator | C load generator |",
    "|---|---|---|---|---|---|"
  )
  for (const d of list) {
    lines.push(`| ${d.runtime} | ${d.label} | ${d.scenario} | ${d.what} | ${fx(d.bun)} | ${fx(d.c)} |`)
  }
  lines.push("")
  return lines
}

const renderFlood = (report: Report): Array<string> => {
  const lines = [
    "## A client that never reads while it keeps sending",
    "",
    `bench/flood.ts connects, stops reading, and writes 64 KiB requests as fast as the server takes them, for ` +
    `${report.settings.floodSeconds} s or until the server's RSS passes the limit. A server without ` +
    "backpressure keeps reading and buffers every reply; sluice (default options: highWaterMark 1 MiB, " +
    "maxOutboundBytes 16 MiB, writeTimeout 30 s) stops reading from that peer once its outbound queue passes " +
    "the high-water mark, so the client's sends stall in the kernel's buffers.",
    "",
    "| runtime | server | RSS before MB | peak RSS MB | growth MB | client sent MB | stopped by | RSS after MB |",
    "|---|---|---|---|---|---|---|---|"
  ]
  for (const f of report.flood) {
    lines.push(
      `| ${f.runtime} | ${f.label} | ${f.rssBeforeMB ?? "-"} | ${f.peakRssMB ?? "-"} | ${f.growthMB ?? "-"} | ` +
        `${f.client?.sentMB ?? "-"} | ${f.stoppedBy} after ${f.seconds} s | ${f.rssAfterMB ?? "-"} |`
    )
  }
  lines.push("")
  return lines
}

interface CodecReport {
  readonly runtime: string
  readonly version?: string
  readonly error?: string
  readonly results?: ReadonlyArray<
    { label: string; framesPerSec: number; ratioToPlain: number; target?: string; targetMet?: boolean }
  >
}

const renderCodec = (report: Report): Array<string> => {
  if (report.codec.length === 0) return []
  const lines = [
    "## Codec micro-benchmark (bench/codec.ts, `npm run bench:codec`)",
    "",
    "| runtime | variant | M frames/s | x plain loop | target |",
    "|---|---|---|---|---|"
  ]
  for (const c of report.codec as Array<CodecReport>) {
    if (c.error !== undefined || c.results === undefined) {
      lines.push(`| ${c.runtime} | failed: ${c.error ?? "no results"} | | | |`)
      continue
    }
    for (const r of c.results) {
      const target = r.target === undefined ? "" : `${r.target}: ${r.targetMet ? "met" : "**missed**"}`
      lines.push(
        `| ${c.runtime} ${c.version ?? ""} | ${r.label} | ${(r.framesPerSec / 1e6).toFixed(1)} | ` +
          `${r.ratioToPlain.toFixed(2)} | ${target} |`
      )
    }
  }
  lines.push("")
  return lines
}

const HOW_IT_RUNS = [
  "- `npm run bench` (about 50 minutes) or `npm run bench -- --quick` (a few minutes: fewer servers and " +
  "scenarios, shorter runs, written to $TMPDIR/sluice-bench unless `--out DIR`). Other options: " +
  "`--runtimes bun,deno,node,go`, `--loadgens bun,c`, `--servers raw,sluice-sync,...`, " +
  "`--scenarios connections,latency,throughput,bandwidth`, `--duration s`, `--warmup s`, `--rounds n`, " +
  "`--flood-seconds s`, `--flood-limit-mb n`, `--no-codec`, `--no-flood`, `--no-history`, `--no-protocols`; " +
  "`--render results.json` re-renders this file from a results file.",
  "- Per runtime, every server starts at once (pinned to core 0; the load generators run on core 1). Then: " +
  "(1) 1000 x 1 x 64 B on the fresh servers, for memory; (2) each server's history: the framing check " +
  "(bench/framing.ts: frames of 0 B to 100 KB cut at awkward places, each echo compared), 2 s of 1 x 1 x 64 B " +
  "and 3 s of 50 x 16 x 64 B, so that no server is measured fresh; (3) every scenario, with both load " +
  "generators, in rounds that visit every server in turn. While one server is measured, the others of its " +
  "runtime are stopped (SIGSTOP) and continued after the run: an idle runtime still collects its heap some " +
  "seconds after its own run, and that work belongs in its own runs, not in its neighbours'.",
  "- Two load generators of different makes run every scenario: bench/loadgen.ts (Bun.connect) and " +
  "bench/loadgen.c (one thread, epoll, built from source with gcc). Both keep `--inflight` requests " +
  "outstanding per connection, answer each read's replies with as many new requests in one write, verify every " +
  "reply byte for byte (length, sequence number, content) and time each request from its write to the read of " +
  "its reply. A cell `a / b` in the headline is the Bun load generator's figure, then the C one's.",
  "- On a shared machine: before each run the bench waits (a little) for the rest of the machine to go quiet, " +
  "and repeats a run during which other processes used more than a quarter of a core (`--noisy`, `--retries`); " +
  "the fastest run is kept. The `other CPU` column shows what else ran during the kept run. The headline " +
  "compares each server's best round with raw's best round; the targets are judged on the median of the " +
  'per-round ratios once a scenario has 3 rounds ("Round by round").',
  "- Servers (each runnable alone with `PORT`): bench/servers/raw-{bun,deno,node}.ts (native socket API, " +
  "hand-written length-prefix parser, one coalesced write per read, partial writes buffered, no backpressure), " +
  "bench/servers/sluice.ts (`HANDLER=sync|succeed|handler-gen|gen`, default options), " +
  "bench/servers/effect-socket.ts (Effect 4's `effect/socket` SocketServer from `@effect/platform-node`: " +
  "`idiomatic`, a handler Effect per message and one `writeAll` per pulled batch; `batched`, a plain function " +
  "per frame and one buffer, one `write` per batch) and bench/servers/go-echo (a goroutine per connection over " +
  "bufio, built with the Go toolchain on PATH; left out when there is none). Node servers run compiled to " +
  "JavaScript (`bun build --target=node`), as deployed.",
  "- After the socket benchmark (not with `--quick`), the protocol benchmarks run: the RESP example against " +
  "redis-server (redis-benchmark), the HTTP example against each runtime's own HTTP server (wrk) and sluice/rpc " +
  "against effect/rpc's own socket protocol, each into `protocol-<name>.json`: [protocols.md](protocols.md)."
]

export const renderReadme = (report: Report, previous: string | undefined): string => {
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
  const lines: Array<string> = ["# sluice benchmarks", ""]
  lines.push(
    `Produced by \`${report.command}\` on ${report.date.slice(0, 10)} (${report.minutes} min): ` +
      `${m.cores} x ${m.cpuModel}, ${m.memoryGB} GB; Bun ${v.bun}, Deno ${v.deno}, Node ${v.node}` +
      `${v.go ? `, Go ${v.go}` : ""}${v.gcc ? `, gcc ${v.gcc}` : ""}. ` +
      (m.pinned ? "Servers pinned to core 0, load generators to core 1 (`taskset`). " : "No CPU pinning. ") +
      `Each run: ${report.settings.warmup} s warm-up, then ${report.settings.duration} s measured; load average ` +
      `${m.loadAverageBefore[0]} before, ${m.loadAverageAfter[0]} after. Raw figures: results.json.`
  )
  lines.push("")
  lines.push(
    "Every figure of a sluice or effect/socket server is a ratio to the raw baseline of the same runtime, from the " +
      "same load generator, in the same run (raw and Go rows show absolute figures). Messages/s: higher is " +
      "better; p99 latency and memory: lower is better."
  )
  if (report.skipped.length > 0) lines.push("", ...report.skipped.map((s) => `> ${s}`))
  lines.push("", "![ratios to raw](chart.svg)", "", "## Headline", "")
  lines.push(
    `Each cell: ${report.settings.loadgens.map((l) => LOADGEN_LABEL[l]).join(" / ")} load generator.`,
    "",
    renderHeadline(report),
    ""
  )
  lines.push(...renderRounds(report))
  lines.push(
    "## Targets",
    "",
    `Judged on the median round (the table above) where a scenario ran ${MEDIAN_ROUNDS} rounds or more: a ratio of two ` +
      "runs made minutes apart is steadier than the best round of one server against the best round of another, " +
      "which on a shared machine may come from different moments. The best-round ratio (the headline's) follows " +
      "in brackets where it differs.",
    "",
    ...renderTargets(report),
    ""
  )
  lines.push(...renderDisagreements(report))
  lines.push(...renderMemory(report))
  for (const scenario of report.settings.scenarios) lines.push(...renderScenario(report, scenario))
  lines.push(...renderFlood(report))
  lines.push(...renderCodec(report))
  lines.push("## How it runs", "", ...HOW_IT_RUNS, "", notes, "")
  return lines.join("\n")
}

export const renderChart = (report: Report): string => {
  const loadgens = report.settings.loadgens
  const rows: Array<{ label: string; values: Array<[LoadgenName, number]>; kind: Kind; group: string }> = []
  for (const id of ["throughput", "bandwidth", "latency", "connections"] as const) {
    const scenario = report.settings.scenarios.find((s) => s.id === id)
    if (scenario === undefined) continue
    for (const runtime of RUNTIMES) {
      for (const s of serversOf(report, runtime)) {
        if (absolute(s.kind)) continue
        const values: Array<[LoadgenName, number]> = []
        for (const l of loadgens) {
          const e = find(report, s.server, scenario.id, l)
          const r = e?.result === undefined ? undefined : ratio(e.result.messagesPerSec, value(rawOf(report, e), "msg"))
          if (r !== undefined) values.push([l, r])
        }
        if (values.length > 0) {
          rows.push({ label: `${runtime} ${s.label}`, values, kind: s.kind, group: `${scenario.label}: messages/s` })
        }
      }
    }
  }
  const BAR = 9
  const GAP = 5
  const HEAD = 26
  const LEFT = 240
  const SCALE = 340 // pixels for 1.0x
  const CAP = 1.5
  const WIDTH = LEFT + CAP * SCALE + 60
  const groups = [...new Set(rows.map((r) => r.group))]
  const rowHeight = loadgens.length * BAR + GAP
  const height = 50 + groups.length * HEAD + rows.length * rowHeight + 30
  const color = (kind: Kind, l: LoadgenName) =>
    kind === "sluice"
      ? l === "bun" ? "#1f9e89" : "#136b5c"
      : kind === "platform"
      ? l === "bun" ? "#e0823d" : "#a85a22"
      : l === "bun"
      ? "#999"
      : "#666"
  const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;")
  const n = (x: number) => Math.round(x * 10) / 10
  const title = `Ratio to the same runtime's raw baseline, same load generator, same run (${report.date.slice(0, 10)}${
    report.quick ? ", quick pass" : ""
  })`
  const parts: Array<string> = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" ` +
    `font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${height}" fill="#fff"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">${esc(title)}</text>`
  ]
  let y = 40
  for (const group of groups) {
    y += HEAD
    parts.push(`<text x="10" y="${y - 8}" font-weight="bold">${esc(group)}</text>`)
    for (const r of rows.filter((x) => x.group === group)) {
      parts.push(`<text x="${LEFT - 6}" y="${y + loadgens.length * BAR - 2}" text-anchor="end">${esc(r.label)}</text>`)
      r.values.forEach(([l, v], i) => {
        const w = Math.max(1, Math.min(v, CAP) * SCALE)
        const top = y + i * BAR
        parts.push(`<rect x="${LEFT}" y="${top}" width="${n(w)}" height="${BAR - 1}" fill="${color(r.kind, l)}"/>`)
        parts.push(`<text x="${n(LEFT + w + 4)}" y="${top + BAR - 1}" font-size="10">${v.toFixed(2)}x ${l}</text>`)
      })
      y += rowHeight
    }
  }
  const x1 = LEFT + SCALE
  parts.push(
    `<line x1="${x1}" y1="40" x2="${x1}" y2="${y}" stroke="#333" stroke-dasharray="4 3"/>` +
      `<text x="${x1 + 4}" y="${y + 14}">raw = 1.0</text>`,
    `<rect x="${LEFT}" y="${y + 4}" width="10" height="10" fill="${color("sluice", "bun")}"/>` +
      `<text x="${LEFT + 14}" y="${y + 13}">sluice</text>` +
      `<rect x="${LEFT + 70}" y="${y + 4}" width="10" height="10" fill="${color("platform", "bun")}"/>` +
      `<text x="${LEFT + 84}" y="${y + 13}">effect/socket</text>` +
      `<text x="${LEFT + 180}" y="${y + 13}">upper bar: Bun load generator, lower: C</text>`,
    "</svg>"
  )
  return parts.join("\n") + "\n"
}
