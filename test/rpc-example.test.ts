/**
 * The RPC example as its users run it: `examples/rpc/server.ts` as a child process on Bun, on Deno and
 * on Node (test/util/example.ts), called by the example's client, both in this process (its calls,
 * typed) and as a child process of the same runtime (`examples/rpc/client.ts`, its printed answers and
 * exit code); then the server is stopped with SIGTERM and must exit 0.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as childProcess from "node:child_process"
import * as path from "node:path"
import { Transport } from "../src/index.ts"
import { layerProtocolClient } from "../src/rpc.ts"
import { calls } from "../examples/rpc/calls.ts"
import { command, type Runtime, runtimes, startExample } from "./util/example.ts"

const root = path.resolve(import.meta.dirname ?? new URL(".", import.meta.url).pathname, "..")

const expected = {
  greeting: "hello, sluice",
  user: "Ada",
  missing: "no user 404",
  counted: [1, 2, 3, 4, 5],
  slow: "timed out",
  many: 100
}

/** Runs `examples/rpc/client.ts` on `runtime` against `port`: its exit code and output (at most 60 s). */
const runClient = (runtime: Runtime, port: number) =>
  Effect.promise(() =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const [cmd, args] = command(runtime, path.join(root, "examples/rpc/client.ts"))
      const child = childProcess.spawn(cmd, args, {
        cwd: root,
        env: { ...process.env, DENO_NO_UPDATE_CHECK: "1", HOST: "127.0.0.1", PORT: String(port) },
        stdio: ["ignore", "pipe", "pipe"]
      })
      let stdout = ""
      let stderr = ""
      child.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString()))
      child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()))
      const killer = setTimeout(() => child.kill("SIGKILL"), 60_000)
      child.once("exit", (code) => {
        clearTimeout(killer)
        resolve({ code, stdout, stderr })
      })
    })
  )

describe("the RPC example, as processes", () => {
  for (const runtime of runtimes) {
    it.live(
      `examples/rpc/server.ts on ${runtime}: the example client's calls, in-process and as a process`,
      () =>
        Effect.gen(function* () {
          const server = yield* Effect.acquireRelease(
            Effect.promise(() => startExample(runtime, "examples/rpc/server.ts")),
            (proc) => Effect.promise(() => proc.stop())
          )
          // In this process: every method, typed, over sluice's client protocol.
          const answers = yield* calls.pipe(Effect.scoped, Effect.provide(layerProtocolClient({ port: server.port })))
          expect(answers).toEqual(expected)
          // As a process of the same runtime: it prints the same answers and exits 0.
          const client = yield* runClient(runtime, server.port)
          expect(client.stderr).toBe("")
          expect(client.code).toBe(0)
          expect(JSON.parse(client.stdout.trim())).toEqual(expected)
          // A graceful stop on SIGTERM: the server closes its scope, says so, and exits 0. (Deno's
          // node:child_process reports a child that exits after a SIGTERM as killed by it, code null,
          // whatever the child's own exit code: there, the line it printed on its way out tells.)
          const code = yield* Effect.promise(() => server.stop())
          expect(code).toBe(Transport.runtime === "deno" ? null : 0)
          expect(server.output()).toMatch(
            new RegExp(`rpc server \\(${runtime}\\) listening on 127\\.0\\.0\\.1:${server.port}`)
          )
          expect(server.output()).toMatch(/rpc server stopped\n$/)
        }),
      120_000
    )
  }
})
