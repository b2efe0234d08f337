/**
 * One process per core for a server: `workers(program)` runs the same program in `count` worker
 * processes that all listen on one port with `reusePort` (SO_REUSEPORT), and the kernel spreads the
 * connections over them. Its own entry point, `sluice/workers`, so that `import "sluice"` does not
 * load `node:child_process`.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as internal from "./internal/workers.ts"

/**
 * One worker per core. In the primary process, starts `count` workers (default: one per core)
 * running this same program, waits for them, and stops them when interrupted. In a worker, runs
 * `program`, which should `serve` with `reusePort: true`: every worker binds the same port
 * (`SO_REUSEPORT`, Node 24's `reusePort` on Node; Deno needs `--unstable-net`, which the primary
 * passes to its workers) and the kernel spreads the connections.
 *
 * @example
 * ```ts
 * import { Server } from "sluice"
 * import { workers } from "sluice/workers"
 * import { Effect } from "effect"
 * declare const pipeline: import("sluice").Pipeline.Pipeline<Uint8Array, Uint8Array>
 *
 * const serveOne = Effect.scoped(Effect.andThen(Server.serve({ pipeline, port: 7000, reusePort: true }), Effect.never))
 * Effect.runFork(workers(serveOne))
 * ```
 *
 * @since 0.1.0
 * @category multi-core
 */
export const workers = <E, R>(
  program: Effect.Effect<void, E, R>,
  options?: { readonly count?: number | undefined }
): Effect.Effect<void, E, R> =>
  Effect.suspend(() => internal.workerId() > 0 ? program : internal.primary(options?.count ?? internal.defaultCount()))

/**
 * This process's worker number (1-based) under `workers`, or 0 in the primary or without workers.
 *
 * @since 0.1.0
 * @category multi-core
 */
export const workerId = (): number => internal.workerId()
