// Deno-specific checks of the Deno transport: conn.write counting, the adaptive read buffer, Deno's
// reading of a reset and its unstable reusePort. The shared scenarios are in test/Transport.test.ts.
// Skipped outside Deno.
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit } from "effect"
import type { Connection, ListenOptions } from "../src/Transport.ts"
import { transport } from "../src/transport/deno.ts"
import * as util from "./util/transport.ts"
import { portOf, Recorder, WAIT, wait } from "./util/transport.ts"

// deno-lint-ignore no-explicit-any
const deno = (): any => (globalThis as any).Deno

const serve = (options: ListenOptions, onConnection: (connection: Connection) => void) =>
  util.serve(transport, options, onConnection)
const dial = (options: Parameters<typeof transport.connect>[0]) => util.dial(transport, options)

const encode = (text: string): Uint8Array => new TextEncoder().encode(text)

/** An echo server: writes back what it reads, ends when the peer ends. */
const echo = (connection: Connection): void =>
  connection.start(
    new Recorder({ data: (chunk) => connection.write(chunk), end: () => connection.end() })
  )

/** Counts `conn.write` calls on the connections accepted by listeners opened until the scope closes. */
const countingWrites = Effect.acquireRelease(
  Effect.sync(() => {
    const ns = deno()
    const listen = ns.listen
    const counter = { writes: 0 }
    // deno-lint-ignore no-explicit-any
    ns.listen = (options: any) => {
      const listener = listen.call(ns, options)
      return {
        get addr() {
          return listener.addr
        },
        close: () => listener.close(),
        accept: async () => {
          const conn = await listener.accept()
          const write = conn.write.bind(conn)
          conn.write = (bytes: Uint8Array) => {
            counter.writes++
            return write(bytes)
          }
          return conn
        }
      }
    }
    return { counter, restore: () => (ns.listen = listen) }
  }),
  ({ restore }) => Effect.sync(restore)
).pipe(Effect.map(({ counter }) => counter))

/** A byte pattern that differs across positions, so a reordered or reused chunk shows. */
const pattern = (i: number): number => (i ^ (i >>> 8) ^ (i >>> 16) ^ (i >>> 24)) & 0xff

/** Where two byte arrays first differ, or -1 (`toEqual` is far too slow on megabytes). */
const firstDifference = (a: Uint8Array, b: Uint8Array): number => {
  const length = Math.min(a.length, b.length)
  for (let i = 0; i < length; i++) if (a[i] !== b[i]) return i
  return a.length === b.length ? -1 : length
}

