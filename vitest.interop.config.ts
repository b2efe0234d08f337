import { defineConfig } from "vitest/config"

// `npm run test:interop`: tests against system peers (redis-server, redis-cli, redis-benchmark, curl,
// wrk, nc, promtool) and example servers run as processes on Bun, Deno and Node. One file at a time:
// they start servers and load generators that would otherwise compete for the same cores.
export default defineConfig({
  test: {
    include: ["test/interop/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    teardownTimeout: 20_000,
    pool: "forks",
    fileParallelism: false
  }
})
