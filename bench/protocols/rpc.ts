/**
 * effect/rpc over sluice against effect/rpc over its own socket protocol (`npm run bench:rpc`): the
 * same service (examples/rpc/api.ts, its `Greet` call), the same `RpcServer` and `RpcClient`, in the
 * same run, on each runtime. Only the `Protocol` under them differs:
 *
 * - `sluice`: `layerProtocolServer` / `layerProtocolClient` of `sluice/rpc` (length-prefixed
 *   MessagePack over the runtime's native sockets);
 * - `effect-ndjson`: `RpcServer.layerProtocolSocketServer` over `NodeSocketServer` and
 *   `RpcClient.layerProtocolSocket` over `NodeSocket` (@effect/platform-node), with
 *   `RpcSerialization.layerNdjson`: effect's own socket stack as its documentation sets it up;
 * - `effect-msgpack`: the same effect socket stack with `sluice/rpc`'s `layerSerialization`: the same
 *   bytes on the wire as `sluice`, so that the difference is the transport and protocol alone.
 *
 * For each runtime, stack and number of calls in flight, the server runs in its own process (pinned to
 * core 0 with `taskset` when there is one) and a load process of the same runtime and stack (core 1)
 * keeps N calls in flight over one connection for the warm-up, then counts the calls answered (each
 * answer checked) for the measured seconds, and the CPU time both processes used meanwhile (the
 * server's from /proc, the load process's from `process.cpuUsage`). On a machine that other work
 * shares, calls per second say how much CPU the processes were given; CPU time per call says what a
 * protocol costs. Rounds visit every stack in turn, so that drift on the machine hits all alike; the
 * medians of the rounds are reported, with each stack's ratio to sluice.
 *
 * Usage: `bun bench/protocols/rpc.ts [--runtimes bun,node,deno] [--in-flight 1,64] [--seconds 3]
 *   [--warmup 1] [--rounds 3] [--stacks sluice,effect-ndjson,effect-msgpack] [--json FILE]`. Every process it starts is stopped on exit and on SIGINT.
 * Internal: `--serve STACK --port P` runs a server, `--load STACK --port P --in-flight N` a load process.
 */
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import * as NodeSocketServer from "@effect/platform-node/NodeSocketServer"
import { Effect, Fiber, Layer } from "effect"
import { RpcClient, RpcSerialization, RpcServer } from "effect/rpc"
import * as childProcess from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import process from "node:process"
import { layerCatchDefects, layerProtocolClient, layerProtocolServer, layerSerialization } from "../../src/rpc.ts"
import { Api } from "../../examples/rpc/api.ts"
import { handlers } from "../../examples/rpc/service.ts"
import { option } from "../lib/args.ts"

type Stack = "sluice" | "effect-ndjson" | "effect-msgpack"
type Runtime = "bun" | "node" | "deno"

const stacks: ReadonlyArray<Stack> = ["sluice", "effect-ndjson", "effect-msgpack"]
const HOST = "127.0.0.1"
const ROOT = path.resolve(import.meta.dirname ?? new URL(".", import.meta.url).pathname, "../..")
const SELF = path.join(ROOT, "bench/protocols/rpc.ts")

const isStack = (s: string | undefined): s is Stack => stacks.includes(s as Stack)

// --- a server -------------------------------------------------------------------------------------

const serve = (stack: Stack, port: number) => {
  const service = RpcServer.layer(Api).pipe(Layer.provide([handlers, layerCatchDefects]))
  const server: Layer.Layer<never, unknown> = stack === "sluice"
    ? service.pipe(Layer.provide(layerProtocolServer({ host: HOST, port })))
    : service.pipe(
      Layer.provide(RpcServer.layerProtocolSocketServer),
      Layer.provide(stack === "effect-ndjson" ? RpcSerialization.layerNdjson : layerSerialization),
      Layer.provide(NodeSocketServer.layer({ host: HOST, port }))
    )
  Effect.runFork(Layer.launch(server))
  // An exit of its own (not a kill) lets `--cpu-prof` write its profile.
  process.on("SIGTERM", () => process.exit(0))
  process.on("SIGINT", () => process.exit(0))
}

