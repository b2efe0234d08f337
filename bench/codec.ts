/**
 * Codec micro-benchmark (DESIGN §4, "keep a micro-benchmark in the repo that guards it").
 *
 * One process, one input: 64-byte payloads behind a 4-byte big-endian length header (68-byte
 * frames), cut into 64 KiB reads, so frames straddle reads at every possible offset. Every variant
 * decodes each frame, computes the same checksum over it and encodes it back (echo) into one output
 * buffer per read:
 *
 * 1. `plain loop`: hand-written decoder/encoder, the ceiling.
 * 2. `Frame.decoder`: `Frame.lengthField()` + `Frame.decoder` (feed/next) + `framer.begin/end`
 *    into a `Bytes.Writer`, `take()` per read.
 * 3. `Pipeline.engine` with `Packet.bytes` and three handler styles (`Handler.sync`,
 *    `Effect.succeed`, `Effect.gen`), driven as a transport would: `engine.push(read)` in a plain
 *    loop, running the returned Effect (if any) with one `Effect.runSync` per read.
 * 4. Starting a handler's Effect, the candidates for the engine's inline path: the engine's own
 *    (`runInline`, and `runGenerator`, which `Handler.gen` uses), `Effect.runSyncExit` (a fiber per
 *    message) and `Effect.fnUntracedEager`, for a new `Effect.gen` per message and for a generator
 *    function made once.
 * 5. No Effect at all: `Frame.decoder` with a generator per message stepped by hand, its generator
 *    function new per message or made once (information only: the JavaScript engine's own cost of a
 *    new generator function, which every per-message `Effect.gen` pays).
 * 6. `Pipeline.transform` over a `Stream` with one element per read (information only).
 *
 * Every run checks its frame count, its order-sensitive checksum and its output size; before timing,
 * each variant's whole output is compared byte for byte with the input (an echo reproduces it).
 *
 * Usage: `bun bench/codec.ts` | `deno run -A bench/codec.ts` | `npx tsx bench/codec.ts`
 *   --json <file>   also write the results as JSON
 *   --runs <n>      timed runs per variant (default 5; the best is reported, the median shown)
 *   --seconds <s>   target duration of one run (default 0.6)
 *   --enforce       exit with code 2 when a target is missed (scripts/bench-codec.sh sets it on Bun)
 *   --only <a,b>    run only these variants (by name, e.g. `plain,engine-gen`), e.g. to profile them
 *   --verbose       print every timed run
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { writeFileSync } from "node:fs"
import process from "node:process"
import { Bytes, Frame, Handler, Packet, Pipeline } from "../src/index.ts"
import { runGenerator, runInline } from "../src/internal/inline.ts"
import { argv, option } from "./lib/args.ts"

// --- options -------------------------------------------------------------------------------------

const jsonPath = option("--json")
const runs = Number(option("--runs") ?? 5)
const seconds = Number(option("--seconds") ?? 0.6)
const enforce = argv.includes("--enforce")
const only = option("--only")?.split(",")
const verbose = argv.includes("--verbose")
if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a positive integer`)
if (!(seconds > 0)) throw new Error(`--seconds must be positive`)

const runtime: { readonly name: string; readonly version: string } = typeof Bun !== "undefined"
  ? { name: "bun", version: Bun.version }
  : typeof Deno !== "undefined"
  ? { name: "deno", version: Deno.version.deno }
  : { name: "node", version: process.version }

// --- input ---------------------------------------------------------------------------------------

const HEADER = 4
const PAYLOAD = 64
const FRAME = HEADER + PAYLOAD
const READ = 64 * 1024
/** 17 reads of 64 KiB hold exactly 16384 frames (lcm(68, 65536)); 16 such groups make one pass. */
const READS = 17 * 16
const PASS_BYTES = READS * READ
const FRAMES = PASS_BYTES / FRAME

