/**
 * Pipelined load generator for the echo protocol (4-byte big-endian length + payload), on Bun's
 * native sockets (`Bun.connect`).
 *
 * Each connection keeps `--inflight` requests outstanding: every read's complete replies are
 * verified and answered with as many new requests, in one write. Request `s` carries `s` (u32 BE)
 * in its first 4 payload bytes and a pattern after it; the replies of a read are compared byte for
 * byte with the requests in flight, so a reply that is lost, reordered, cut or corrupted is caught. Latency is the time from the write of
 * a request to the read of its reply (one timestamp per read and one per write burst), kept in a
 * log-linear histogram (1/64 relative precision, 0.1 us units).
 *
 * Usage: `bun bench/loadgen.ts --port 7000 [--host 127.0.0.1] [--connections 50] [--inflight 16]
 *   [--payload 64] [--duration 5] [--warmup 1] [--json]`
 *
 * With `--json` it prints one JSON object as its last line, and `#window-start` / `#window-end`
 * lines when the measured window opens and closes (bench/run.ts samples the server's CPU there).
 * Its own CPU use over the window is reported as a percentage of one core. Exits non-zero when a
 * reply is wrong or a connection drops during the run.
 */
import { Buffer } from "node:buffer"
import process from "node:process"
import { argv, option } from "./lib/args.ts"

// --- the slice of Bun's socket API used here ----------------------------------------------------

interface BunSocket<D> {
  data: D
  write(data: Uint8Array, byteOffset?: number, byteLength?: number): number
  end(): void
  terminate(): void
  setNoDelay(noDelay?: boolean): boolean
}

interface BunSocketHandler<D> {
  readonly binaryType: "buffer"
  readonly data: (socket: BunSocket<D>, data: Buffer) => void
  readonly drain: (socket: BunSocket<D>) => void
  readonly close: (socket: BunSocket<D>, error?: Error) => void
  readonly error: (socket: BunSocket<D>, error: Error) => void
  readonly end?: (socket: BunSocket<D>) => void
  readonly connectError?: (socket: BunSocket<D>, error: Error) => void
}

interface BunApi {
  connect<D>(options: {
    readonly hostname: string
    readonly port: number
    readonly data: D
    readonly socket: BunSocketHandler<D>
  }): Promise<BunSocket<D>>
}

const Bun = (globalThis as unknown as { Bun?: BunApi }).Bun

// --- options --------------------------------------------------------------------------------------

const host = option("--host", "127.0.0.1")
const port = Number(option("--port", "7000"))
const connections = Number(option("--connections", "50"))
const inflight = Number(option("--inflight", "16"))
const payload = Number(option("--payload", "64"))
const duration = Number(option("--duration", "5"))
const warmup = Number(option("--warmup", "1"))
const json = argv.includes("--json")

const usage = (message: string): never => {
  console.error(`loadgen: ${message}`)
  process.exit(64)
}
if (Bun === undefined) usage("needs Bun (Bun.connect)")
if (!Number.isInteger(port) || port <= 0) usage("--port must be a port number")
if (!Number.isInteger(connections) || connections < 1) usage("--connections must be >= 1")
if (!Number.isInteger(inflight) || inflight < 1) usage("--inflight must be >= 1")
if (!Number.isInteger(payload) || payload < 8 || payload > 1 << 24) usage("--payload must be 8 .. 16 MiB")
if (!(duration > 0) || !(warmup >= 0)) usage("--duration must be > 0, --warmup >= 0")

// --- requests -------------------------------------------------------------------------------------

const HEADER = 4
const FRAME = HEADER + payload
/**
 * Each connection keeps the requests it has in flight in a ring of `inflight` slots, in the order it
 * sent them: the replies must be exactly these bytes, in this order, so one comparison per read
 * verifies every reply in it (length, sequence number and content). Slot `k` holds the length
 * header, the request's sequence number (patched in when it is sent) and pattern `k`.
 */
const slotTemplate = (k: number): Buffer => {
  const frame = Buffer.alloc(FRAME)
  frame.writeUInt32BE(payload, 0)
  for (let j = 8; j < FRAME; j++) frame[j] = (k * 31 + j * 7) & 0xff
  return frame
}

// --- latency histogram ----------------------------------------------------------------------------

/** Log-linear buckets of 0.1 us: exact below 128, then 64 sub-buckets per power of two. */
const SUB = 64
const histogram = new Float64Array(128 + 26 * SUB)
const bucketOf = (units: number): number => {
  if (units < 128) return units
  const e = 31 - Math.clz32(units)
  const shift = e - 6
  return 128 + (e - 7) * SUB + ((units >>> shift) - SUB)
}
const valueOf = (bucket: number): number => {
  if (bucket < 128) return bucket
  const e = Math.floor((bucket - 128) / SUB) + 7
  const shift = e - 6
  const mantissa = ((bucket - 128) % SUB) + SUB
  // The middle of the bucket.
  return mantissa * 2 ** shift + 2 ** (shift - 1)
}
const UNIT_MS = 1e-4
let latencySum = 0
let latencyMax = 0
const record = (ms: number): void => {
  let units = Math.round(ms / UNIT_MS)
  if (units < 0) units = 0
  if (units > 0x7fffffff) units = 0x7fffffff
  histogram[bucketOf(units)]++
  latencySum += ms
  if (ms > latencyMax) latencyMax = ms
}
const percentile = (total: number, p: number): number => {
  const want = Math.ceil(total * p)
  let seen = 0
  for (let b = 0; b < histogram.length; b++) {
    seen += histogram[b]
    if (seen >= want && histogram[b] > 0) return valueOf(b) * UNIT_MS
  }
  return latencyMax
}

