/**
 * The main job (`npm start`): starts the echo server in a child process, drives it for a few
 * seconds with sluice clients (several connections, many requests in flight on each), shows a live
 * progress line (messages/s, p99 latency), prints a summary, stops everything and exits.
 *
 * Options (environment): SECONDS (default 4), CONNECTIONS (default 8), IN_FLIGHT per connection
 * (default 32), PAYLOAD bytes (default 64), PORT (default 7000; 0 picks a free one).
 */
import { Effect, Fiber, Schedule } from "effect"
import * as childProcess from "node:child_process"
import * as net from "node:net"
import { Client, Packet, Transport } from "../../src/index.ts"
import { framer } from "./protocol.ts"

const env = (name: string, fallback: number): number => Number(process.env[name] ?? fallback)
const seconds = env("SECONDS", 4)
const connections = env("CONNECTIONS", 8)
const inFlight = env("IN_FLIGHT", 32)
const payloadSize = env("PAYLOAD", 64)

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const probe = net.createServer()
    probe.once("error", reject)
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address() as net.AddressInfo
      probe.close(() => resolve(address.port))
    })
  })

const runtimeCommand = (): [string, Array<string>] => {
  switch (Transport.runtime) {
    case "bun":
      return [process.execPath, ["examples/echo/server.ts"]]
    case "deno":
      return [process.execPath, ["run", "-A", "examples/echo/server.ts"]]
    default:
      return [process.execPath, ["--import", "tsx", "examples/echo/server.ts"]]
  }
}

/** Starts the server and waits until it accepts connections. */
const startServer = (port: number) =>
  Effect.acquireRelease(
    Effect.gen(function* () {
      const [command, args] = runtimeCommand()
      const child = childProcess.spawn(command, args, {
        env: { ...process.env, PORT: String(port) },
        stdio: ["ignore", "inherit", "inherit"]
      })
      yield* Effect.tryPromise(() =>
        new Promise<void>((resolve, reject) => {
          const socket = net.connect({ host: "127.0.0.1", port })
          socket.once("connect", () => {
            socket.destroy()
            resolve()
          })
          socket.once("error", reject)
        })
      ).pipe(Effect.retry(Schedule.spaced("50 millis").pipe(Schedule.upTo({ duration: "10 seconds" }))))
      return child
    }),
    (child) =>
      Effect.callback<void>((resume) => {
        child.once("exit", () => resume(Effect.void))
        child.kill("SIGTERM")
        setTimeout(() => child.kill("SIGKILL"), 5000).unref()
      })
  )

const percentile = (sorted: Float64Array, p: number): number =>
  sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!

const main = Effect.gen(function* () {
  const port = env("PORT", 7000) || (yield* Effect.promise(freePort))
  yield* startServer(port)
  const client = yield* Client.pool({ size: connections, port, framer, codec: Packet.bytes })
  const payload = new Uint8Array(payloadSize).map((_, i) => i & 0xff)

  let done = 0
  let failed = 0
  let window: Array<number> = []
  const all: Array<number> = []
  const started = performance.now()
  const deadline = started + seconds * 1000

  const worker = Effect.gen(function* () {
    while (performance.now() < deadline) {
      const t0 = performance.now()
      const reply = yield* Effect.result(client.request(payload))
      const latency = performance.now() - t0
      if (reply._tag === "Success" && reply.success.length === payload.length) {
        done++
        window.push(latency)
      } else failed++
    }
  })

  const progress = Effect.gen(function* () {
    let last = done
    let lastAt = performance.now()
    while (true) {
      yield* Effect.sleep("500 millis")
      const now = performance.now()
      const rate = (done - last) / ((now - lastAt) / 1000)
      const sorted = Float64Array.from(window).sort()
      for (const v of window) all.push(v)
      window = []
      process.stdout.write(
        `\r  ${((now - started) / 1000).toFixed(1)}s  ${Math.round(rate).toLocaleString("en-US").padStart(9)} msg/s` +
          `  p99 ${percentile(sorted, 0.99).toFixed(2)} ms  total ${done.toLocaleString("en-US")}   `
      )
      last = done
      lastAt = now
    }
  })

  console.log(
    `sluice echo: ${Transport.runtime} server on 127.0.0.1:${port}, ${connections} connections x ${inFlight} in flight x ` +
      `${payloadSize} B, ${seconds} s`
  )
  const progressFiber = yield* Effect.forkChild(progress)
  yield* Effect.all(Array.from({ length: connections * inFlight }, () => worker), { concurrency: "unbounded" })
  yield* Fiber.interrupt(progressFiber)
  for (const v of window) all.push(v)
  const elapsed = (performance.now() - started) / 1000
  const sorted = Float64Array.from(all).sort()
  console.log(
    `\n\nsummary: ${done.toLocaleString("en-US")} echoes in ${elapsed.toFixed(2)} s = ` +
      `${Math.round(done / elapsed).toLocaleString("en-US")} msg/s; latency p50 ${
        percentile(sorted, 0.5).toFixed(2)
      } ms, ` +
      `p99 ${percentile(sorted, 0.99).toFixed(2)} ms, p99.9 ${
        percentile(sorted, 0.999).toFixed(2)
      } ms; ${failed} failed`
  )
  if (failed > 0 || done === 0) return yield* Effect.fail(new Error(`${failed} requests failed`))
})

Effect.runPromise(Effect.scoped(main)).then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
