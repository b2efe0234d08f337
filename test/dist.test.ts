/**
 * The JavaScript build for Node users: compiles src/ into dist/ with `tsconfig.build.json` (once per
 * test run, in `beforeAll`), then runs plain Node (never Bun's or Deno's `node` shim) on a script that
 * imports the built package by its name, "sluice", through package.json's `exports`, and runs a small
 * pipeline in memory.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as childProcess from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const dist = path.join(root, "dist")
/** Incremental build state: kept outside dist/ so that it is never packed; removed by `npm run build`. */
const buildInfo = path.join(root, "node_modules", ".cache", "sluice", "tsconfig.build.tsbuildinfo")

const onNode = typeof (globalThis as { Bun?: unknown }).Bun === "undefined" &&
  typeof (globalThis as { Deno?: unknown }).Deno === "undefined"

/** Whether `bin` is Node itself: `bun --bun` puts a `node` that is Bun first on PATH. */
const isPlainNode = (bin: string): boolean => {
  const probe = childProcess.spawnSync(bin, ["-e", "process.stdout.write(typeof Bun + ' ' + typeof Deno)"], {
    encoding: "utf8",
    timeout: 10_000
  })
  return probe.status === 0 && probe.stdout === "undefined undefined"
}

/** Node's executable: this process on Node; otherwise the first plain `node` on PATH. */
const findNode = (): string | undefined => {
  if (onNode) return process.execPath
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    if (dir === "") continue
    const candidate = path.join(dir, process.platform === "win32" ? "node.exe" : "node")
    try {
      fs.accessSync(candidate, fs.constants.X_OK)
    } catch {
      continue
    }
    if (isPlainNode(candidate)) return candidate
  }
  return undefined
}

const node = findNode()
const skipReason = "no plain `node` binary on PATH to run the built package with (Bun's and Deno's shims do not count)"
if (node === undefined) console.warn(`test/dist.test.ts skipped: ${skipReason}`)

const run = (command: string, args: ReadonlyArray<string>, cwd: string) => {
  const result = childProcess.spawnSync(command, args, { cwd, encoding: "utf8", timeout: 120_000 })
  if (result.error !== undefined) throw result.error
  return result
}

/** The script Node runs: everything it imports comes from the built package, by name. */
const script = `
import { Bytes, Errors, Frame, Handler, Packet, Pipeline, Transport } from "sluice"
import * as bun from "sluice/bun"
import * as deno from "sluice/deno"
import * as nodeTransport from "sluice/node"
import { Chunk, Effect, Either, Stream } from "effect"

const pipeline = Pipeline.make({
  framer: Frame.lines({ maxLength: 16 }),
  codec: Packet.utf8,
  handler: Handler.sync((line) => line.toUpperCase())
})
const input = Bytes.fromString("hello\\nsluice on node\\n")
// Two reads that split a line: the second frame spans them.
const replies = await Effect.runPromise(
  Stream.runCollect(Stream.make(input.subarray(0, 9), input.subarray(9)).pipe(Pipeline.transform(pipeline)))
)
const tooLong = await Effect.runPromise(
  Effect.either(Stream.runCollect(Stream.make(Bytes.fromString("x".repeat(40) + "\\n")).pipe(Pipeline.transform(pipeline))))
)
const error = Either.isLeft(tooLong) ? tooLong.left : undefined
console.log(JSON.stringify({
  text: Bytes.toString(Bytes.concat(Chunk.toReadonlyArray(replies))),
  error: error?._tag,
  errorIsClass: error instanceof Errors.FrameTooLarge,
  runtime: Transport.runtime,
  transports: [bun.transport.name, deno.transport.name, nodeTransport.transport.name],
  resolved: new URL(import.meta.resolve("sluice")).pathname
}))
`

const filesUnder = (dir: string): Array<string> =>
  fs.readdirSync(dir, { recursive: true, encoding: "utf8" }).map((file) => file.split(path.sep).join("/"))