/** One pass of input as one array (for the byte-for-byte output check) and as 64 KiB reads. */
const stream = new Uint8Array(PASS_BYTES)
/** The checksum term of each frame, computed from the generator, not by any decoder. */
const frameSums = new Int32Array(FRAMES)
{
  let seed = 0x9e3779b9
  for (let i = 0; i < FRAMES; i++) {
    const at = i * FRAME
    stream[at + 3] = PAYLOAD
    let sum = 0
    for (let j = 0; j < PAYLOAD; j++) {
      seed ^= seed << 13
      seed ^= seed >>> 17
      seed ^= seed << 5
      const byte = seed & 0xff
      stream[at + HEADER + j] = byte
      sum += byte
    }
    frameSums[i] = sum + (PAYLOAD << 16)
  }
}
// Separate arrays, as a socket hands them out.
const reads: ReadonlyArray<Uint8Array> = Array.from({ length: READS }, (_, i) => stream.slice(i * READ, (i + 1) * READ))

// --- the work every variant does per frame ---------------------------------------------------------

let acc = 0
let count = 0

/** The per-frame work: an order-sensitive checksum over the payload's bytes and its length. */
const check = (frame: Uint8Array): void => {
  let sum = 0
  for (let i = 0; i < frame.length; i++) sum += frame[i]
  acc = (Math.imul(acc, 31) + sum + (frame.length << 16)) | 0
  count++
}

/** The handler's function: checksum, then echo. */
const f = (frame: Uint8Array): Uint8Array => {
  check(frame)
  return frame
}

const expectedAcc = new Map<number, number>()
const expected = (passes: number): number => {
  let value = expectedAcc.get(passes)
  if (value === undefined) {
    value = 0
    for (let p = 0; p < passes; p++) {
      for (let i = 0; i < FRAMES; i++) value = (Math.imul(value, 31) + frameSums[i]) | 0
    }
    expectedAcc.set(passes, value)
  }
  return value
}

/** Where each variant hands its output, once per read: the "write". */
type Write = (bytes: Uint8Array) => void

// --- 1. plain loop -------------------------------------------------------------------------------

const plain = (passes: number, write: Write): void => {
  // A frame that straddles reads is assembled here, as a real decoder would.
  const partial = new Uint8Array(64 * 1024)
  let held = 0
  let out = new Uint8Array(2 * READ)
  for (let p = 0; p < passes; p++) {
    for (let r = 0; r < READS; r++) {
      const read = reads[r]
      const end = read.length
      let pos = 0
      let o = 0
      if (held > 0) {
        while (held < HEADER && pos < end) partial[held++] = read[pos++]
        if (held >= HEADER) {
          const total = HEADER + ((partial[0] << 24) >>> 0) + ((partial[1] << 16) | (partial[2] << 8) | partial[3])
          if (total > partial.length) throw new Error(`plain: frame of ${total} bytes`)
          const take = Math.min(total - held, end - pos)
          partial.set(read.subarray(pos, pos + take), held)
          held += take
          pos += take
          if (held === total) {
            const frame = partial.subarray(HEADER, total)
            check(frame)
            out.set(partial.subarray(0, HEADER), o)
            out.set(frame, o + HEADER)
            o += total
            held = 0
          }
        }
      }
      if (held === 0) {
        while (end - pos >= HEADER) {
          const length = ((read[pos] << 24) >>> 0) + ((read[pos + 1] << 16) | (read[pos + 2] << 8) | read[pos + 3])
          const total = HEADER + length
          if (total > partial.length) throw new Error(`plain: frame of ${total} bytes`)
          if (end - pos < total) break
          const frame = read.subarray(pos + HEADER, pos + total)
          check(frame)
          if (o + total > out.length) {
            const grown = new Uint8Array(out.length * 2)
            grown.set(out.subarray(0, o))
            out = grown
          }
          out[o] = length >>> 24
          out[o + 1] = length >>> 16
          out[o + 2] = length >>> 8
          out[o + 3] = length
          out.set(frame, o + HEADER)
          o += total
          pos += total
        }
        if (pos < end) {
          partial.set(read.subarray(pos, end), 0)
          held = end - pos
        }
      }
      write(out.subarray(0, o))
    }
  }
  if (held > 0) throw new Error(`plain: ${held} bytes left over`)
}

