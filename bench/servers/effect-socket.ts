/**
 * The echo protocol the way an Effect user writes it with Effect 4's own sockets, as Effect's docs
 * show a socket server: the `SocketServer` service from `NodeSocketServer.layer` (`@effect/platform-node`,
 * which also runs on Bun and Deno), `server.run(handleConnection)` under `NodeRuntime.runMain`, and
 * per connection the documented consume loop: `Socket.readerBytes` (a pull of batches of reads, with
 * backpressure) and the scoped `writer`. The framing is hand-written: `effect/socket` has none.
 *
 * `PLATFORM_STYLE` picks the shape of the connection handler:
 * - `idiomatic` (default): the application's handler is an Effect per message; the replies to one
 *   pulled batch go out with one `writeAll`, the writer's call for batches ("allowing transports to
 *   coalesce them into a single flush": it corks the node:net socket around them).
 * - `message`: as `idiomatic`, but each reply is written with its own `write` as it comes.
 * - `batched`: the most favourable shape, no Effect per message: a plain function answers every frame
 *   of a pulled batch into one buffer, written with one `write`.
 *
 * Modules are imported by their own paths, not through the `@effect/platform-node` barrel, which
 * would load every Node module of the platform (HTTP, workers, ...) for nothing.
 *
 * `PORT=7000 node --import tsx bench/servers/effect-socket.ts`, `bun bench/servers/effect-socket.ts`
 * or `deno run -A bench/servers/effect-socket.ts`.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeSocketServer from "@effect/platform-node/NodeSocketServer"
import { Effect } from "effect"
import * as Socket from "effect/socket/Socket"
import * as SocketServer from "effect/socket/SocketServer"
import { Buffer } from "node:buffer"
import process from "node:process"

const HEADER = 4
const MAX_FRAME = 16 * 1024 * 1024

const port = Number(process.env.PORT ?? 7000)
const host = process.env.HOST ?? "127.0.0.1"
const style = process.env.PLATFORM_STYLE ?? "idiomatic"
if (style !== "idiomatic" && style !== "message" && style !== "batched") {
  throw new Error(`PLATFORM_STYLE must be idiomatic, message or batched, not ${style}`)
}

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

/** The application's handler, as an Effect user writes it: echo. */
const handler = (payload: Uint8Array): Effect.Effect<Uint8Array> => Effect.succeed(payload)

/** The same handler as a plain function, for the `batched` shape. */
const handlerSync = (payload: Uint8Array): Uint8Array => payload

const encode = (payload: Uint8Array): Uint8Array => {
  const frame = Buffer.allocUnsafe(HEADER + payload.length)
  frame.writeUInt32BE(payload.length, 0)
  frame.set(payload, HEADER)
  return frame
}

/** Decodes a pulled batch into the payloads of its frames (copies: frames outlive the read buffers). */
const payloadsOf = (decode: ReturnType<typeof makeDecoder>, batch: ReadonlyArray<Uint8Array>): Array<Uint8Array> => {
  const payloads: Array<Uint8Array> = []
  for (const data of batch) {
    decode(data, (buf, start, end) => payloads.push(Uint8Array.prototype.slice.call(buf, start + HEADER, end)))
  }
  return payloads
}

const idiomatic = (socket: Socket.Socket) =>
  Effect.gen(function* () {
    const { writeAll } = yield* socket.writer
    const pull = yield* Socket.readerBytes(socket)
    const decode = makeDecoder()
    while (true) {
      const replies: Array<Uint8Array> = []
      for (const payload of payloadsOf(decode, yield* pull)) replies.push(encode(yield* handler(payload)))
      if (replies.length > 0) yield* writeAll(replies as [Uint8Array, ...Array<Uint8Array>])
    }
  }).pipe(Effect.scoped, Effect.ignore)

const perMessage = (socket: Socket.Socket) =>
  Effect.gen(function* () {
    const { write } = yield* socket.writer
    const pull = yield* Socket.readerBytes(socket)
    const decode = makeDecoder()
    while (true) {
      for (const payload of payloadsOf(decode, yield* pull)) yield* write(encode(yield* handler(payload)))
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
          const reply = handlerSync(buf.subarray(start + HEADER, end))
          const size = HEADER + reply.length
          out ??= Buffer.allocUnsafe(Math.max(data.byteLength, size))
          if (o + size > out.length) {
            const grown = Buffer.allocUnsafe(2 * (o + size))
            out.copy(grown, 0, 0, o)
            out = grown
          }
          out.writeUInt32BE(reply.length, o)
          out.set(reply, o + HEADER)
          o += size
        })
      }
      if (out !== undefined) yield* write(out.subarray(0, o))
    }
  }).pipe(Effect.scoped, Effect.ignore)

const handleConnection = style === "idiomatic" ? idiomatic : style === "message" ? perMessage : batched

const main = Effect.gen(function* () {
  const server = yield* SocketServer.SocketServer
  yield* Effect.log(`effect/socket SocketServer echo server (${style}) listening on ${host}:${port}`)
  return yield* server.run(handleConnection)
})

NodeRuntime.runMain(main.pipe(Effect.provide(NodeSocketServer.layer({ host, port }))))
