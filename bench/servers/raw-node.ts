/**
 * Raw Node baseline of the echo protocol (4-byte big-endian length + payload): `node:net`, a
 * hand-written length-prefix parser and nothing else. Each read's complete frames are decoded one
 * by one and their replies encoded into one buffer, sent with one `socket.write`; node:net buffers
 * what the kernel does not take (without limit: this baseline has no backpressure) and flushes it
 * on its own. The reply buffer is reused while node:net hands every write to the kernel at once
 * (`writableLength` back to 0); when it keeps one, the next read gets a new buffer.
 *
 * `PORT=7000 node --import tsx bench/servers/raw-node.ts` (HOST default 127.0.0.1). Runs on Bun and
 * Deno too, through their node:net layers.
 */
import { Buffer } from "node:buffer"
import * as net from "node:net"
import process from "node:process"

// The benchmark's reference run: Effect's modules loaded and unused, to tell their fixed cost from sluice's.
if (process.env.IMPORT_EFFECT === "1") await import("effect")

const HEADER = 4
const MAX_FRAME = 16 * 1024 * 1024
const EMPTY = Buffer.alloc(0)

const serve = (socket: net.Socket): void => {
  socket.setNoDelay(true)
  /** A partial frame carried over to the next read. */
  let acc: Buffer = EMPTY
  let accLength = 0
  /** The reply buffer, reused while node:net keeps no reference to it. */
  let reply: Buffer = EMPTY
  socket.on("data", (chunk: Buffer) => {
    let buf = chunk
    let end = chunk.length
    if (accLength > 0) {
      end = accLength + chunk.length
      if (end > acc.length) {
        const grown = Buffer.allocUnsafe(Math.max(end, 2 * acc.length))
        acc.copy(grown, 0, 0, accLength)
        acc = grown
      }
      chunk.copy(acc, accLength)
      buf = acc
    }
    // Replies are never larger than the bytes read.
    let out: Buffer | undefined
    let pos = 0
    let o = 0
    while (end - pos >= HEADER) {
      const length = ((buf[pos] << 24) | (buf[pos + 1] << 16) | (buf[pos + 2] << 8) | buf[pos + 3]) >>> 0
      if (length > MAX_FRAME) {
        socket.destroy()
        return
      }
      const total = HEADER + length
      if (end - pos < total) break
      // The "handler": echo the payload. Encode the reply: header, then payload.
      if (out === undefined) {
        if (reply.length < end - pos) reply = Buffer.allocUnsafe(Math.max(end - pos, 16 * 1024))
        out = reply
      }
      out[o] = length >>> 24
      out[o + 1] = length >>> 16
      out[o + 2] = length >>> 8
      out[o + 3] = length
      const from = pos + HEADER
      if (length <= 64) {
        for (let i = 0; i < length; i++) out[o + HEADER + i] = buf[from + i]
      } else {
        buf.copy(out, o + HEADER, from, from + length)
      }
      o += total
      pos += total
    }
    if (pos < end) {
      const rest = end - pos
      if (buf === acc) acc.copyWithin(0, pos, end)
      else {
        if (rest > acc.length) acc = Buffer.allocUnsafe(Math.max(rest, 4096))
        chunk.copy(acc, 0, pos, end)
      }
      accLength = rest
    } else {
      accLength = 0
    }
    if (out !== undefined) {
      socket.write(out.subarray(0, o))
      // Not handed to the kernel at once: node:net keeps this buffer until it is flushed.
      if (socket.writableLength > 0) reply = EMPTY
    }
  })
  socket.on("error", () => socket.destroy())
}

const port = Number(process.env.PORT ?? 7000)
const host = process.env.HOST ?? "127.0.0.1"
const server = net.createServer({ noDelay: true }, serve)
server.listen({ host, port, backlog: 4096 }, () => {
  console.log(`raw node:net echo server listening on ${host}:${port}`)
})
process.on("SIGTERM", () => process.exit(0))
process.on("SIGINT", () => process.exit(0))