// --- 2. Frame.decoder + Bytes.Writer -------------------------------------------------------------

const framer = Frame.lengthField()

const frameDecoder = (passes: number, write: Write): void => {
  const decoder = Frame.decoder(framer)
  const writer = new Bytes.Writer()
  for (let p = 0; p < passes; p++) {
    for (let r = 0; r < READS; r++) {
      decoder.feed(reads[r])
      for (let frame = decoder.next(); frame !== undefined; frame = decoder.next()) {
        check(frame)
        const mark = framer.begin(writer)
        writer.write(frame)
        framer.end(writer, mark)
      }
      if (decoder.error !== undefined) throw decoder.error
      write(writer.take())
    }
  }
  const error = decoder.end()
  if (error !== undefined) throw error
}

// --- 3. Pipeline.engine --------------------------------------------------------------------------

const syncPipeline = Pipeline.make({ framer, codec: Packet.bytes, handler: Handler.sync(f) })
const succeedPipeline = Pipeline.make({
  framer,
  codec: Packet.bytes,
  handler: Handler.effect((b: Uint8Array) => Effect.succeed(f(b)))
})
const genPipeline = Pipeline.make({
  framer,
  codec: Packet.bytes,
  handler: Handler.effect((b: Uint8Array) =>
    // The style under test: a generator handler, even when it has nothing to yield.
    // deno-lint-ignore require-yield
    Effect.gen(function* () {
      return f(b)
    })
  )
})
const handlerGenPipeline = Pipeline.make({
  framer,
  codec: Packet.bytes,
  // deno-lint-ignore require-yield
  handler: Handler.gen(function* (b: Uint8Array) {
    return f(b)
  })
})

/** Drives an engine as a callback transport does: push each read, run a pending step, write. */
const driveEngine =
  (pipeline: Pipeline.Pipeline<Uint8Array, Uint8Array, unknown>) => (passes: number, write: Write) => {
    const scope = Effect.runSync(Scope.make())
    try {
      const engine = Effect.runSync(Scope.provide(Pipeline.engine(pipeline), scope))
      const runSync = Effect.runSync
      for (let p = 0; p < passes; p++) {
        for (let r = 0; r < READS; r++) {
          const step = engine.push(reads[r])
          write(step instanceof Uint8Array ? step : runSync(step))
          if (engine.error !== undefined) throw engine.error
        }
      }
      const last = engine.end()
      const bytes = last instanceof Uint8Array ? last : runSync(last)
      if (bytes.length > 0) write(bytes)
      if (engine.error !== undefined) throw engine.error
    } finally {
      Effect.runSync(Scope.close(scope, Exit.void))
    }
  }

// --- 3b. starting a handler's Effect: the candidates for the engine's inline path -----------------
//
// Each frame is decoded as in 2, its handler's Effect is made and started by one of the candidates,
// and the reply encoded. The difference to `Frame.decoder + Writer` is the cost of starting the
// handler. Two handler shapes: a new `Effect.gen` per message (what most Effect users write), and a
// generator function made once (`Handler.gen`).

// deno-lint-ignore require-yield
const genBody = function* (b: Uint8Array) {
  return f(b)
}
const perMessageGen = (b: Uint8Array) =>
  // deno-lint-ignore require-yield
  Effect.gen(function* () {
    return f(b)
  })
const madeOnce = Effect.fnUntraced(genBody)
const madeOnceEager = Effect.fnUntracedEager(genBody)

type Start = (effect: Effect.Effect<Uint8Array>) => Uint8Array

/** Decodes each frame as in 2, answers it with `reply`, and encodes the answer. */
const driveFrames = (reply: (frame: Uint8Array) => Uint8Array) => (passes: number, write: Write): void => {
  const decoder = Frame.decoder(framer)
  const writer = new Bytes.Writer()
  for (let p = 0; p < passes; p++) {
    for (let r = 0; r < READS; r++) {
      decoder.feed(reads[r])
      for (let frame = decoder.next(); frame !== undefined; frame = decoder.next()) {
        const bytes = reply(frame)
        const mark = framer.begin(writer)
        writer.write(bytes)
        framer.end(writer, mark)
      }
      if (decoder.error !== undefined) throw decoder.error
      write(writer.take())
    }
  }
}

