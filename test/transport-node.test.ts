// Node-specific checks of the node transport: each connection reads into a buffer of its own (Node's
// `onread`), sized to the traffic, instead of a new ArrayBuffer per read. The shared scenarios are in
// test/Transport.test.ts. Skipped outside Node: Bun's and Deno's node:net keep their own reads.
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit } from "effect"
import type { Connection } from "../src/Transport.ts"
import { runtime } from "../src/Transport.ts"
import { transport } from "../src/transport/node.ts"
import * as net from "node:net"
import * as util from "./util/transport.ts"
import { firstDifference, patterned, portOf, receivedAll, Recorder, wait } from "./util/transport.ts"

const serve = (options: Parameters<typeof transport.listen>[0], onConnection: (connection: Connection) => void) =>
  util.serve(transport, options, onConnection)
const dial = (port: number) => util.dial(transport, { port })

const suite = runtime === "node" ? describe : describe.skip

suite("node transport on Node: reads into a buffer of the connection's own", () => {
  it.live("2 KiB, 64 KiB under a bulk read, back to 2 KiB after small reads, one buffer reused in between", () =>
    Effect.gen(function* () {
      const accepted = Deferred.makeUnsafe<Connection>()
      const listener = yield* serve(
        { port: 0 },
        (connection) => Deferred.doneUnsafe(accepted, Exit.succeed(connection))
      )
      const client = yield* dial(portOf(listener))
      client.start(new Recorder())
      const bulk = 1024 * 1024
      client.write(patterned(0, bulk))
      // Start reading once the bytes wait in the kernel, so that reads fill the buffer.
      yield* Effect.sleep("100 millis")
      const buffers: Array<ArrayBufferLike> = []
      const recorder = new Recorder({ data: (chunk) => buffers.push(chunk.buffer) })
      const server = yield* wait(accepted)
      server.start(recorder)
      yield* receivedAll(recorder, bulk)
      // One byte at a time, each its own read: a run of small reads halves the buffer, step by step.
      for (let i = 0; i < 24; i++) {
        client.write(patterned(bulk + i, 1))
        yield* receivedAll(recorder, bulk + i + 1)
      }
      const sizes = buffers.map((buffer) => buffer.byteLength)
      yield* Effect.log(`read buffer sizes: ${sizes.join(" ")}`)
      // node:net's own reads would give every chunk an ArrayBuffer of its own, of the chunk's size.
      expect(sizes[0]).toBe(2 * 1024)
      expect(Math.max(...sizes)).toBe(64 * 1024)
      expect(sizes.at(-1)).toBe(2 * 1024)
      expect(buffers.at(-1)).toBe(buffers.at(-2))
      expect(new Set(buffers).size).toBeLessThan(buffers.length / 4)
      expect(firstDifference(recorder.bytes(), patterned(0, bulk + 24))).toBe(-1)
    }).pipe(Effect.scoped))

  it.live("a chunk held while paused stays intact while other connections read on", () =>
    Effect.gen(function* () {
      // One connection pauses inside onData and keeps its chunk; another reads 4 MiB meanwhile. A read
      // buffer shared between connections (or reused while paused) would write over the held chunk.
      let held: { readonly chunk: Uint8Array; readonly copy: Uint8Array } | undefined
      const holder = Deferred.makeUnsafe<Connection>()
      const busy = Deferred.makeUnsafe<Connection>()
      let accepted = 0
      const listener = yield* serve({ port: 0 }, (connection) => {
        Deferred.doneUnsafe(accepted++ === 0 ? holder : busy, Exit.succeed(connection))
      })
      const first = yield* dial(portOf(listener))
      first.start(new Recorder())
      const holding = yield* wait(holder)
      const holdingRecorder = new Recorder({
        data: (chunk) => {
          if (held !== undefined) return
          held = { chunk, copy: chunk.slice() }
          holding.pause()
        }
      })
      holding.start(holdingRecorder)
      first.write(patterned(0, 1000))
      yield* receivedAll(holdingRecorder, 1)
      const second = yield* dial(portOf(listener))
      second.start(new Recorder())
      const reading = yield* wait(busy)
      const readingRecorder = new Recorder()
      reading.start(readingRecorder)
      const size = 4 * 1024 * 1024
      second.write(patterned(7, size))
      yield* receivedAll(readingRecorder, size)
      expect(firstDifference(held!.chunk, held!.copy)).toBe(-1)
      expect(firstDifference(readingRecorder.bytes(), patterned(7, size))).toBe(-1)
      holding.resume()
      yield* receivedAll(holdingRecorder, 1000)
      expect(firstDifference(holdingRecorder.bytes(), patterned(0, 1000))).toBe(-1)
    }).pipe(Effect.scoped))

  it.live("writes queued to a peer that resets fail: onClose with the error, and no onDrain", () =>
    Effect.gen(function* () {
      // The server's reading is paused (as a session pauses it when its replies back up), so the
      // reset can reach it through its failing writes, which node:net calls back with the error, one
      // by one, before it destroys the socket. A drain reported from those callbacks tells a streamed
      // reply to go on writing into the dead socket, from inside them, without end.
      const accepted = Deferred.makeUnsafe<Connection>()
      const listener = yield* serve(
        { port: 0 },
        (connection) => Deferred.doneUnsafe(accepted, Exit.succeed(connection))
      )
      const client = net.connect({ host: "127.0.0.1", port: portOf(listener) })
      client.on("error", () => {})
      yield* Effect.callback<void>((resume) => {
        client.once("connect", () => resume(Effect.void))
      })
      client.pause()
      client.write("go")
      const server = yield* wait(accepted)
      const piece = patterned(0, 1024)
      const recorder = new Recorder({
        data: () => {
          server.pause()
          // A streamed reply: it writes while fewer than 64 KiB are queued, and again on each drain.
          const pump = () => {
            let writes = 0
            while (server.queuedBytes <= 64 * 1024 && writes++ < 100_000) server.writeNoCopy!(piece)
          }
          recorder.onDrain = () => {
            // Bounded, so that a wrong drain fails the test below instead of filling the memory.
            if (++recorder.drains < 3) pump()
          }
          pump()
        }
      })
      server.start(recorder)
      yield* Effect.sleep("100 millis")
      client.destroy()
      const error = yield* wait(recorder.closed)
      expect(error).toBeDefined()
      expect(recorder.drains).toBe(0)
    }).pipe(Effect.scoped))
})
