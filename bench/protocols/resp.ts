/**
 * The RESP example against redis-server itself (`npm run bench:resp`, on Bun): `redis-benchmark -P 16
 * -t set,get` against a real redis-server and against examples/resp/server.ts on Bun, Deno and Node,
 * in the same run, and the ratio of each to redis-server.
 *
 * Every server runs in its own process, pinned to core 0 (with `taskset`, when there is one and 2
 * cores); redis-benchmark runs pinned to core 1. After a warm-up run against each, rounds visit every
 * server in turn, so that drift on the machine hits all alike; the median of the rounds is reported.
 * Two figures per server: requests per second (what the goal is about), and requests per CPU second
 * of the server process (user + system, every thread), which other load on the machine moves much
 * less: a busy machine gives a server fewer CPU seconds, not dearer ones.
 * After the rounds, every sluice server is checked: the keys redis-benchmark wrote hold 3-byte values
 * (redis-benchmark checks no reply itself).
 *
 * Usage: `bun bench/protocols/resp.ts [--runtimes bun,deno,node] [--requests 200000] [--clients 50]
 *   [--pipeline 16] [--rounds 3] [--enforce] [--json FILE]`. `--enforce` exits non-zero when Bun is
 * under the goal (0.5x redis-server on SET or GET). Every process it starts is stopped on exit and on
 * SIGINT.
 */
import * as fs from "node:fs"
import * as net from "node:net"
import process from "node:process"
import {
  BUN,
  Bun,
  type Child,
  cpuModel,
  cpuOf,
  DENO,
  NODE,
  pin,
  pinned,
  sleep,
  spawn,
  stop,
  waitForPort,
  which
} from "../lib/machine.ts"
import { whileStopped } from "../lib/alone.ts"
import { argv, option } from "../lib/args.ts"

type Runtime = "bun" | "deno" | "node"
type Test = "SET" | "GET"

const GOAL = 0.5
const tests: ReadonlyArray<Test> = ["SET", "GET"]

const runtimes = (option("--runtimes") ?? "bun,deno,node").split(",") as Array<Runtime>
const requests = Number(option("--requests") ?? 200_000)
const clients = Number(option("--clients") ?? 50)
const pipeline = Number(option("--pipeline") ?? 16)
const rounds = Number(option("--rounds") ?? 3)
const enforce = argv.includes("--enforce")
const jsonFile = option("--json")

const redisServer = which("redis-server")
const redisBenchmark = which("redis-benchmark")
const redisCli = which("redis-cli")
if (redisServer === undefined || redisBenchmark === undefined || redisCli === undefined) {
  console.error("bench:resp needs redis-server, redis-benchmark and redis-cli (Debian: redis-server, redis-tools)")
  process.exit(1)
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const probe = net.createServer()
    probe.once("error", reject)
    probe.listen(0, "127.0.0.1", () => {
      const port = (probe.address() as net.AddressInfo).port
      probe.close(() => resolve(port))
    })
  })

const serverCommand = (runtime: Runtime): Array<string> => {
  const file = "examples/resp/server.ts"
  return runtime === "bun"
    ? [BUN, file]
    : runtime === "deno"
    ? [DENO, "run", "-A", file]
    : [NODE, "--import", "tsx", file]
}

interface Target {
  readonly name: string
  readonly port: number
  readonly child: Child
}

const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes)

