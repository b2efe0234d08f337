/**
 * Raw Bun baseline of the echo protocol (4-byte big-endian length + payload): `Bun.listen`, a
 * hand-written length-prefix parser and nothing else. Each read's complete frames are decoded one
 * by one and their replies encoded into one reused buffer, sent with one write; what the socket does
 * not take is buffered (without limit: this baseline has no backpressure) and flushed on `drain`.
 *
 * `PORT=7000 bun bench/servers/raw-bun.ts` (HOST default 127.0.0.1).
 */
import process from "node:process"

// The benchmark's reference run: Effect's modules loaded and unused, to tell their fixed cost from sluice's.
if (process.env.IMPORT_EFFECT === "1") await import("effect")

interface Socket {
  data: Conn
  write(data: Uint8Array, byteOffset?: number, byteLength?: number): number
  terminate(): void
  setNoDelay(noDelay?: boolean): boolean
}

interface BunApi {
  listen(options: {
    readonly hostname: string
    readonly port: number
    readonly socket: {
      readonly binaryType: "uint8array"
      readonly open: (socket: Socket) => void
      readonly data: (socket: Socket, chunk: Uint8Array) => void
      readonly drain: (socket: Socket) => void
      readonly close: (socket: Socket) => void
      readonly error: (socket: Socket, error: Error) => void
    }
  }): { readonly port: number }
}

const HEADER = 4
const MAX_FRAME = 16 * 1024 * 1024
const EMPTY = new Uint8Array(0)

class Conn {
  /** A partial frame carried over to the next read. */
  acc: Uint8Array = EMPTY
  accLength = 0
  /** Replies of one read, reused. */
  out = new Uint8Array(4096)
  /** Bytes the socket did not take: pending[head, tail). */
  pending: Uint8Array = EMPTY
  head = 0
  tail = 0

  constructor(readonly socket: Socket) {}

  onData(chunk: Uint8Array): void {
    let buf = chunk
    let end = chunk.length
    if (this.accLength > 0) {
      end = this.accLength + chunk.length
      if (end > this.acc.length) {
        const grown = new Uint8Array(Math.max(end, 2 * this.acc.length))
        grown.set(this.acc.subarray(0, this.accLength))
        this.acc = grown
      }
      this.acc.set(chunk, this.accLength)
      buf = this.acc
    }
    let out = this.out
    let pos = 0
    let o = 0
    while (end - pos >= HEADER) {
      const length = ((buf[pos] << 24) | (buf[pos + 1] << 16) | (buf[pos + 2] << 8) | buf[pos + 3]) >>> 0
      if (length > MAX_FRAME) {
        this.socket.terminate()
        return
      }
      const total = HEADER + length
      if (end - pos < total) break
      // The "handler": echo the payload. Encode the reply: header, then payload.
      if (o + total > out.length) {
        const grown = new Uint8Array(Math.max(2 * out.length, o + total))
        grown.set(out.subarray(0, o))
        out = this.out = grown
      }
      out[o] = length >>> 24
      out[o + 1] = length >>> 16
      out[o + 2] = length >>> 8
      out[o + 3] = length
      const from = pos + HEADER
      if (length <= 64) {
        for (let i = 0; i < length; i++) out[o + HEADER + i] = buf[from + i]
      } else {
        out.set(buf.subarray(from, from + length), o + HEADER)
      }
      o += total
      pos += total
    }
    if (pos < end) {
      const rest = end - pos
      if (buf === this.acc) this.acc.copyWithin(0, pos, end)
      else {
        if (rest > this.acc.length) this.acc = new Uint8Array(Math.max(rest, 4096))
        this.acc.set(chunk.subarray(pos, end))
      }
      this.accLength = rest
    } else {
      this.accLength = 0
    }
    if (o > 0) this.write(out, o)
  }

  write(bytes: Uint8Array, length: number): void {
    if (this.tail > this.head) {
      this.append(bytes, 0, length)
      return
    }
    const written = this.socket.write(bytes, 0, length)
    if (written >= 0 && written < length) this.append(bytes, written, length)
  }

  append(bytes: Uint8Array, from: number, to: number): void {
    const size = to - from
    const live = this.tail - this.head
    if (this.tail + size > this.pending.length) {
      if (live + size <= this.pending.length) this.pending.copyWithin(0, this.head, this.tail)
      else {
        const grown = new Uint8Array(Math.max(2 * this.pending.length, live + size, 64 * 1024))
        grown.set(this.pending.subarray(this.head, this.tail))
        this.pending = grown
      }
      this.head = 0
      this.tail = live
    }
    this.pending.set(bytes.subarray(from, to), this.tail)
    this.tail += size
  }

  onDrain(): void {
    const queued = this.tail - this.head
    if (queued === 0) return
    const written = this.socket.write(this.pending, this.head, queued)
    if (written < 0) return
    this.head += written
    if (this.head === this.tail) this.head = this.tail = 0
  }
}

const Bun = (globalThis as unknown as { Bun: BunApi }).Bun
const port = Number(process.env.PORT ?? 7000)
const hostname = process.env.HOST ?? "127.0.0.1"

const listener = Bun.listen({
  hostname,
  port,
  socket: {
    binaryType: "uint8array",
    open: (socket) => {
      socket.setNoDelay(true)
      socket.data = new Conn(socket)
    },
    data: (socket, chunk) => socket.data.onData(chunk),
    drain: (socket) => socket.data.onDrain(),
    close: () => {},
    error: (socket) => socket.terminate()
  }
})
console.log(`raw bun echo server listening on ${hostname}:${listener.port}`)
process.on("SIGTERM", () => process.exit(0))
process.on("SIGINT", () => process.exit(0))