// --- connections ----------------------------------------------------------------------------------

const WARMUP = 0
const MEASURE = 1
const DONE = 2
let phase = WARMUP
let received = 0
let failures = 0

const fail = (message: string): never => {
  console.error(`loadgen: ${message}`)
  process.exit(2)
}

class Conn {
  socket: BunSocket<Conn> | undefined = undefined
  /** Next sequence number to send, and the next one expected back. */
  sendSeq = 0
  recvSeq = 0
  readonly sentAt = new Float64Array(inflight)
  /** The requests in flight, slot `seq % inflight` (see `slotTemplate`). */
  readonly ring: Buffer = Buffer.concat(Array.from({ length: inflight }, (_, k) => slotTemplate(k)))
  /** A burst that wraps around the end of the ring is copied here, to go out in one write. */
  readonly out: Buffer = Buffer.alloc(inflight * FRAME)
  /** Bytes the socket did not take: pending[head, tail). */
  pending: Buffer = Buffer.alloc(0)
  head = 0
  tail = 0
  /** A partial reply carried over to the next read. */
  acc: Buffer = Buffer.alloc(Math.max(2 * FRAME, 4096))
  accLength = 0
  closed = false
  reads = 0

  /** Sends `n` requests in one write; `now` is their send time. */
  send(n: number, now: number): void {
    const ring = this.ring
    const first = this.sendSeq % inflight
    for (let i = 0; i < n; i++) {
      const seq = this.sendSeq + i
      const slot = seq % inflight
      ring.writeUInt32BE(seq >>> 0, slot * FRAME + HEADER)
      this.sentAt[slot] = now
    }
    this.sendSeq += n
    if (first + n <= inflight) {
      this.write(ring, first * FRAME, n * FRAME)
    } else {
      const head = (inflight - first) * FRAME
      ring.copy(this.out, 0, first * FRAME)
      ring.copy(this.out, head, 0, n * FRAME - head)
      this.write(this.out, 0, n * FRAME)
    }
  }

  write(bytes: Buffer, from: number, length: number): void {
    if (this.tail > this.head) {
      this.append(bytes, from, from + length)
      return
    }
    const written = this.socket!.write(bytes, from, length)
    if (written < 0) return
    if (written < length) this.append(bytes, from + written, from + length)
  }

  append(bytes: Buffer, from: number, to: number): void {
    const size = to - from
    const live = this.tail - this.head
    if (this.tail + size > this.pending.length) {
      const grown = Buffer.alloc(Math.max(2 * this.pending.length, live + size, 4096))
      this.pending.copy(grown, 0, this.head, this.tail)
      this.pending = grown
      this.head = 0
      this.tail = live
    }
    bytes.copy(this.pending, this.tail, from, to)
    this.tail += size
  }

  onDrain(): void {
    const queued = this.tail - this.head
    if (queued === 0) return
    const written = this.socket!.write(this.pending, this.head, queued)
    if (written < 0) return
    this.head += written
    if (this.head === this.tail) this.head = this.tail = 0
  }

  onData(chunk: Buffer): void {
    const now = performance.now()
    this.reads++
    let buf = chunk
    let end = chunk.length
    if (this.accLength > 0) {
      const need = this.accLength + chunk.length
      if (need > this.acc.length) {
        const grown = Buffer.alloc(Math.max(need, 2 * this.acc.length))
        this.acc.copy(grown, 0, 0, this.accLength)
        this.acc = grown
      }
      chunk.copy(this.acc, this.accLength)
      buf = this.acc
      end = need
    }
    const n = Math.floor(end / FRAME)
    if (n > this.sendSeq - this.recvSeq) fail(`${n} replies in one read, but ${this.sendSeq - this.recvSeq} in flight`)
    if (n > 0) {
      // The replies are the requests in flight, in order: compare them with the ring in one or two
      // pieces.
      const first = this.recvSeq % inflight
      const inRing = Math.min(n, inflight - first)
      let differs = buf.compare(this.ring, first * FRAME, (first + inRing) * FRAME, 0, inRing * FRAME) !== 0
      if (!differs && inRing < n) {
        differs = buf.compare(this.ring, 0, (n - inRing) * FRAME, inRing * FRAME, n * FRAME) !== 0
      }
      if (differs) this.explain(buf, n)
      if (phase === MEASURE) {
        const sentAt = this.sentAt
        for (let i = 0; i < n; i++) record(now - sentAt[(first + i) % inflight])
        received += n
      }
      this.recvSeq += n
    }
    const pos = n * FRAME
    if (pos < end) {
      if (buf === this.acc) this.acc.copyWithin(0, pos, end)
      else {
        if (end - pos > this.acc.length) this.acc = Buffer.alloc(2 * (end - pos))
        chunk.copy(this.acc, 0, pos, end)
      }
      this.accLength = end - pos
    } else {
      this.accLength = 0
    }
    if (n > 0 && phase !== DONE) this.send(n, now)
  }