// --- a load process -------------------------------------------------------------------------------

const clientLayer = (stack: Stack, port: number): Layer.Layer<RpcClient.Protocol, unknown> =>
  stack === "sluice" ? layerProtocolClient({ host: HOST, port }) : RpcClient.layerProtocolSocket().pipe(
    Layer.provide([
      NodeSocket.layerNet({ host: HOST, port }),
      stack === "effect-ndjson" ? RpcSerialization.layerNdjson : layerSerialization
    ])
  )

/** CPU seconds (user + system) a process has used so far, from /proc (Linux); undefined elsewhere. */
const cpuOf = (pid: number, ticksPerSecond: number): number | undefined => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    // The fields after the command name (which may hold spaces, in parentheses): utime and stime are 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond
  } catch {
    return undefined
  }
}

const load = (
  stack: Stack,
  port: number,
  inFlight: number,
  warmupSeconds: number,
  seconds: number,
  serverPid: number,
  ticksPerSecond: number
) =>
  Effect.gen(function* () {
    const client = yield* RpcClient.make(Api)
    let phase: "warmup" | "measure" | "done" = "warmup"
    let calls = 0
    let wrong = 0
    const worker = Effect.gen(function* () {
      while (phase !== "done") {
        const answer = yield* client.Greet({ name: "bench" })
        if (answer !== "hello, bench") wrong++
        if (phase === "measure") calls++
      }
    })
    const workers = yield* Effect.forkChild(
      Effect.forEach(Array.from({ length: inFlight }), () => worker, { concurrency: "unbounded", discard: true })
    )
    yield* Effect.sleep(`${warmupSeconds} seconds`)
    phase = "measure"
    const start = performance.now()
    const serverStart = cpuOf(serverPid, ticksPerSecond)
    const clientStart = process.cpuUsage()
    yield* Effect.sleep(`${seconds} seconds`)
    const elapsed = (performance.now() - start) / 1000
    const measured = calls
    const serverEnd = cpuOf(serverPid, ticksPerSecond)
    const own = process.cpuUsage(clientStart)
    phase = "done"
    yield* Fiber.join(workers)
    return {
      calls: measured,
      seconds: elapsed,
      callsPerSecond: measured / elapsed,
      serverCpu: serverStart === undefined || serverEnd === undefined ? undefined : serverEnd - serverStart,
      clientCpu: (own.user + own.system) / 1e6,
      wrong
    }
  }).pipe(Effect.scoped, Effect.provide(clientLayer(stack, port)))

// --- the orchestrator -----------------------------------------------------------------------------

const bin = (name: string) => path.join(ROOT, "node_modules", ".bin", name)
const command = (runtime: Runtime, args: Array<string>): [string, Array<string>] => {
  switch (runtime) {
    case "bun":
      return [bin("bun"), [SELF, ...args]]
    case "deno":
      return [bin("deno"), ["run", "-A", SELF, ...args]]
    case "node":
      return [bin("node"), ["--import", "tsx", SELF, ...args]]
  }
}
const hasTaskset = fs.existsSync("/usr/bin/taskset")
const children = new Set<childProcess.ChildProcess>()

const spawn = (runtime: Runtime, core: number, args: Array<string>): childProcess.ChildProcess => {
  const [cmd, cmdArgs] = command(runtime, args)
  const child = hasTaskset
    ? childProcess.spawn("/usr/bin/taskset", ["-c", String(core), cmd, ...cmdArgs], {
      cwd: ROOT,
      env: { ...process.env, DENO_NO_UPDATE_CHECK: "1" },
      stdio: ["ignore", "pipe", "pipe"]
    })
    : childProcess.spawn(cmd, cmdArgs, {
      cwd: ROOT,
      env: { ...process.env, DENO_NO_UPDATE_CHECK: "1" },
      stdio: ["ignore", "pipe", "pipe"]
    })
  children.add(child)
  child.once("exit", () => children.delete(child))
  return child
}

const killAll = () => {
  for (const child of children) child.kill("SIGKILL")
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const probe = net.createServer()
    probe.once("error", reject)
    probe.listen(0, HOST, () => {
      const port = (probe.address() as net.AddressInfo).port
      probe.close(() => resolve(port))
    })
  })

