/**
 * A client that never reads while it keeps sending: connects, stops reading at once (`pause`, so
 * the kernel's receive window fills and the server's replies back up), and writes echo requests as
 * fast as the socket takes them, for `--duration` seconds or until it gets SIGTERM (bench/run.ts
 * sends it when the server's RSS passes its limit).
 *
 * Usage: `bun bench/flood.ts --port 7000 [--host 127.0.0.1] [--connections 1] [--payload 65536]
 *   [--burst 16] [--duration 10] [--json]`
 *
 * Prints what it could send (bytes, and how the rate fell once the server pushed back) and whether
 * the server closed the connection, as one JSON line with `--json`.
 */
import process from "node:process"
import { argv, option } from "./lib/args.ts"

interface BunSocket {
  data: Flood
  write(data: Uint8Array, byteOffset?: number, byteLength?: number): number
  pause(): void
  terminate(): void
}

interface BunApi {
  connect(options: {
    readonly hostname: string
    readonly port: number
    readonly data: Flood
    readonly socket: {
      readonly binaryType: "uint8array"
      readonly data: (socket: BunSocket, data: Uint8Array) => void
      readonly drain: (socket: BunSocket) => void
      readonly close: (socket: BunSocket, error?: Error) => void
      readonly error: (socket: BunSocket, error: Error) => void
      readonly end: (socket: BunSocket) => void
    }
  }): Promise<BunSocket>
}

const host = option("--host", "127.0.0.1")
const port = Number(option("--port", "7000"))
const connections = Number(option("--connections", "1"))
const payload = Number(option("--payload", String(64 * 1024)))
const burst = Number(option("--burst", "16"))
const duration = Number(option("--duration", "10"))
const json = argv.includes("--json")

const HEADER = 4
const FRAME = HEADER + payload
/** One write: `burst` frames. */
const chunk = new Uint8Array(burst * FRAME)
for (let i = 0; i < burst; i++) {
  const at = i * FRAME
  chunk[at] = payload >>> 24
  chunk[at + 1] = payload >>> 16
  chunk[at + 2] = payload >>> 8
  chunk[at + 3] = payload
  for (let j = HEADER; j < FRAME; j++) chunk[at + j] = j & 0xff
}

const start = performance.now()
let stopped = false

class Flood {
  socket: BunSocket | undefined = undefined
  sent = 0
  /** Offset into `chunk` of a write the socket took only in part. */
  offset = 0
  sentAtOneSecond = -1
  closedAt: number | undefined = undefined
  closeReason = ""

  pump(): void {
    const socket = this.socket
    if (socket === undefined) return
    while (!stopped && this.closedAt === undefined) {
      const written = socket.write(chunk, this.offset, chunk.length - this.offset)
      if (written < 0) return
      this.sent += written
      this.offset = (this.offset + written) % chunk.length
      // Taken in part: wait for `drain`. Yield now and then so that timers run.
      if (written === 0 || this.offset !== 0) return
      if (performance.now() - start > 1000 * duration) return
      if ((this.sent & ((1 << 24) - 1)) < chunk.length) {
        setTimeout(() => this.pump(), 0)
        return
      }
    }
  }

  onClose(reason: string): void {
    if (this.closedAt !== undefined) return
    this.closedAt = performance.now() - start
    this.closeReason = reason
  }
}

const Bun = (globalThis as unknown as { Bun: BunApi }).Bun

const main = async (): Promise<void> => {
  const floods: Array<Flood> = []
  for (let i = 0; i < connections; i++) {
    const flood = new Flood()
    flood.socket = await Bun.connect({
      hostname: host,
      port,
      data: flood,
      socket: {
        binaryType: "uint8array",
        data: () => {},
        drain: (socket) => socket.data.pump(),
        close: (socket, error) => socket.data.onClose(error?.message ?? "closed"),
        error: (socket, error) => socket.data.onClose(error.message),
        end: (socket) => socket.data.onClose("end")
      }
    })
    // Never read again.
    flood.socket.pause()
    floods.push(flood)
  }
  const total = () => floods.reduce((sum, f) => sum + f.sent, 0)
  setTimeout(() => {
    for (const f of floods) f.sentAtOneSecond = f.sent
  }, 1000)
  for (const flood of floods) flood.pump()

  const finish = () => {
    if (stopped) return
    stopped = true
    const seconds = (performance.now() - start) / 1000
    const result = {
      connections,
      payload,
      seconds: Number(seconds.toFixed(2)),
      sentBytes: total(),
      sentMB: Number((total() / 1e6).toFixed(1)),
      sentInFirstSecondMB: Number((floods.reduce((s, f) => s + Math.max(f.sentAtOneSecond, 0), 0) / 1e6).toFixed(1)),
      closedByServer: floods.filter((f) => f.closedAt !== undefined).length,
      firstCloseAfterSeconds: floods.some((f) => f.closedAt !== undefined)
        ? Number((Math.min(...floods.map((f) => f.closedAt ?? Infinity)) / 1000).toFixed(2))
        : null,
      closeReason: floods.find((f) => f.closedAt !== undefined)?.closeReason ?? null
    }
    if (json) console.log(JSON.stringify(result))
    else console.log(result)
    for (const f of floods) f.socket?.terminate()
    setTimeout(() => process.exit(0), 20)
  }
  setTimeout(finish, duration * 1000)
  process.on("SIGTERM", finish)
  process.on("SIGINT", finish)
}

void main()