/**
 * The same loop without Effect or sluice's engine: a generator stepped to its end by hand, made by a
 * generator function that is new per message (what `Effect.gen(function* () { ... })` in a handler
 * does) or made once. The difference between the two is what the JavaScript engine itself charges
 * for calling a generator function for the first time (its prototype, and the shape of generator
 * objects made from it): the floor of any per-message `Effect.gen`, whoever runs it. Both call the
 * built-in `next`, as the engine's inline path does, so that no read of `next` on a generator of a
 * shape of its own is counted here.
 */
const generatorNext = Object.getPrototypeOf(function* () {}).prototype.next as Generator["next"]
const freshGenerator = (b: Uint8Array): Generator<never, Uint8Array> =>
  // deno-lint-ignore require-yield
  (function* () {
    return f(b)
  })()
const driveGenerator = (fresh: boolean): Variant["run"] =>
  driveFrames((b) => generatorNext.call(fresh ? freshGenerator(b) : genBody(b)).value as Uint8Array)

/** The engine's own: steps the Effect's primitives in place (src/internal/inline.ts). */
const startInline: Start = (effect) => {
  const exit = runInline(effect)
  if (Exit.isExit(exit) && Exit.isSuccess(exit)) return exit.value
  throw new Error("the handler did not complete in place")
}
/** A fiber per message, run synchronously. */
const startRunSyncExit: Start = (effect) => {
  const exit = Effect.runSyncExit(effect)
  if (Exit.isSuccess(exit)) return exit.value
  throw new Error("the handler failed")
}
/** `Effect.fnUntracedEager` (or `runGenerator`) already ran the generator: its result is an Exit. */
const startEager: Start = (effect) => {
  const exit = effect as Exit.Exit<Uint8Array>
  if (Exit.isExit(exit) && Exit.isSuccess(exit)) return exit.value
  throw new Error("the eager handler did not complete in place")
}

const driveStart = (make: (b: Uint8Array) => Effect.Effect<Uint8Array>, start: Start): Variant["run"] =>
  driveFrames((b) => start(make(b)))

// --- 4. Pipeline.transform -----------------------------------------------------------------------

const transform = (passes: number, write: Write): Promise<void> => {
  const input: Array<Uint8Array> = []
  for (let p = 0; p < passes; p++) for (const read of reads) input.push(read)
  return Effect.runPromise(
    Stream.fromIterable(input).pipe(
      Pipeline.transform(syncPipeline),
      Stream.runForEach((bytes) => Effect.sync(() => write(bytes)))
    )
  )
}

// --- measuring -----------------------------------------------------------------------------------

interface Variant {
  readonly name: string
  readonly label: string
  readonly run: (passes: number, write: Write) => void | Promise<void>
  /** The target on Bun, as a check of this variant's result and the plain loop's. */
  readonly target?: { readonly text: string; readonly met: (fps: number, plainFps: number) => boolean }
  /** Timed after all the others. */
  readonly last?: boolean
}