describe.skipIf(typeof deno() === "undefined")("transport/deno", () => {
  it.live("16 MiB in 4 KiB writes to a paused reader: a few conn.write calls, not one per write", () =>
    Effect.gen(function* () {
      const counter = yield* countingWrites
      const total = 16 * 1024 * 1024
      const piece = 4096
      const drained = Deferred.makeUnsafe<number>()
      const listener = yield* serve({ port: 0 }, (connection) => {
        connection.start(
          new Recorder({ drain: () => Deferred.doneUnsafe(drained, Exit.succeed(connection.queuedBytes)) })
        )
        const buffer = new Uint8Array(piece)
        for (let at = 0; at < total; at += piece) {
          for (let j = 0; j < piece; j++) buffer[j] = pattern(at + j)
          connection.write(buffer)
        }
      })
      const client = yield* dial({ port: portOf(listener) })
      const recorder = new Recorder()
      client.pause()
      client.start(recorder)
      yield* Effect.sleep("100 millis")
      client.resume()
      expect(yield* wait(drained)).toBe(0)
      while (recorder.length < total) yield* Effect.sleep("5 millis").pipe(Effect.timeout(WAIT))
      expect(firstDifference(recorder.bytes(), Uint8Array.from({ length: total }, (_, i) => pattern(i)))).toBe(-1)
      // 4096 writes: the first goes out alone, the rest are coalesced into one buffer whose
      // partial writes continue until the paused reader has taken it all.
      expect(counter.writes).toBeLessThan(total / piece / 8)
      yield* Effect.log(`16 MiB in ${total / piece} writes -> ${counter.writes} conn.write calls`)
    }).pipe(Effect.scoped))

  it.live("coalesces writes made while one is in flight into one conn.write", () =>
    Effect.gen(function* () {
      const counter = yield* countingWrites
      const drained = Deferred.makeUnsafe<void>()
      const listener = yield* serve({ port: 0 }, (connection) => {
        connection.start(new Recorder({ drain: () => Deferred.doneUnsafe(drained, Exit.void) }))
        for (let i = 0; i < 1000; i++) connection.write(encode(`${i % 10}`))
        connection.end()
      })
      const client = yield* dial({ port: portOf(listener) })
      const recorder = new Recorder({ end: () => client.end() })
      client.start(recorder)
      yield* wait(recorder.closed)
      expect(recorder.length).toBe(1000)
      expect(recorder.text()).toBe("0123456789".repeat(100))
      expect(counter.writes).toBe(2)
    }).pipe(Effect.scoped))

  it.live("read buffer: 8 KiB, 64 KiB under a bulk read, back to 8 KiB after small reads, reused in between", () =>
    Effect.gen(function* () {
      const accepted = Deferred.makeUnsafe<Connection>()
      const listener = yield* serve(
        { port: 0 },
        (connection) => Deferred.doneUnsafe(accepted, Exit.succeed(connection))
      )
      const client = yield* dial({ port: portOf(listener) })
      client.start(new Recorder())
      const bulk = 1024 * 1024
      client.write(Uint8Array.from({ length: bulk }, (_, i) => pattern(i)))
      // Start reading once the bytes wait in the kernel, so that reads fill the buffer.
      yield* Effect.sleep("100 millis")
      const buffers: Array<ArrayBufferLike> = []
      const recorder = new Recorder({ data: (chunk) => buffers.push(chunk.buffer) })
      const server = yield* wait(accepted)
      server.start(recorder)
      const received = (length: number) =>
        Effect.gen(function* () {
          while (recorder.length < length) yield* Effect.sleep("1 millis")
        }).pipe(Effect.timeout(WAIT))
      yield* received(bulk)
      // One byte at a time, each its own read: a run of small reads halves the buffer, step by step.
      for (let i = 1; i <= 16; i++) {
        client.write(new Uint8Array([pattern(bulk + i - 1)]))
        yield* received(bulk + i)
      }
      const sizes = buffers.map((buffer) => buffer.byteLength)
      yield* Effect.log(`read buffer sizes: ${sizes.join(" ")}`)
      expect(sizes[0]).toBe(8 * 1024)
      expect(Math.max(...sizes)).toBe(64 * 1024)
      expect(sizes.at(-1)).toBe(8 * 1024)
      // Between resizes the chunks are views of one buffer, not a new one per read.
      expect(buffers.at(-1)).toBe(buffers.at(-2))
      expect(firstDifference(recorder.bytes(), Uint8Array.from({ length: bulk + 16 }, (_, i) => pattern(i)))).toBe(-1)
    }).pipe(Effect.scoped))

  it.live("reset: destroying with unread bytes reads as an end on Deno; the next writes fail", () =>
    Effect.gen(function* () {
      const accepted = Deferred.makeUnsafe<Connection>()
      const listener = yield* serve({ port: 0 }, (connection) => {
        // Read one chunk, then stop reading: the rest stays unread in the kernel.
        connection.start(new Recorder({ data: () => connection.pause() }))
        Deferred.doneUnsafe(accepted, Exit.succeed(connection))
      })
      const client = yield* dial({ port: portOf(listener) })
      let writes = 0
      const poke = () => {
        // After the end, write until the socket reports the reset (bounded).
        if (writes++ < 50) setTimeout(() => client.write(encode("x")), 10)
      }
      const recorder: Recorder = new Recorder({ end: poke, drain: () => recorder.events.includes("end") && poke() })
      client.start(recorder)
      client.write(new Uint8Array(1024 * 1024))
      const serverSide = yield* wait(accepted)
      yield* Effect.sleep("100 millis")
      serverSide.destroy() // unread bytes: the kernel sends RST instead of FIN
      const error = yield* wait(recorder.closed)
      yield* Effect.log(`after reset: ${recorder.events.join(", ")} (${writes} writes); ${error?.message}`)
      // Deno reads ECONNRESET as EOF: an end, then the next write fails with EPIPE.
      expect(recorder.events.filter((e) => e !== "drain")).toEqual(["end", "close:write"])
      expect(error?._tag).toBe("TransportError")
      expect(error?.operation).toBe("write")
    }).pipe(Effect.scoped))

  it.live("reusePort needs --unstable-net: refused with a TransportError that says so, or two binds share a port", () =>
    Effect.gen(function* () {
      if (typeof deno().listenDatagram !== "function") {
        const error = yield* Effect.flip(serve({ port: 0, reusePort: true }, echo))
        expect(error.operation).toBe("listen")
        expect(error.message).toContain("--unstable-net")
      } else {
        const first = yield* serve({ port: 0, reusePort: true }, echo)
        const second = yield* serve({ port: portOf(first), reusePort: true }, echo)
        expect(portOf(second)).toBe(portOf(first))
      }
    }).pipe(Effect.scoped))
})
