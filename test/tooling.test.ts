import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { Transport } from "../src/index.ts"

describe("tooling", () => {
  it("runs plain tests", () => {
    expect(Effect.runSync(Effect.succeed(1 + 1))).toBe(2)
  })

  it.effect("runs Effect tests", () =>
    Effect.gen(function* () {
      const n = yield* Effect.succeed(1 + 1)
      expect(n).toBe(2)
    }))

  it.runIf(Transport.runtime === "node")("runs the Node suite on Node 24 or later", () => {
    const major = Number(process.versions.node.split(".")[0])
    expect(major).toBeGreaterThanOrEqual(24)
  })
})
