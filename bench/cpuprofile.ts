/**
 * Summarises a V8 / JavaScriptCore `.cpuprofile` (from `bun --cpu-prof`, `node --cpu-prof` or
 * `deno run --v8-flags=--cpu-prof`): the functions with the most self time and the most total
 * (inclusive) time, with their file and line.
 *
 * Usage: `bun bench/cpuprofile.ts <file.cpuprofile> [--top 25] [--filter text]`
 *   --filter: only count samples whose stack contains a frame matching this text (a file or a
 *             function name), e.g. to look inside the server's data callback.
 */
import { readFileSync } from "node:fs"
import process from "node:process"
import { argv, option } from "./lib/args.ts"

interface CallFrame {
  readonly functionName: string
  readonly url: string
  readonly lineNumber: number
}

interface ProfileNode {
  readonly id: number
  readonly callFrame: CallFrame
  readonly children?: ReadonlyArray<number>
}

interface Profile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
  readonly startTime: number
  readonly endTime: number
}

const file = argv.find((a) =>
  !a.startsWith("--") && argv[argv.indexOf(a) - 1] !== "--top" &&
  argv[argv.indexOf(a) - 1] !== "--filter"
)
if (file === undefined) {
  console.error("usage: bun bench/cpuprofile.ts <file.cpuprofile> [--top 25] [--filter text]")
  process.exit(64)
}
const top = Number(option("--top") ?? 25)
const filter = option("--filter")

const profile = JSON.parse(readFileSync(file, "utf8")) as Profile
const byId = new Map<number, ProfileNode>()
const parent = new Map<number, number>()
for (const node of profile.nodes) {
  byId.set(node.id, node)
  for (const child of node.children ?? []) parent.set(child, node.id)
}

const short = (url: string): string => {
  const at = url.indexOf("/node_modules/")
  if (at !== -1) return url.slice(at + "/node_modules/".length)
  const src = url.search(/\/(src|bench|examples)\//)
  return src !== -1 ? url.slice(src + 1) : url.replace(/^file:\/\//, "")
}
const keyOf = (frame: CallFrame): string =>
  `${frame.functionName === "" ? "(anonymous)" : frame.functionName}  ${short(frame.url)}:${frame.lineNumber + 1}`

const self = new Map<string, number>()
const total = new Map<string, number>()
let all = 0
let idle = 0
for (let i = 0; i < profile.samples.length; i++) {
  const dt = profile.timeDeltas[i + 1] ?? 0
  const leaf = byId.get(profile.samples[i])
  if (leaf === undefined) continue
  const name = leaf.callFrame.functionName
  if (name === "(idle)" || name === "(program)" && leaf.callFrame.url === "") {
    if (name === "(idle)") {
      idle += dt
      continue
    }
  }
  const stack: Array<string> = []
  for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) {
    const node = byId.get(id)!
    if (node.callFrame.functionName === "(root)") break
    stack.push(keyOf(node.callFrame))
  }
  if (filter !== undefined && !stack.some((k) => k.includes(filter))) continue
  all += dt
  self.set(stack[0], (self.get(stack[0]) ?? 0) + dt)
  for (const key of new Set(stack)) total.set(key, (total.get(key) ?? 0) + dt)
}

const ms = (us: number) => (us / 1000).toFixed(0).padStart(7)
const pct = (us: number) => `${((us / all) * 100).toFixed(1)}%`.padStart(7)
console.log(
  `${file}: ${(all / 1e6).toFixed(2)} s of samples${filter !== undefined ? ` under "${filter}"` : ""}, ` +
    `${(idle / 1e6).toFixed(2)} s idle`
)
console.log(`\nself time (top ${top})`)
for (const [key, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(`${ms(us)} ms ${pct(us)}  ${key}`)
}
console.log(`\ntotal time (top ${top})`)
for (const [key, us] of [...total].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(`${ms(us)} ms ${pct(us)}  ${key}`)
}