const allVariants: ReadonlyArray<Variant> = [
  { name: "plain", label: "plain loop", run: plain },
  {
    name: "frame",
    label: "Frame.decoder + Writer",
    run: frameDecoder,
    target: { text: ">= 0.5 x plain", met: (fps, plainFps) => fps >= 0.5 * plainFps }
  },
  { name: "engine-sync", label: "engine, Handler.sync", run: driveEngine(syncPipeline) },
  {
    name: "engine-succeed",
    label: "engine, Effect.succeed",
    run: driveEngine(succeedPipeline),
    // A ratio, not an absolute rate: the plain loop itself runs 8-10 M/s on the 2-core test machine.
    target: { text: ">= 0.7 x plain", met: (fps, plainFps) => fps >= 0.7 * plainFps }
  },
  { name: "engine-gen", label: "engine, Effect.gen", run: driveEngine(genPipeline) },
  { name: "engine-handler-gen", label: "engine, Handler.gen", run: driveEngine(handlerGenPipeline) },
  { name: "start-gen-inline", label: "start Effect.gen: inline", run: driveStart(perMessageGen, startInline) },
  {
    name: "start-gen-runsync",
    label: "start Effect.gen: runSyncExit",
    run: driveStart(perMessageGen, startRunSyncExit)
  },
  { name: "start-fn-inline", label: "start fnUntraced: inline", run: driveStart(madeOnce, startInline) },
  { name: "start-fn-eager", label: "start fnUntracedEager", run: driveStart(madeOnceEager, startEager) },
  {
    name: "start-fn-generator",
    label: "start generator: runGenerator",
    run: driveStart((b) => runGenerator(genBody(b)), startEager)
  },
  { name: "start-fn-runsync", label: "start fnUntraced: runSyncExit", run: driveStart(madeOnce, startRunSyncExit) },
  { name: "generator-fresh", label: "no Effect: new generator function", run: driveGenerator(true) },
  { name: "generator-once", label: "no Effect: generator function once", run: driveGenerator(false) },
  { name: "transform-sync", label: "Pipeline.transform (Stream), sync", run: transform, last: true }
]

// The plain loop always runs: it is what the others are compared with.
const variants = allVariants.filter((v) => v.name === "plain" || only === undefined || only.includes(v.name))
if (only !== undefined) {
  const unknown = only.filter((name) => !allVariants.some((v) => v.name === name))
  if (unknown.length > 0) throw new Error(`--only: unknown variants ${unknown.join(", ")}`)
}

/** Runs a variant over `passes` passes; checks frame count, checksum and output size; returns ms. */
const measure = async (variant: Variant, passes: number): Promise<number> => {
  acc = 0
  count = 0
  let outBytes = 0
  const write: Write = (bytes) => {
    outBytes += bytes.length
  }
  const start = performance.now()
  await variant.run(passes, write)
  const ms = performance.now() - start
  const want = { frames: passes * FRAMES, checksum: expected(passes), bytes: passes * PASS_BYTES }
  const got = { frames: count, checksum: acc, bytes: outBytes }
  if (got.frames !== want.frames || got.checksum !== want.checksum || got.bytes !== want.bytes) {
    throw new Error(`${variant.label}: computed ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`)
  }
  return ms
}

/** Warms a variant up; returns the number of passes that takes about `seconds`. */
const calibrate = async (variant: Variant): Promise<number> => {
  let n = 1
  let perPass = Infinity
  for (let spent = 0; spent < 500;) {
    const ms = await measure(variant, n)
    spent += ms
    perPass = Math.min(perPass, ms / n)
    if (ms < 100) n *= 2
  }
  return Math.max(1, Math.round((seconds * 1000) / perPass))
}

/** A full collection between runs where the runtime offers one (Bun; V8 with `--expose-gc`). */
const gc: (() => void) | undefined = typeof Bun !== "undefined"
  ? () => Bun.gc(true)
  : (globalThis as { gc?: () => void }).gc

/** Runs a variant over two passes and compares its whole output with the input, byte for byte. */
const verify = async (variant: Variant): Promise<void> => {
  acc = 0
  count = 0
  const out = new Uint8Array(2 * PASS_BYTES)
  let at = 0
  await variant.run(2, (bytes) => {
    if (at + bytes.length > out.length) throw new Error(`${variant.label}: more output than input`)
    out.set(bytes, at)
    at += bytes.length
  })
  if (count !== 2 * FRAMES || acc !== expected(2)) {
    throw new Error(`${variant.label}: ${count} frames, checksum ${acc}; expected ${2 * FRAMES}, ${expected(2)}`)
  }
  if (at !== out.length) throw new Error(`${variant.label}: ${at} output bytes, expected ${out.length}`)
  for (let i = 0; i < out.length; i++) {
    if (out[i] !== stream[i % PASS_BYTES]) throw new Error(`${variant.label}: output differs at byte ${i}`)
  }
}

