import * as Effect from "effect/Effect"
import * as childProcess from "node:child_process"
import cluster from "node:cluster"
import * as os from "node:os"
import { runtime } from "../Transport.ts"

export const WORKER_ENV = "SLUICE_WORKER"

interface DenoGlobal {
  readonly execPath: () => string
  readonly mainModule: string
  readonly args: ReadonlyArray<string>
}

/** Which worker this process is (1-based), or 0 in the primary. */
export const workerId = (): number => {
  if (runtime === "node" && cluster.isWorker) return cluster.worker?.id ?? 1
  return Number(process.env[WORKER_ENV] ?? 0)
}

/** The command that starts this program again, as a worker. */
const workerCommand = (): [string, Array<string>] => {
  if (runtime === "deno") {
    const deno = (globalThis as unknown as { Deno: DenoGlobal }).Deno
    const main = deno.mainModule.startsWith("file://") ? new URL(deno.mainModule).pathname : deno.mainModule
    return [deno.execPath(), ["run", "-A", "--unstable-net", main, ...deno.args]]
  }
  return [process.execPath, process.argv.slice(1)]
}

/**
 * Runs `count` copies of this program, each serving on the same port: Bun and Deno processes bind
 * it with `reusePort` (the kernel spreads connections), Node workers share the primary's socket
 * through `node:cluster`. The primary waits for the workers and stops them when interrupted.
 */
export const primary = (count: number): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    const stops: Array<() => void> = []
    let alive = count
    const exited = () => {
      if (--alive === 0) resume(Effect.void)
    }
    for (let i = 1; i <= count; i++) {
      if (runtime === "node") {
        const worker = cluster.fork({ [WORKER_ENV]: String(i) })
        worker.once("exit", exited)
        stops.push(() => worker.process.kill("SIGTERM"))
      } else {
        const [command, args] = workerCommand()
        const child = childProcess.spawn(command, args, {
          env: { ...process.env, [WORKER_ENV]: String(i) },
          stdio: "inherit"
        })
        child.once("exit", exited)
        stops.push(() => child.kill("SIGTERM"))
      }
    }
    return Effect.sync(() => {
      for (const stop of stops) stop()
    })
  })

export const defaultCount = (): number =>
  typeof os.availableParallelism === "function" ? os.availableParallelism() : os.cpus().length