/** One redis-benchmark run: requests per second of each test, from its CSV output. */
const benchmark = (port: number, n: number): Record<Test, number> => {
  const result = Bun.spawnSync({
    cmd: pin(1, [
      redisBenchmark,
      "-h",
      "127.0.0.1",
      "-p",
      String(port),
      "-t",
      "set,get",
      "-n",
      String(n),
      "-c",
      String(clients),
      "-P",
      String(pipeline),
      "--csv"
    ]),
    stdout: "pipe",
    stderr: "pipe"
  })
  const output = text(result.stdout)
  if (!result.success || /error/i.test(output + text(result.stderr))) {
    throw new Error(`redis-benchmark failed on port ${port}:\n${output}\n${text(result.stderr)}`)
  }
  const rps = {} as Record<Test, number>
  for (const line of output.split("\n")) {
    const [test, value] = line.split(",").map((field) => field.replace(/"/g, ""))
    if (test === "SET" || test === "GET") rps[test] = Number(value)
  }
  if (rps.SET === undefined || rps.GET === undefined) {
    throw new Error(`no SET/GET in redis-benchmark's output:\n${output}`)
  }
  return rps
}

const cli = (port: number, ...args: Array<string>): string =>
  text(Bun.spawnSync({ cmd: [redisCli, "-p", String(port), ...args], stdout: "pipe", stderr: "pipe" }).stdout).trim()

const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

const main = async () => {
  console.log(
    `RESP: redis-benchmark -t set,get -n ${requests} -c ${clients} -P ${pipeline}, ${rounds} round(s); ` +
      `${cpuModel()}, ${pinned ? "servers on core 0, redis-benchmark on core 1" : "no pinning"}`
  )
  const targets: Array<Target> = []
  const children: Array<Child> = []
  const redisPort = await freePort()
  const redis = spawn(
    pin(0, [redisServer, "--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]),
    {},
    "ignore"
  )
  children.push(redis)
  await waitForPort(redisPort, redis)
  const version = /v=(\S+)/.exec(text(Bun.spawnSync({ cmd: [redisServer, "--version"], stdout: "pipe" }).stdout))
  targets.push({ name: `redis-server ${version?.[1] ?? ""}`.trim(), port: redisPort, child: redis })
  for (const runtime of runtimes) {
    const port = await freePort()
    const child = spawn(pin(0, serverCommand(runtime)), { PORT: String(port), HOST: "127.0.0.1" }, "ignore")
    children.push(child)
    await waitForPort(port, child)
    targets.push({ name: `sluice on ${runtime}`, port, child })
  }

  // Warm-up (JIT, sockets), then rounds that visit every server in turn.
  for (const target of targets) benchmark(target.port, Math.max(10_000, requests / 5))
  const results = new Map<string, Record<Test | "perCpu", Array<number>>>(
    targets.map((t) => [t.name, { SET: [], GET: [], perCpu: [] }])
  )
  for (let round = 1; round <= rounds; round++) {
    for (const target of targets) {
      const cpuBefore = cpuOf(target.child.pid) ?? 0
      // The other servers are stopped meanwhile (bench/lib/alone.ts).
      const others = targets.filter((t) => t !== target).map((t) => t.child)
      const rps = whileStopped(others, () => benchmark(target.port, requests))
      const cpu = (cpuOf(target.child.pid) ?? 0) - cpuBefore
      // SET and GET, `requests` each (and the connections redis-benchmark opens).
      const perCpu = cpu > 0 ? (2 * requests) / cpu : 0
      const result = results.get(target.name)!
      for (const test of tests) result[test].push(rps[test])
      result.perCpu.push(perCpu)
      console.log(
        `  round ${round}: ${target.name.padEnd(22)} SET ${rps.SET.toFixed(0)}/s  GET ${rps.GET.toFixed(0)}/s  ` +
          `${perCpu.toFixed(0)} requests per CPU second`
      )
      await sleep(200)
    }
  }

  // redis-benchmark checks no reply: the values it wrote must be there.
  for (const target of targets.slice(1)) {
    const value = cli(target.port, "STRLEN", "key:__rand_int__")
    if (value !== "3") throw new Error(`${target.name}: key:__rand_int__ holds ${value} bytes, expected 3`)
  }

  const redisMedian = results.get(targets[0]!.name)!
  const rows = targets.map((target) => {
    const r = results.get(target.name)!
    return {
      name: target.name,
      SET: median(r.SET),
      GET: median(r.GET),
      perCpu: median(r.perCpu),
      ratioSET: median(r.SET) / median(redisMedian.SET),
      ratioGET: median(r.GET) / median(redisMedian.GET),
      ratioCpu: median(r.perCpu) / median(redisMedian.perCpu)
    }
  })
  console.log("")
  console.log("| server                 | SET (req/s) | ratio | GET (req/s) | ratio | req per CPU s | ratio |")
  console.log("| ---------------------- | ----------- | ----- | ----------- | ----- | ------------- | ----- |")
  for (const row of rows) {
    console.log(
      `| ${row.name.padEnd(22)} | ${row.SET.toFixed(0).padStart(11)} | ${row.ratioSET.toFixed(2).padStart(4)}x ` +
        `| ${row.GET.toFixed(0).padStart(11)} | ${row.ratioGET.toFixed(2).padStart(4)}x ` +
        `| ${row.perCpu.toFixed(0).padStart(13)} | ${row.ratioCpu.toFixed(2).padStart(4)}x |`
    )
  }
  if (jsonFile !== undefined) {
    fs.writeFileSync(
      jsonFile,
      JSON.stringify({ requests, clients, pipeline, rounds, cpu: cpuModel(), rows }, null, 2) + "\n"
    )
  }
  for (const child of children) await stop(child)
  const bun = rows.find((row) => row.name === "sluice on bun")
  if (bun !== undefined) {
    const met = bun.ratioSET >= GOAL && bun.ratioGET >= GOAL
    console.log(`\ngoal (Bun >= ${GOAL}x redis-server on SET and GET): ${met ? "met" : "missed"}`)
    if (!met && enforce) process.exit(1)
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