  /** Says what is wrong with the first wrong reply among `n`, and stops. */
  explain(buf: Buffer, n: number): never {
    for (let i = 0; i < n; i++) {
      const at = i * FRAME
      const seq = this.recvSeq + i
      const slot = seq % inflight
      const length = buf.readUInt32BE(at)
      if (length !== payload) fail(`reply ${seq}: length ${length}, expected ${payload}`)
      const got = buf.readUInt32BE(at + HEADER)
      if (got !== seq >>> 0) fail(`reply ${seq}: carries sequence number ${got} (lost or reordered reply)`)
      if (buf.compare(this.ring, slot * FRAME, (slot + 1) * FRAME, at, at + FRAME) !== 0) {
        fail(`reply ${seq}: payload differs from the request`)
      }
    }
    return fail("replies differ from the requests")
  }

  onClose(error?: Error): void {
    if (this.closed) return
    this.closed = true
    if (phase !== DONE) {
      failures++
      fail(`connection closed by the server during the run${error !== undefined ? `: ${error.message}` : ""}`)
    }
  }
}

const handler: BunSocketHandler<Conn> = {
  binaryType: "buffer",
  data: (socket, chunk) => socket.data.onData(chunk),
  drain: (socket) => socket.data.onDrain(),
  close: (socket, error) => socket.data.onClose(error),
  error: (socket, error) => socket.data.onClose(error),
  end: (socket) => socket.data.onClose()
}

const connectAll = async (): Promise<Array<Conn>> => {
  const conns: Array<Conn> = []
  const BATCH = 100
  for (let i = 0; i < connections; i += BATCH) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(BATCH, connections - i) }, async () => {
        const conn = new Conn()
        conn.socket = await Bun!.connect<Conn>({ hostname: host, port, data: conn, socket: handler })
        conn.socket.setNoDelay(true)
        return conn
      })
    )
    conns.push(...batch)
  }
  return conns
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

const main = async (): Promise<void> => {
  const connectStart = performance.now()
  const conns = await connectAll().catch((error: Error) => fail(`connect to ${host}:${port}: ${error.message}`))
  const connectMs = performance.now() - connectStart
  for (const conn of conns) conn.send(inflight, performance.now())
  await sleep(warmup * 1000)

  phase = MEASURE
  histogram.fill(0)
  latencySum = 0
  latencyMax = 0
  received = 0
  const readsBefore = conns.reduce((sum, c) => sum + c.reads, 0)
  if (json) console.log("#window-start")
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  await sleep(duration * 1000)
  const seconds = (performance.now() - t0) / 1000
  const cpu = process.cpuUsage(cpu0)
  phase = DONE
  const reads = conns.reduce((sum, c) => sum + c.reads, 0) - readsBefore
  if (json) console.log("#window-end")

  for (const conn of conns) {
    conn.closed = true
    conn.socket!.terminate()
  }

  const result = {
    host,
    port,
    connections,
    inflight,
    payload,
    duration: Number(seconds.toFixed(3)),
    warmup,
    connectMs: Math.round(connectMs),
    messages: received,
    messagesPerSec: Math.round(received / seconds),
    mbPerSec: Number(((received * FRAME) / seconds / 1e6).toFixed(1)),
    latencyMs: {
      mean: Number((received > 0 ? latencySum / received : 0).toFixed(4)),
      p50: Number(percentile(received, 0.5).toFixed(4)),
      p99: Number(percentile(received, 0.99).toFixed(4)),
      p999: Number(percentile(received, 0.999).toFixed(4)),
      max: Number(latencyMax.toFixed(4))
    },
    loadgenCpuPercent: Number((((cpu.user + cpu.system) / 1e6 / seconds) * 100).toFixed(1)),
    repliesPerRead: Number((received / Math.max(1, reads)).toFixed(2)),
    failures
  }
  if (json) {
    console.log(JSON.stringify(result))
  } else {
    const l = result.latencyMs
    console.log(
      `${connections} conn x ${inflight} in flight x ${payload} B to ${host}:${port}, ${seconds.toFixed(1)} s: ` +
        `${(result.messagesPerSec / 1e6).toFixed(3)} M msg/s, ${result.mbPerSec} MB/s, ` +
        `latency p50 ${l.p50.toFixed(3)} ms p99 ${l.p99.toFixed(3)} ms p99.9 ${l.p999.toFixed(3)} ms ` +
        `max ${l.max.toFixed(3)} ms, loadgen CPU ${result.loadgenCpuPercent}% of one core`
    )
  }
  // Let the resets go out before exiting.
  await sleep(20)
  process.exit(0)
}

void main()
