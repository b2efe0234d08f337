/**
 * Raw Deno baseline of the echo protocol (4-byte big-endian length + payload): `Deno.listen`, one
 * async read loop per connection, a hand-written length-prefix parser and nothing else. Each read's
 * complete frames are decoded one by one and their replies encoded into the pending output buffer;
 * one write loop per connection sends everything pending as one `conn.write` (looping on partial
 * writes), while replies of later reads gather in the other buffer (without limit: this baseline
 * has no backpressure).
 *
 * `PORT=7000 deno run -A bench/servers/raw-deno.ts` (HOST default 127.0.0.1).
 */

interface DenoConn {
  read(buffer: Uint8Array): Promise<number | null>
  write(bytes: Uint8Array): Promise<number>
  close(): void
  setNoDelay?: (noDelay?: boolean) => void
}

interface DenoApi {
  listen(options: { readonly hostname: string; readonly port: number }): { accept(): Promise<DenoConn> }
  readonly env: { get(name: string): string | undefined }
  addSignalListener(signal: "SIGTERM" | "SIGINT", handler: () => void): void
  exit(code: number): never
}

const HEADER = 4
const MAX_FRAME = 16 * 1024 * 1024
const READ_BUFFER = 64 * 1024
const EMPTY = new Uint8Array(0)

class Conn {
  /** A partial frame carried over to the next read. */
  acc: Uint8Array = EMPTY
  accLength = 0
  /** Replies waiting to be written: out[0, outLength); `spare` is the buffer being written. */
  out: Uint8Array = new Uint8Array(4096)
  outLength = 0
  spare: Uint8Array | undefined = undefined
  writing = false
  closed = false

  constructor(readonly conn: DenoConn) {}

  async readLoop(): Promise<void> {
    const buffer = new Uint8Array(READ_BUFFER)
    try {
      while (!this.closed) {
        const n = await this.conn.read(buffer)
        if (n === null) break
        if (!this.onData(buffer, n)) break
        if (this.outLength > 0 && !this.writing) void this.writeLoop()
      }
    } catch {
      // reset by the peer
    }
    this.close()
  }

  /** Decodes the read's complete frames and encodes their replies into `out`. */
  onData(chunk: Uint8Array, n: number): boolean {
    let buf = chunk
    let end = n
    if (this.accLength > 0) {
      end = this.accLength + n
      if (end > this.acc.length) {
        const grown = new Uint8Array(Math.max(end, 2 * this.acc.length))
        grown.set(this.acc.subarray(0, this.accLength))
        this.acc = grown
      }
      this.acc.set(chunk.subarray(0, n), this.accLength)
      buf = this.acc
    }
    let out = this.out
    let o = this.outLength
    let pos = 0
    while (end - pos >= HEADER) {
      const length = ((buf[pos] << 24) | (buf[pos + 1] << 16) | (buf[pos + 2] << 8) | buf[pos + 3]) >>> 0
      if (length > MAX_FRAME) return false
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
    this.outLength = o
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
    return true
  }

  async writeLoop(): Promise<void> {
    this.writing = true
    try {
      while (this.outLength > 0 && !this.closed) {
        // Swap: write everything pending while later replies gather in the other buffer.
        const buffer = this.out
        const length = this.outLength
        this.out = this.spare ?? new Uint8Array(buffer.length)
        this.spare = undefined
        this.outLength = 0
        let offset = 0
        while (offset < length) offset += await this.conn.write(buffer.subarray(offset, length))
        if (this.spare === undefined) this.spare = buffer
      }
    } catch {
      this.close()
    }
    this.writing = false
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    try {
      this.conn.close()
    } catch {
      // already closed
    }
  }
}

const Deno = (globalThis as unknown as { Deno: DenoApi }).Deno
// The benchmark's reference run: Effect's modules loaded and unused, to tell their fixed cost from sluice's.
if (Deno.env.get("IMPORT_EFFECT") === "1") await import("effect")

const port = Number(Deno.env.get("PORT") ?? 7000)
const hostname = Deno.env.get("HOST") ?? "127.0.0.1"
Deno.addSignalListener("SIGTERM", () => Deno.exit(0))
Deno.addSignalListener("SIGINT", () => Deno.exit(0))

const listener = Deno.listen({ hostname, port })
console.log(`raw deno echo server listening on ${hostname}:${port}`)
while (true) {
  let conn: DenoConn
  try {
    conn = await listener.accept()
  } catch {
    // A connection reset before it was accepted: keep serving.
    continue
  }
  try {
    conn.setNoDelay?.(true)
  } catch {
    // not TCP
  }
  void new Conn(conn).readLoop()
}