const main = async (): Promise<void> => {
  console.log(
    `sluice codec bench on ${runtime.name} ${runtime.version}: ${PAYLOAD} B payloads + ${HEADER} B header, ` +
      `64 KiB reads, ${FRAMES} frames (${(PASS_BYTES / 2 ** 20).toFixed(1)} MiB) per pass`
  )
  for (const variant of variants) await verify(variant)

  // Warm up and size each variant's runs to about `seconds`; then time them round robin, so that
  // drift on a shared machine hits every variant alike. The Stream transform runs last, on its own:
  // its producer can run a whole input ahead of its consumer, and the heap that leaves behind slows
  // whatever runs next.
  const passes = new Map<Variant, number>()
  const rates = new Map<Variant, Array<number>>(variants.map((v) => [v, []]))
  const groups = [variants.filter((v) => !v.last), variants.filter((v) => v.last)]
  for (const group of groups) {
    for (const variant of group) passes.set(variant, await calibrate(variant))
    for (let i = 0; i < runs; i++) {
      for (const variant of group) {
        const n = passes.get(variant)!
        gc?.()
        const ms = await measure(variant, n)
        rates.get(variant)!.push((n * FRAMES) / (ms / 1000))
        if (verbose) {
          const rss = (process.memoryUsage().rss / 2 ** 20).toFixed(0)
          console.log(`  ${variant.name}: ${n} passes in ${ms.toFixed(0)} ms, rss ${rss} MiB`)
        }
      }
    }
  }

  const best = (v: Variant) => Math.max(...rates.get(v)!)
  const median = (v: Variant) => {
    const sorted = [...rates.get(v)!].sort((a, b) => a - b)
    return sorted[Math.floor(sorted.length / 2)]
  }
  const plainFps = best(variants[0])
  const rows = variants.map((v) => {
    const fps = best(v)
    const met = v.target === undefined ? undefined : v.target.met(fps, plainFps)
    return {
      runtime: runtime.name,
      version: runtime.version,
      variant: v.name,
      label: v.label,
      framesPerSec: Math.round(fps),
      medianFramesPerSec: Math.round(median(v)),
      ratioToPlain: Number((fps / plainFps).toFixed(4)),
      target: v.target?.text,
      targetMet: met,
      runs,
      framesPerRun: passes.get(v)! * FRAMES
    }
  })

  const pad = (s: string, n: number) => s.padEnd(n)
  const num = (x: number, n: number, digits = 1) => x.toFixed(digits).padStart(n)
  console.log(
    `${pad("variant", 36)}${"M fr/s".padStart(9)}${"median".padStart(9)}${"x plain".padStart(9)}` +
      `${"slowdown".padStart(10)}   target (best of ${runs})`
  )
  for (const row of rows) {
    const target = row.target === undefined ? "" : `${row.target}: ${row.targetMet ? "met" : "MISSED"}`
    console.log(
      `${pad(row.label, 36)}${num(row.framesPerSec / 1e6, 9)}${num(row.medianFramesPerSec / 1e6, 9)}` +
        `${num(row.ratioToPlain, 9, 2)}${num(1 / row.ratioToPlain, 10, 2)}   ${target}`
    )
  }

  if (jsonPath !== undefined) {
    const report = {
      bench: "codec",
      runtime: runtime.name,
      version: runtime.version,
      date: new Date().toISOString(),
      input: { payloadBytes: PAYLOAD, headerBytes: HEADER, readBytes: READ, framesPerPass: FRAMES },
      note: "framesPerSec: best of runs; ratioToPlain: framesPerSec / plain loop framesPerSec",
      results: rows
    }
    writeFileSync(jsonPath, JSON.stringify(report, null, 2) + "\n")
    console.log(`results written to ${jsonPath}`)
  }

  const missed = rows.filter((row) => row.targetMet === false)
  if (missed.length > 0) {
    console.log(`targets missed: ${missed.map((row) => row.label).join(", ")}${enforce ? "" : " (not enforced)"}`)
    if (enforce) process.exitCode = 2
  }
}

main().catch((error) => {
  console.error("codec bench FAILED:", error)
  process.exit(1)
})
