import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"

describe("tooling", () => {
  it("runs plain tests", () => {
    expect(Effect.runSync(Effect.succeed(1 + 1))).toBe(2)
  })

  it.effect("runs Effect tests", () =>
    Effect.gen(function* () {
      const n = yield* Effect.succeed(1 + 1)
      expect(n).toBe(2)
    }))
})