describe.skipIf(node === undefined)(
  node === undefined ? `dist (skipped: ${skipReason})` : "dist",
  () => {
    let tmp = ""

    beforeAll(() => {
      // Without dist/ the incremental state would claim its files are already written.
      if (!fs.existsSync(path.join(dist, "index.js"))) fs.rmSync(buildInfo, { force: true })
      const tsc = path.join(root, "node_modules", ".bin", "tsc")
      const built = run(node!, [
        tsc,
        "-p",
        "tsconfig.build.json",
        "--incremental",
        "--tsBuildInfoFile",
        buildInfo
      ], root)
      if (built.status !== 0) throw new Error(`tsc -p tsconfig.build.json failed:\n${built.stdout}${built.stderr}`)
      // tsc never deletes: drop what a module removed from src/ left behind.
      for (const file of filesUnder(dist)) {
        const source = file.replace(/(\.d)?\.(js|ts)(\.map)?$/, ".ts")
        if (source !== file && !fs.existsSync(path.join(root, "src", source))) fs.rmSync(path.join(dist, file))
      }

      // A project that depends on sluice: node_modules/sluice is the repo itself.
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sluice-dist-"))
      fs.mkdirSync(path.join(tmp, "node_modules"))
      fs.symlinkSync(root, path.join(tmp, "node_modules", "sluice"), "dir")
      fs.symlinkSync(path.join(root, "node_modules", "effect"), path.join(tmp, "node_modules", "effect"), "dir")
      fs.writeFileSync(path.join(tmp, "package.json"), JSON.stringify({ name: "uses-sluice", type: "module" }))
      fs.writeFileSync(path.join(tmp, "main.mjs"), script)
    }, 180_000)

    afterAll(() => {
      if (tmp !== "") fs.rmSync(tmp, { recursive: true, force: true })
    })

    it("plain node imports the built package by name and runs a pipeline", () => {
      const result = run(node!, ["main.mjs"], tmp)
      expect(result.stderr).toBe("")
      expect(result.status).toBe(0)
      const output = JSON.parse(result.stdout.trim())
      expect(output).toEqual({
        text: "HELLO\nSLUICE ON NODE\n",
        error: "FrameTooLarge",
        errorIsClass: true,
        runtime: "node",
        transports: ["bun", "deno", "node"],
        resolved: path.join(fs.realpathSync(root), "dist", "index.js").split(path.sep).join("/")
      })
    })

    it("every export of package.json points at built files, JavaScript and declarations", () => {
      const pkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8"))
      expect(Object.keys(pkg.exports)).toEqual([".", "./bun", "./deno", "./node"])
      const targets = [pkg.main, pkg.types]
      for (const entry of Object.values(pkg.exports) as Array<{ types: string; default: string }>) {
        expect(entry.types).toMatch(/^\.\/dist\/.*\.d\.ts$/)
        expect(entry.default).toMatch(/^\.\/dist\/.*\.js$/)
        targets.push(entry.types, entry.default)
      }
      for (const target of targets) expect(fs.existsSync(path.join(root, target)), target).toBe(true)
      // The JSR entry points name the same modules.
      const deno = JSON.parse(fs.readFileSync(path.join(root, "deno.json"), "utf8"))
      for (const [name, entry] of Object.entries(pkg.exports) as Array<[string, { default: string }]>) {
        expect(deno.exports[name]).toBe(entry.default.replace(/^\.\/dist\//, "./src/").replace(/\.js$/, ".ts"))
      }
    })

    it("builds src/ only: no tests, examples or benchmarks, and no .ts import left", () => {
      const sources = new Set(filesUnder(path.join(root, "src")).filter((file) => file.endsWith(".ts")))
      const modules = filesUnder(dist).filter((file) => file.endsWith(".js"))
      expect(modules).toContain("index.js")
      for (const file of modules) {
        expect(sources.has(file.replace(/\.js$/, ".ts")), `dist/${file} has no source in src/`).toBe(true)
        const code = fs.readFileSync(path.join(dist, file), "utf8")
        expect(code, `dist/${file} imports a .ts file`).not.toMatch(/(from|import)\s*\(?\s*"\.{1,2}\/[^"]*\.ts"/)
      }
      for (const dir of ["test", "examples", "bench", "scripts"]) {
        expect(fs.existsSync(path.join(dist, dir))).toBe(false)
      }
    })
  }
)
