/**
 * The JavaScript build for Node users: compiles src/ into dist/ with `tsconfig.build.json` (once per
 * test run, in `beforeAll`), then runs plain Node on a script that imports the built package by its
 * name, "sluice", through package.json's `exports`, and runs a small pipeline in memory.
 *
 * Node is always the project's own Node 24, `node_modules/.bin/node`, found by its path from the repo
 * root: never a `node` on PATH, which may be an older Node, or Bun's or Deno's `node` shim (`bun --bun`
 * puts one first on PATH). The build and the script run the same on every runtime the suite runs on.
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
/** npm's cache for the packaging test, kept between runs (and outside what `npm run build` removes). */
const npmCache = path.join(root, "node_modules", ".cache", "sluice-npm")

/** The project's Node 24 (the `node` devDependency), by path: the real binary behind the `.bin` link. */
const node = fs.realpathSync(path.join(root, "node_modules", ".bin", "node"))

const onNode = typeof (globalThis as { Bun?: unknown }).Bun === "undefined" &&
  typeof (globalThis as { Deno?: unknown }).Deno === "undefined"

const run = (
  command: string,
  args: ReadonlyArray<string>,
  cwd: string,
  env: NodeJS.ProcessEnv = process.env,
  timeout = 120_000
) => {
  const result = childProcess.spawnSync(command, args, {
    cwd,
    env,
    encoding: "utf8",
    timeout,
    maxBuffer: 64 * 1024 * 1024
  })
  if (result.error !== undefined) throw result.error
  return result
}

/** The script Node runs: everything it imports comes from the built package, by name, and `effect`. */
const script = `
import { createRequire } from "node:module"
import { fileURLToPath } from "node:url"
import { Bytes, Errors, Frame, Handler, Packet, Pipeline, Session, Transport } from "sluice"
import * as bun from "sluice/bun"
import * as deno from "sluice/deno"
import * as nodeTransport from "sluice/node"
import { fromSocket } from "sluice/socket"
import { Effect, Fiber, Result, Stream } from "effect"
import * as Socket from "effect/socket/Socket"

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
  Effect.result(Stream.runCollect(Stream.make(Bytes.fromString("x".repeat(40) + "\\n")).pipe(Pipeline.transform(pipeline))))
)
const error = Result.isFailure(tooLong) ? tooLong.failure : undefined

// sluice/socket: a session over an in-memory effect/socket Socket.
const toServer = new TransformStream()
const toPeer = new TransformStream()
const overSocket = await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
  const socket = yield* Socket.fromTransformStream(
    Effect.succeed({ readable: toServer.readable, writable: toPeer.writable })
  )
  const connection = yield* fromSocket(socket)
  const fiber = yield* Effect.forkChild(Session.run(connection, {
    pipeline: Pipeline.make({
      framer: Frame.datagram(),
      codec: Packet.utf8,
      handler: Handler.sync((text) => text.toUpperCase())
    })
  }))
  const writer = toServer.writable.getWriter()
  const reader = toPeer.readable.getReader()
  yield* Effect.promise(() => writer.write(Bytes.fromString("over a socket")))
  const { value } = yield* Effect.promise(() => reader.read())
  yield* Effect.promise(() => writer.close())
  const reason = yield* Fiber.join(fiber)
  return { reply: Bytes.toString(value), reason: reason._tag }
})))

const sluiceMain = fileURLToPath(import.meta.resolve("sluice"))
console.log(JSON.stringify({
  text: Bytes.toString(Bytes.concat(replies)),
  error: error?._tag,
  errorIsClass: error instanceof Errors.FrameTooLarge,
  overSocket,
  runtime: Transport.runtime,
  transports: [bun.transport.name, deno.transport.name, nodeTransport.transport.name],
  resolved: sluiceMain,
  // The effect that sluice imports, and the one this program imports: the same file, one copy.
  effectOfSluice: createRequire(sluiceMain).resolve("effect"),
  effectOfApp: createRequire(import.meta.url).resolve("effect")
}))
`

const filesUnder = (dir: string): Array<string> =>
  fs.readdirSync(dir, { recursive: true, encoding: "utf8" }).map((file) => file.split(path.sep).join("/"))

