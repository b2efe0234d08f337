/**
 * The framing check of the echo protocol (4-byte big-endian length + payload), and the first step
 * of the history every server goes through before the benchmark's headline scenarios: frames of
 * 0 B to 100 KB, sent whole and cut at awkward places (inside a header, one byte past it, a byte
 * short of a frame's end, in pieces larger than any buffer), each echo compared byte for byte.
 *
 * A server that keeps state between connections (buffers grown for a 100 KB frame, code that has
 * seen every frame shape) shows it in the scenarios that follow, as a server in production would.
 *
 * Usage: `bun bench/framing.ts --port 7000 [--host 127.0.0.1] [--json]`; runs on Node and Deno too
 * (node:net). Exits 0 when every echo matched, 2 when one differs or the server closes, 3 when an
 * echo does not come within 20 s.
 */
import { Buffer } from "node:buffer"
import * as net from "node:net"
import process from "node:process"
import { argv, option } from "./lib/args.ts"

const host = option("--host", "127.0.0.1")
const port = Number(option("--port", "7000"))
const json = argv.includes("--json")

/** Payload sizes: the edges of every power of two a buffer might be sized at, up to 100 KB. */
const SIZES = [
  0,
  1,
  3,
  4,
  5,
  63,
  64,
  65,
  255,
  256,
  257,
  1023,
  4095,
  4096,
  4097,
  16383,
  16384,
  16385,
  65531,
  65536,
  65537,
  100_000,
  0,
  7
]

/** The stream: every size in turn, each payload a pattern of its own. */
const stream = (() => {
  const frames = SIZES.map((size, k) => {
    const frame = Buffer.alloc(4 + size)
    frame.writeUInt32BE(size, 0)
    for (let i = 0; i < size; i++) frame[4 + i] = (i * 13 + k * 101 + (i >>> 8)) & 0xff
    return frame
  })
  return Buffer.concat(frames)
})()

/**
 * How each pass cuts the stream: piece sizes, in turn. Pieces under 8 bytes are sent on their own
 * (the next waits for a timer), so that the server reads a header in parts.
 */
const PASSES: Array<ReadonlyArray<number>> = [
  [stream.length],
  [1, 3, 4, 5, 4093, 64, 65537, 2],
  [7, 100_003, 1, 16385, 2, 6],
  [3, 1, 1021, 1, 1, 1, 131_072]
]

const fail = (code: number, message: string): never => {
  console.error(`framing: ${message}`)
  process.exit(code)
}

const connect = (): Promise<net.Socket> =>
  new Promise((resolve, reject) => {
    const socket = net.connect({ host, port }, () => resolve(socket))
    socket.setNoDelay(true)
    socket.once("error", reject)
  })

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Sends the stream cut by `cuts` and waits for its echo; a wrong byte fails at once. */
const pass = async (socket: net.Socket, cuts: ReadonlyArray<number>, label: string): Promise<void> => {
  let received = 0
  let done: (() => void) | undefined
  const onData = (chunk: Buffer) => {
    if (received + chunk.length > stream.length) {
      fail(2, `${label}: ${received + chunk.length} bytes echoed, sent ${stream.length}`)
    }
    if (!chunk.equals(stream.subarray(received, received + chunk.length))) {
      let at = 0
      while (chunk[at] === stream[received + at]) at++
      fail(2, `${label}: the echo differs at byte ${received + at} of the stream`)
    }
    received += chunk.length
    if (received === stream.length) done?.()
  }
  socket.on("data", onData)
  const echoed = new Promise<void>((resolve) => (done = resolve))
  let at = 0
  for (let k = 0; at < stream.length; k++) {
    const size = Math.min(cuts[k % cuts.length], stream.length - at)
    const piece = stream.subarray(at, at + size)
    at += size
    await new Promise<void>((resolve, reject) => socket.write(piece, (error) => (error ? reject(error) : resolve())))
    if (size < 8) await sleep(1)
  }
  const timer = setTimeout(() => fail(3, `${label}: ${received} of ${stream.length} bytes echoed after 20 s`), 20_000)
  await echoed
  clearTimeout(timer)
  socket.off("data", onData)
}

const main = async (): Promise<void> => {
  const started = performance.now()
  const closed = (socket: net.Socket) => socket.on("close", () => fail(2, "the server closed the connection"))
  // Every pass on one connection, then each again on a connection of its own.
  const shared = await connect().catch((error: Error) => fail(2, `connect to ${host}:${port}: ${error.message}`))
  closed(shared)
  for (const [k, cuts] of PASSES.entries()) await pass(shared, cuts, `pass ${k + 1}`)
  for (const [k, cuts] of PASSES.entries()) {
    const socket = await connect()
    closed(socket)
    await pass(socket, cuts, `pass ${k + 1} on a new connection`)
    socket.removeAllListeners("close")
    socket.destroy()
  }
  shared.removeAllListeners("close")
  shared.destroy()
  const result = {
    frames: SIZES.length * PASSES.length * 2,
    bytes: stream.length * PASSES.length * 2,
    ms: Math.round(performance.now() - started)
  }
  if (json) console.log(JSON.stringify(result))
  else console.log(`framing: ${result.frames} frames (${result.bytes} bytes) echoed intact in ${result.ms} ms`)
  process.exit(0)
}

void main()
