import * as Effect from "effect/Effect"
import * as childProcess from "node:child_process"
import * as os from "node:os"
import { runtime } from "./runtime.ts"

export const WORKER_ENV = "SLUICE_WORKER"

interface DenoGlobal {
  readonly execPath: () => string
  readonly mainModule: string
  readonly args: ReadonlyArray<string>
}

/** Which worker this process is (1-based), or 0 in the primary. */
export const workerId = (): number => Number(process.env[WORKER_ENV] ?? 0)

/** The command that starts this program again, as a worker. */
const workerCommand = (): [string, Array<string>] => {
  if (runtime === "deno") {
    const deno = (globalThis as unknown as { Deno: DenoGlobal }).Deno
    const main = deno.mainModule.startsWith("file://") ? new URL(deno.mainModule).pathname : deno.mainModule
    return [deno.execPath(), ["run", "-A", "--unstable-net", main, ...deno.args]]
  }
  // Node flags (`--import tsx`, say) come before the script.
  return [process.execPath, [...process.execArgv, ...process.argv.slice(1)]]
}

/**
 * Runs `count` copies of this program, each serving on the same port, which every process binds
 * with `reusePort` (SO_REUSEPORT: the kernel spreads connections; Deno needs `--unstable-net`,
 * passed to its workers). The primary waits for the workers and stops them when interrupted.
 */
export const primary = (count: number): Effect.Effect<void> =>
  Effect.callback<void>((resume) => {
    const stops: Array<() => void> = []
    let alive = count
    const exited = () => {
      if (--alive === 0) resume(Effect.void)
    }
    for (let i = 1; i <= count; i++) {
      const [command, args] = workerCommand()
      const child = childProcess.spawn(command, args, {
        env: { ...process.env, [WORKER_ENV]: String(i) },
        stdio: "inherit"
      })
      child.once("exit", exited)
      stops.push(() => child.kill("SIGTERM"))
    }
    return Effect.sync(() => {
      for (const stop of stops) stop()
    })
  })

export const defaultCount = (): number =>
  typeof os.availableParallelism === "function" ? os.availableParallelism() : os.cpus().length
