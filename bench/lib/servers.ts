/**
 * The servers of the socket benchmark, by runtime: the raw baseline of each runtime, the raw
 * baseline with Effect's modules loaded, sluice with each handler style, Effect 4's own
 * `effect/socket` SocketServer, and Go's goroutine-per-connection echo as a reference row. Node
 * servers are compiled to JavaScript first, the Go server is built from source.
 */
import { mkdirSync } from "node:fs"
import * as path from "node:path"
import { build, BUN, CACHE, DENO, NODE, run, which } from "./machine.ts"

export type RuntimeName = "bun" | "deno" | "node" | "go"

/**
 * `raw`: the runtime's own socket API, hand-written framing (every ratio is to it);
 * `reference`: the raw server with Effect's modules loaded and unused, to tell their fixed cost from
 * sluice's; `platform`: Effect 4's `effect/socket` SocketServer; `go`: the Go echo, absolute figures.
 */
export type Kind = "raw" | "reference" | "sluice" | "platform" | "go"

export interface ServerSpec {
  readonly id: string
  readonly runtime: RuntimeName
  readonly kind: Kind
  readonly handler?: "sync" | "succeed" | "handler-gen" | "gen"
  readonly label: string
  readonly file: string
  readonly env?: Record<string, string>
  readonly flood: boolean
}

/**
 * Node runs each server as JavaScript, as it would be deployed: the TypeScript is compiled first
 * (`bun build --target=node`, dependencies left as imports from node_modules). Run through tsx
 * instead, every server would also carry tsx and its compiled sources: ~75 MB more idle RSS for
 * sluice, ~25 MB for raw.
 */
const nodeBuilds = new Map<string, string>()
const nodeEntry = (file: string): string => {
  const built = nodeBuilds.get(file)
  if (built !== undefined) return built
  const out = path.join(CACHE, path.basename(file).replace(/\.ts$/, ".mjs"))
  const failed = build([BUN, "build", file, "--target=node", "--packages=external", "--outfile", out])
  if (failed !== undefined) throw new Error(`bun build ${file} failed: ${failed}`)
  nodeBuilds.set(file, out)
  return out
}

/** The Go echo server, built once per bench run; `undefined` when `go` is missing or the build failed. */
let goBuild: { readonly binary?: string; readonly note?: string } | undefined
export const goServer = (): { readonly binary?: string; readonly note?: string } => {
  if (goBuild !== undefined) return goBuild
  const go = which("go")
  if (go === undefined) {
    goBuild = { note: "no `go` on PATH (Debian: golang-go): the Go reference row is left out" }
    return goBuild
  }
  const binary = path.join(CACHE, "go-echo")
  mkdirSync(CACHE, { recursive: true })
  const failed = build([go, "build", "-o", binary, "bench/servers/go-echo/main.go"], { CGO_ENABLED: "0" })
  goBuild = failed === undefined
    ? { binary }
    : { note: `\`go build\` of bench/servers/go-echo failed: ${failed}; the Go reference row is left out` }
  return goBuild
}

/** The Go toolchain's version ("1.19.8"), or "" without one. */
export const goVersion = (): string => {
  const go = which("go")
  return go === undefined ? "" : run([go, "version"]).replace(/^go version go/, "").split(" ")[0] ?? ""
}

export const command = (spec: ServerSpec): Array<string> => {
  switch (spec.runtime) {
    case "bun":
      return [BUN, spec.file]
    case "deno":
      return [DENO, "run", "-A", spec.file]
    case "node":
      return [NODE, nodeEntry(spec.file)]
    case "go":
      return [spec.file]
  }
}

/** The servers of one runtime; `only` (from `--servers`) keeps these and the raw baseline. */
export const serverSpecs = (
  runtime: RuntimeName,
  options: { readonly quick: boolean; readonly only: ReadonlyArray<string> | undefined }
): Array<ServerSpec> => {
  const { quick, only } = options
  if (runtime === "go") {
    const go = goServer()
    if (go.binary === undefined) return []
    return [{
      id: "go-bufio",
      runtime,
      kind: "go",
      label: "Go goroutine per connection, bufio",
      file: go.binary,
      flood: false
    }]
  }
  const specs: Array<ServerSpec> = [
    { id: `${runtime}-raw`, runtime, kind: "raw", label: "raw", file: `bench/servers/raw-${runtime}.ts`, flood: true }
  ]
  if (!quick) {
    specs.push({
      id: `${runtime}-raw-effect`,
      runtime,
      kind: "reference",
      label: "raw + effect loaded",
      file: `bench/servers/raw-${runtime}.ts`,
      env: { IMPORT_EFFECT: "1" },
      flood: false
    })
  }
  // On Bun, the four handler shapes, each under its own name; elsewhere the sync handler.
  const handlers = runtime === "bun" ? ["sync", "succeed", "handler-gen", "gen"] as const : ["sync"] as const
  for (const handler of handlers) {
    specs.push({
      id: `${runtime}-sluice-${handler}`,
      runtime,
      kind: "sluice",
      handler,
      label: `sluice (${handler})`,
      file: "bench/servers/sluice.ts",
      flood: handler === "sync"
    })
  }
  if (runtime === "node" && !quick) {
    // What the node transport did before it read into buffers of its own: the comparison for the
    // 50 x 4 x 4 KiB case (docs/transports.md).
    specs.push({
      id: "node-sluice-streamed",
      runtime,
      kind: "sluice",
      handler: "sync",
      label: "sluice (sync), node:net's own reads",
      file: "bench/servers/sluice.ts",
      env: { SLUICE_NODE_READS: "streamed" },
      flood: false
    })
  }
  specs.push({
    id: `${runtime}-platform`,
    runtime,
    kind: "platform",
    label: "effect/socket SocketServer",
    file: "bench/servers/effect-socket.ts",
    env: { PLATFORM_STYLE: "idiomatic" },
    flood: !quick
  })
  if (!quick) {
    specs.push({
      id: `${runtime}-platform-batched`,
      runtime,
      kind: "platform",
      label: "effect/socket SocketServer, batched",
      file: "bench/servers/effect-socket.ts",
      env: { PLATFORM_STYLE: "batched" },
      flood: false
    })
  }
  return only === undefined
    ? specs
    : specs.filter((spec) => spec.kind === "raw" || only.some((name) => spec.id === `${runtime}-${name}`))
}
