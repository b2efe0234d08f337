/**
 * The interop suite's ground: every system peer is installed and runs, and an example server started
 * on each runtime answers a real `nc` and stops with exit code 0 on SIGTERM.
 */
import { describe, expect, it } from "@effect/vitest"
import * as childProcess from "node:child_process"
import { runtimes, startExample } from "../util/example.ts"
import { packages, type Program, require } from "../util/peers.ts"

describe("system peers", () => {
  for (const program of Object.keys(packages) as Array<Program>) {
    it(`${program} is installed and runs`, () => {
      const path = require(program)
      // Every one of them prints a usage or version text; none of them may be missing or broken.
      const args = program === "nc" ? ["-h"] : program === "wrk" ? ["--version"] : ["--version"]
      const result = childProcess.spawnSync(path, args, { encoding: "utf8", timeout: 10_000 })
      expect(result.error).toBeUndefined()
      expect((result.stdout + result.stderr).length).toBeGreaterThan(0)
    })
  }
})

describe("the echo example under nc", () => {
  for (const runtime of runtimes) {
    it(`${runtime}: nc gets its frame back, and SIGTERM stops the server with exit code 0`, async () => {
      const server = await startExample(runtime, "examples/echo/server.ts")
      try {
        // A 4-byte big-endian length, then the payload: the echo protocol.
        const frame = Buffer.concat([Buffer.from([0, 0, 0, 5]), Buffer.from("hello")])
        const result = childProcess.spawnSync(require("nc"), ["-q", "1", "-w", "5", "127.0.0.1", String(server.port)], {
          input: frame,
          timeout: 15_000
        })
        expect(result.error).toBeUndefined()
        expect(Buffer.from(result.stdout).equals(frame)).toBe(true)
      } finally {
        expect(await server.stop()).toBe(0)
      }
    })
  }
})