/** Every installed package named `name` under `nodeModules`, nested ones included (directories, relative). */
const installedCopies = (nodeModules: string, name: string, base = nodeModules): Array<string> => {
  if (!fs.existsSync(nodeModules)) return []
  const found: Array<string> = []
  const visit = (dir: string): void => {
    const manifest = path.join(dir, "package.json")
    if (fs.existsSync(manifest) && JSON.parse(fs.readFileSync(manifest, "utf8")).name === name) {
      found.push(path.relative(base, dir).split(path.sep).join("/"))
    }
    found.push(...installedCopies(path.join(dir, "node_modules"), name, base))
  }
  for (const entry of fs.readdirSync(nodeModules, { withFileTypes: true })) {
    if (entry.name.startsWith(".") || !(entry.isDirectory() || entry.isSymbolicLink())) continue
    const dir = path.join(nodeModules, entry.name)
    if (entry.name.startsWith("@")) {
      for (const scoped of fs.readdirSync(dir)) visit(path.join(dir, scoped))
    } else visit(dir)
  }
  return found
}

describe("dist", () => {
  let tmp = ""

  beforeAll(() => {
    // Without dist/ the incremental state would claim its files are already written.
    if (!fs.existsSync(path.join(dist, "index.js"))) fs.rmSync(buildInfo, { force: true })
    const tsc = path.join(root, "node_modules", ".bin", "tsc")
    const built = run(node, [
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

  it("runs the project's own Node 24, never a node from PATH", () => {
    const probe = run(node, ["-p", "JSON.stringify([process.versions.node, typeof Bun, typeof Deno])"], root)
    expect(probe.status).toBe(0)
    const [version, bun, deno] = JSON.parse(probe.stdout)
    expect(Number(version.split(".")[0])).toBeGreaterThanOrEqual(24)
    expect([bun, deno]).toEqual(["undefined", "undefined"])
  })

  it("plain node imports the built package by name and runs a pipeline", () => {
    const result = run(node, ["main.mjs"], tmp)
    expect(result.stderr).toBe("")
    expect(result.status).toBe(0)
    const output = JSON.parse(result.stdout.trim())
    const realRoot = fs.realpathSync(root)
    const effect = path.join(realRoot, "node_modules", "effect", "dist", "index.js")
    expect(output).toEqual({
      text: "HELLO\nSLUICE ON NODE\n",
      error: "FrameTooLarge",
      errorIsClass: true,
      overSocket: { reply: "OVER A SOCKET", reason: "PeerClosed" },
      runtime: "node",
      transports: ["bun", "deno", "node"],
      resolved: path.join(realRoot, "dist", "index.js").split(path.sep).join("/"),
      effectOfSluice: effect,
      effectOfApp: effect
    })
  })

  it("every export of package.json points at built files, JavaScript and declarations", () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8"))
    expect(Object.keys(pkg.exports)).toEqual([".", "./bun", "./deno", "./node", "./socket", "./workers", "./rpc"])
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
    expect(Object.keys(deno.exports)).toEqual(Object.keys(pkg.exports))
  })

  it("builds src/ only: no tests, examples or benchmarks, and no .ts import left", () => {
    const sources = new Set(filesUnder(path.join(root, "src")).filter((file) => file.endsWith(".ts")))
    const modules = filesUnder(dist).filter((file) => file.endsWith(".js"))
    expect(modules).toContain("index.js")
    expect(modules).toContain("transport/socket.js")
    for (const file of modules) {
      expect(sources.has(file.replace(/\.js$/, ".ts")), `dist/${file} has no source in src/`).toBe(true)
      const code = fs.readFileSync(path.join(dist, file), "utf8")
      expect(code, `dist/${file} imports a .ts file`).not.toMatch(/(from|import)\s*\(?\s*"\.{1,2}\/[^"]*\.ts"/)
    }
    for (const dir of ["test", "examples", "bench", "scripts"]) {
      expect(fs.existsSync(path.join(dist, dir))).toBe(false)
    }
  })

  it('import "sluice" loads no process module: workers are their own entry point', () => {
    // Every module the main entry point reaches through static imports (dynamic ones, such as the
    // transport of the runtime, load only when used).
    const reached = new Set<string>()
    const specifiers = new Set<string>()
    const visit = (file: string): void => {
      if (reached.has(file)) return
      reached.add(file)
      const code = fs.readFileSync(file, "utf8")
      for (const match of code.matchAll(/^\s*(?:import|export)\s[^;]*?from\s*"([^"]+)"/gm)) {
        const specifier = match[1]!
        if (specifier.startsWith(".")) visit(path.resolve(path.dirname(file), specifier))
        else specifiers.add(specifier)
      }
    }
    visit(path.join(dist, "index.js"))
    expect(reached.size).toBeGreaterThan(10)
    expect([...specifiers].filter((s) => /child_process|cluster/.test(s))).toEqual([])
    // ... while the workers entry point does load them.
    const workers = fs.readFileSync(path.join(dist, "internal", "workers.js"), "utf8")
    expect(workers).toMatch(/node:child_process/)
  })

  // Node only: this checks npm packaging (the tarball, `effect` as a peer dependency, npm's install),
  // which is the same whatever runtime runs the suite; one npm install per suite run is enough.
  it.runIf(onNode)(
    "npm pack, installed by an app with its own effect: one copy of effect, and the app runs sluice",
    () => {
      const pkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8"))
      expect(pkg.dependencies?.effect).toBeUndefined()
      expect(pkg.peerDependencies.effect).toMatch(/^\^4\./)
      const work = fs.mkdtempSync(path.join(os.tmpdir(), "sluice-pack-"))
      try {
        // npm (from PATH: it is a package manager, not the runtime under test) runs on the project's
        // Node 24, first on PATH, as do the install scripts it starts.
        const env = {
          ...process.env,
          PATH: `${path.dirname(node)}${path.delimiter}${process.env.PATH ?? ""}`,
          npm_config_cache: npmCache,
          npm_config_update_notifier: "false"
        }
        const npm = (args: ReadonlyArray<string>, cwd: string) => {
          const result = run("npm", args, cwd, env, 170_000)
          if (result.status !== 0) throw new Error(`npm ${args.join(" ")} failed:\n${result.stdout}${result.stderr}`)
          return result
        }

        const packed = JSON.parse(npm(["pack", "--json", "--pack-destination", work], root).stdout)
        const tarball = path.join(work, packed[0].filename)
        const files = (packed[0].files as Array<{ path: string }>).map((file) => file.path)
        for (
          const file of ["package.json", "dist/index.js", "dist/transport/socket.js", "dist/transport/socket.d.ts"]
        ) {
          expect(files, file).toContain(file)
        }
        expect(files.filter((file) => /^(test|node_modules|bench|examples)\//.test(file))).toEqual([])

        const app = path.join(work, "app")
        fs.mkdirSync(app)
        fs.writeFileSync(
          path.join(app, "package.json"),
          JSON.stringify({
            name: "sluice-app",
            private: true,
            type: "module",
            dependencies: { effect: pkg.peerDependencies.effect, sluice: `file:${tarball}` }
          })
        )
        fs.writeFileSync(path.join(app, "main.mjs"), script)
        npm(["install", "--no-audit", "--no-fund", "--prefer-offline"], app)

        // Exactly one effect: the app's, which sluice (a real copy, not a link) shares.
        const nodeModules = path.join(app, "node_modules")
        expect(installedCopies(nodeModules, "effect")).toEqual(["effect"])
        expect(installedCopies(nodeModules, "sluice")).toEqual(["sluice"])
        expect(fs.lstatSync(path.join(nodeModules, "sluice")).isSymbolicLink()).toBe(false)

        const result = run(node, ["main.mjs"], app)
        expect(result.stderr).toBe("")
        expect(result.status).toBe(0)
        const output = JSON.parse(result.stdout.trim())
        const realApp = fs.realpathSync(app)
        const effect = path.join(realApp, "node_modules", "effect", "dist", "index.js")
        expect(output).toEqual({
          text: "HELLO\nSLUICE ON NODE\n",
          error: "FrameTooLarge",
          errorIsClass: true,
          overSocket: { reply: "OVER A SOCKET", reason: "PeerClosed" },
          runtime: "node",
          transports: ["bun", "deno", "node"],
          resolved: path.join(realApp, "node_modules", "sluice", "dist", "index.js").split(path.sep).join("/"),
          effectOfSluice: effect,
          effectOfApp: effect
        })
      } finally {
        fs.rmSync(work, { recursive: true, force: true })
      }
    },
    180_000
  )
})
