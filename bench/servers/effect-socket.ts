/**
 * The echo protocol the way an Effect user writes it with Effect 4's own sockets: `effect/socket`'s
 * `SocketServer` (`NodeSocketServer` from `@effect/platform-node`, which also runs on Bun), with
 * hand-written length-prefix framing. Each connection is a loop that pulls the socket's reader (a
 * batch of reads at a time, with backpressure) and writes with its writer.
 *
 * `PLATFORM_STYLE` picks the shape of the connection handler:
 * - `message` (default): the idiomatic shape. The handler Effect runs per message, and each reply is
 *   written with the writer's `write` as it comes.
 * - `batched`: the most favourable shape. Every frame of a pulled batch is answered into one buffer,
 *   written with one `write` per batch.
 *
 * `PORT=7000 node --import tsx bench/servers/effect-socket.ts` or `bun bench/servers/effect-socket.ts`.
 */
import { NodeSocketServer } from "@effect/platform-node"
import { Effect } from "effect"
import * as Socket from "effect/socket/Socket"
import { Buffer } from "node:buffer"
import process from "node:process"

const HEADER = 4
const MAX_FRAME = 16 * 1024 * 1024

const port = Number(process.env.PORT ?? 7000)
const host = process.env.HOST ?? "127.0.0.1"
const style = process.env.PLATFORM_STYLE ?? "message"
if (style !== "message" && style !== "batched") throw new Error(`PLATFORM_STYLE must be message or batched`)

/** Hand-written length-prefix framing: feeds reads, hands out whole frames (header included). */
const makeDecoder = () => {
  let acc = Buffer.alloc(0)
  let accLength = 0
  return (data: Uint8Array, onFrame: (buf: Buffer, start: number, end: number) => void): void => {
    const chunk = Buffer.from(data.buffer, data.byteOffset, data.byteLength)
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
    let pos = 0
    while (end - pos >= HEADER) {
      const length = buf.readUInt32BE(pos)
      if (length > MAX_FRAME) throw new Error(`frame of ${length} bytes`)
      const total = HEADER + length
      if (end - pos < total) break
      onFrame(buf, pos, pos + total)
      pos += total
    }
    if (pos < end) {
      if (buf === acc) acc.copyWithin(0, pos, end)
      else {
        if (end - pos > acc.length) acc = Buffer.allocUnsafe(Math.max(end - pos, 4096))
        chunk.copy(acc, 0, pos, end)
      }
      accLength = end - pos
    } else {
      accLength = 0
    }
  }
}

/** The application's handler: echo. */
const handler = (payload: Uint8Array): Effect.Effect<Uint8Array> => Effect.succeed(payload)

const encode = (payload: Uint8Array): Uint8Array => {
  const frame = Buffer.allocUnsafe(HEADER + payload.length)
  frame.writeUInt32BE(payload.length, 0)
  frame.set(payload, HEADER)
  return frame
}

const perMessage = (socket: Socket.Socket) =>
  Effect.gen(function* () {
    const { write } = yield* socket.writer
    const pull = yield* Socket.readerBytes(socket)
    const decode = makeDecoder()
    const payloads: Array<Uint8Array> = []
    while (true) {
      for (const data of yield* pull) {
        // Frames outlive the read buffer: copy them.
        decode(data, (buf, start, end) => payloads.push(Uint8Array.prototype.slice.call(buf, start + HEADER, end)))
      }
      for (const payload of payloads.splice(0)) {
        const reply = yield* handler(payload)
        yield* write(encode(reply))
      }
    }
  }).pipe(Effect.scoped, Effect.ignore)

const batched = (socket: Socket.Socket) =>
  Effect.gen(function* () {
    const { write } = yield* socket.writer
    const pull = yield* Socket.readerBytes(socket)
    const decode = makeDecoder()
    while (true) {
      let out: Buffer | undefined
      let o = 0
      for (const data of yield* pull) {
        decode(data, (buf, start, end) => {
          out ??= Buffer.allocUnsafe(data.byteLength + HEADER + (end - start))
          if (o + end - start > out.length) {
            const grown = Buffer.allocUnsafe(2 * (o + end - start))
            out.copy(grown, 0, 0, o)
            out = grown
          }
          buf.copy(out, o, start, end)
          o += end - start
        })
      }
      if (out !== undefined) yield* write(out.subarray(0, o))
    }
  }).pipe(Effect.scoped, Effect.ignore)

const main = Effect.gen(function* () {
  const server = yield* NodeSocketServer.make({ host, port })
  yield* Effect.log(`effect/socket SocketServer echo server (${style}) listening on ${host}:${port}`)
  return yield* server.run(style === "message" ? perMessage : batched)
})

Effect.runFork(Effect.scoped(main))
process.on("SIGTERM", () => process.exit(0))
process.on("SIGINT", () => process.exit(0))