const canConnect = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = net.connect({ host: HOST, port })
    socket.once("connect", () => {
      socket.destroy()
      resolve(true)
    })
    socket.once("error", () => resolve(false))
  })

interface Sample {
  readonly runtime: Runtime
  readonly stack: Stack
  readonly inFlight: number
  readonly callsPerSecond: number
  readonly calls: number
  /** CPU seconds the server used while the calls were counted (undefined without /proc). */
  readonly serverCpu: number | undefined
  /** CPU seconds the load process used meanwhile. */
  readonly clientCpu: number
  readonly wrong: number
}

const ticksPerSecond = (): number => {
  try {
    return Number(childProcess.execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100
  } catch {
    return 100
  }
}

const clkTck = ticksPerSecond()

const measure = async (
  runtime: Runtime,
  stack: Stack,
  inFlight: number,
  warmup: number,
  seconds: number
): Promise<Sample> => {
  const port = await freePort()
  const server = spawn(runtime, 0, ["--serve", stack, "--port", String(port)])
  let serverOutput = ""
  server.stdout!.on("data", (c: Buffer) => (serverOutput += c.toString()))
  server.stderr!.on("data", (c: Buffer) => (serverOutput += c.toString()))
  try {
    const deadline = Date.now() + 30_000
    while (!(await canConnect(port))) {
      if (server.exitCode !== null || Date.now() > deadline) {
        throw new Error(`${runtime} ${stack} server did not listen:\n${serverOutput}`)
      }
      await new Promise((r) => setTimeout(r, 50))
    }
    const loader = spawn(runtime, 1, [
      "--load",
      stack,
      "--port",
      String(port),
      "--in-flight",
      String(inFlight),
      "--warmup",
      String(warmup),
      "--seconds",
      String(seconds),
      "--server-pid",
      String(server.pid),
      "--clk-tck",
      String(clkTck)
    ])
    let out = ""
    let err = ""
    loader.stdout!.on("data", (c: Buffer) => (out += c.toString()))
    loader.stderr!.on("data", (c: Buffer) => (err += c.toString()))
    const code = await new Promise<number | null>((resolve) => {
      const killer = setTimeout(() => loader.kill("SIGKILL"), (warmup + seconds + 60) * 1000)
      loader.once("exit", (c) => {
        clearTimeout(killer)
        resolve(c)
      })
    })
    const line = out.trim().split("\n").pop() ?? ""
    if (code !== 0 || !line.startsWith("{")) throw new Error(`${runtime} ${stack} load failed (${code}):\n${out}${err}`)
    const result = JSON.parse(line) as Omit<Sample, "runtime" | "stack" | "inFlight">
    return { runtime, stack, inFlight, ...result }
  } finally {
    server.kill("SIGKILL")
  }
}

const median = (xs: ReadonlyArray<number>): number => {
  const sorted = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

const format = (n: number): string => n >= 10_000 ? `${(n / 1000).toFixed(1)}k` : n.toFixed(0)
const micros = (n: number): string => Number.isFinite(n) ? n.toFixed(0) : "-"
const ratio = (a: number, b: number): string =>
  Number.isFinite(a) && Number.isFinite(b) ? `${(a / b).toFixed(2)}x` : "-"

/** CPU microseconds per call of a sample: the server's, and the server's and load process's together. */
const perCall = (sample: Sample) => ({
  server: sample.serverCpu === undefined ? NaN : (sample.serverCpu * 1e6) / sample.calls,
  total: sample.serverCpu === undefined ? NaN : ((sample.serverCpu + sample.clientCpu) * 1e6) / sample.calls
})

const orchestrate = async () => {
  const runtimes = (option("--runtimes") ?? "bun,node,deno").split(",") as Array<Runtime>
  const inFlights = (option("--in-flight") ?? "1,64").split(",").map(Number)
  const seconds = Number(option("--seconds") ?? 3)
  const warmup = Number(option("--warmup") ?? 1)
  const rounds = Number(option("--rounds") ?? 3)
  const chosen = (option("--stacks") ?? stacks.join(",")).split(",").filter(isStack)
  const samples: Array<Sample> = []
  console.log(
    `effect/rpc over sluice vs effect's socket protocol: ${rounds} round(s), ${warmup} s warm-up + ${seconds} s, ` +
      `taskset ${hasTaskset ? "on (server core 0, load core 1)" : "not available"}`
  )
  for (const runtime of runtimes) {
    for (const inFlight of inFlights) {
      for (let round = 0; round < rounds; round++) {
        for (const stack of chosen) {
          const sample = await measure(runtime, stack, inFlight, warmup, seconds)
          samples.push(sample)
          const cpu = perCall(sample)
          console.log(
            `  ${runtime} ${inFlight} in flight, round ${round + 1}: ${stack} ${
              format(sample.callsPerSecond)
            } calls/s, ` +
              `CPU per call ${micros(cpu.server)} µs server, ${micros(cpu.total)} µs in all` +
              (sample.wrong > 0 ? ` (${sample.wrong} WRONG answers)` : "")
          )
        }
      }
    }
  }
  // Medians of the rounds. Calls/s depends on what else the machine runs; CPU time per call much less so.
  const rows: Array<Record<string, unknown>> = []
  console.log()
  console.log(
    "| runtime | in flight | stack | calls/s | server CPU µs/call | total CPU µs/call | calls/s vs sluice | server CPU vs sluice |"
  )
  console.log("| --- | --- | --- | --- | --- | --- | --- | --- |")
  for (const runtime of runtimes) {
    for (const inFlight of inFlights) {
      const of = (stack: Stack) => {
        const picked = samples.filter((s) => s.runtime === runtime && s.inFlight === inFlight && s.stack === stack)
        return {
          callsPerSecond: median(picked.map((s) => s.callsPerSecond)),
          server: median(picked.map((s) => perCall(s).server)),
          total: median(picked.map((s) => perCall(s).total))
        }
      }
      const base = of("sluice")
      for (const stack of chosen) {
        const row = of(stack)
        rows.push({ runtime, inFlight, stack, ...row })
        console.log(
          `| ${runtime} | ${inFlight} | ${stack} | ${format(row.callsPerSecond)} | ${micros(row.server)} | ` +
            `${micros(row.total)} | ${ratio(row.callsPerSecond, base.callsPerSecond)} | ${
              ratio(row.server, base.server)
            } |`
        )
      }
    }
  }
  const json = option("--json")
  if (json !== undefined) fs.writeFileSync(json, JSON.stringify({ samples, medians: rows }, null, 2) + "\n")
  if (samples.some((s) => s.wrong > 0)) {
    console.error("some answers were wrong")
    process.exitCode = 1
  }
}

// --- entry ----------------------------------------------------------------------------------------

const serveStack = option("--serve")
const loadStack = option("--load")
const port = Number(option("--port") ?? 0)
if (serveStack !== undefined) {
  if (!isStack(serveStack)) throw new Error(`--serve takes one of ${stacks.join(", ")}`)
  serve(serveStack, port)
} else if (loadStack !== undefined) {
  if (!isStack(loadStack)) throw new Error(`--load takes one of ${stacks.join(", ")}`)
  const inFlight = Number(option("--in-flight") ?? 1)
  const warmup = Number(option("--warmup") ?? 1)
  const seconds = Number(option("--seconds") ?? 3)
  const serverPid = Number(option("--server-pid") ?? 0)
  const clk = Number(option("--clk-tck") ?? 100)
  Effect.runPromise(load(loadStack, port, inFlight, warmup, seconds, serverPid, clk)).then(
    (result) => {
      console.log(JSON.stringify(result))
      process.exit(0)
    },
    (error) => {
      console.error(error)
      process.exit(1)
    }
  )
} else {
  process.on("SIGINT", () => {
    killAll()
    process.exit(130)
  })
  process.on("exit", killAll)
  orchestrate().then(
    () => process.exit(process.exitCode ?? 0),
    (error) => {
      console.error(error)
      killAll()
      process.exit(1)
    }
  )
}
