// Bun-specific checks of the Bun transport over real sockets on 127.0.0.1: what the shared suite
// (test/Transport.test.ts) cannot see through the Connection interface. Skipped outside Bun.
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import type * as Scope from "effect/Scope"
import { TransportError } from "../src/Errors.ts"
import type { Connection, ConnectionHandler } from "../src/Transport.ts"
import { transport } from "../src/transport/bun.ts"

const onBun = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined"

/** A handler that records everything, with ways to wait for it. */
interface Recorder extends ConnectionHandler {
  readonly chunks: Array<Uint8Array>
  readonly events: Array<string>
  received: number
  drains: number
  ended: boolean
  closed: boolean
  closeError: TransportError | undefined
  bytes(): Uint8Array
}

const recorder = (extra: Partial<ConnectionHandler> = {}): Recorder => {
  const r: Recorder = {
    chunks: [],
    events: [],
    received: 0,
    drains: 0,
    ended: false,
    closed: false,
    closeError: undefined,
    onData: (chunk) => {
      r.chunks.push(chunk)
      r.received += chunk.byteLength
      extra.onData?.(chunk)
    },
    onDrain: () => {
      r.drains++
      r.events.push("drain")
      extra.onDrain?.()
    },
    onEnd: () => {
      r.ended = true
      r.events.push("end")
      extra.onEnd?.()
    },
    onClose: (error) => {
      r.events.push(error === undefined ? "close" : "close-error")
      r.closed = true
      r.closeError = error
      extra.onClose?.(error)
    },
    bytes: () => {
      const out = new Uint8Array(r.received)
      let at = 0
      for (const chunk of r.chunks) {
        out.set(chunk, at)
        at += chunk.byteLength
      }
      return out
    }
  }
  return r
}

/** Polls `condition` every 2 ms, failing after `millis`. */
const until = (what: string, condition: () => boolean, millis = 10_000): Effect.Effect<void> =>
  Effect.gen(function* () {
    const deadline = Date.now() + millis
    while (!condition()) {
      if (Date.now() > deadline) return yield* Effect.die(new Error(`timed out waiting for ${what}`))
      yield* Effect.sleep("2 millis")
    }
  })

/** A listener on 127.0.0.1:0 whose accepted connections are destroyed when the scope closes. */
const serve = (
  onConnection: (connection: Connection) => void
): Effect.Effect<number, TransportError, Scope.Scope> =>
  Effect.gen(function* () {
    const accepted: Array<Connection> = []
    yield* Effect.addFinalizer(() => Effect.sync(() => accepted.forEach((c) => c.destroy())))
    const listener = yield* transport.listen({ port: 0 }, (connection) => {
      accepted.push(connection)
      onConnection(connection)
    })
    if (listener.address._tag !== "Tcp") throw new Error("expected a TCP address")
    return listener.address.port
  })

const dial = (port: number): Effect.Effect<Connection, TransportError, Scope.Scope> =>
  Effect.acquireRelease(
    transport.connect({ host: "127.0.0.1", port }),
    (c) => Effect.sync(() => c.destroy())
  )

/** A server connection started with `s` and a client dialled to it, started with `r` (paused first if asked). */
const pair = (options: { readonly s?: Recorder; readonly paused?: boolean } = {}) =>
  Effect.gen(function* () {
    let server: Connection | undefined
    const s = options.s ?? recorder()
    const port = yield* serve((c) => {
      server = c
      c.start(s)
    })
    const client = yield* dial(port)
    const r = recorder()
    if (options.paused === true) client.pause()
    client.start(r)
    yield* until("the server connection", () => server !== undefined)
    return { server: server!, s, client, r }
  })

/** Deterministic, non-repeating-looking bytes. */
const pattern = (size: number): Uint8Array => {
  const out = new Uint8Array(size)
  let x = 0x12345678
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0
    out[i] = x >>> 24
  }
  return out
}

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => {
  if (a.byteLength !== b.byteLength) return false
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false
  return true
}

describe.skipIf(!onBun)("transport/bun", () => {
  it.live("a chunk kept after onData keeps its bytes while more data arrives", () =>
    Effect.gen(function* () {
      const { server, r } = yield* pair()
      const copies: Array<Uint8Array> = []
      for (let i = 0; i < 20; i++) {
        server.write(new Uint8Array(1000).fill(i))
        yield* until(`chunk ${i}`, () => r.received === (i + 1) * 1000)
        copies.push(r.chunks[r.chunks.length - 1]!.slice())
      }
      expect(r.chunks.length).toBe(20)
      r.chunks.forEach((chunk, i) => expect(sameBytes(chunk, copies[i]!)).toBe(true))
      // Bun allocates every chunk anew: no two share memory.
      expect(new Set(r.chunks.map((c) => c.buffer)).size).toBe(20)
    }))

  it.live("writes while bytes are queued are coalesced and flushed in one socket write per drain", () =>
    Effect.gen(function* () {
      const drainQueued: Array<number> = []
      const { server, s, client, r } = yield* pair({
        s: recorder({ onDrain: () => drainQueued.push(server.queuedBytes) }),
        paused: true
      })
      // Spy on Bun's socket (not part of the Connection interface) to count the writes it gets.
      const socket = (server as unknown as { socket: { write: (...args: Array<unknown>) => number } }).socket
      const write = socket.write.bind(socket)
      let socketWrites = 0
      socket.write = (...args) => {
        socketWrites++
        return write(...args)
      }
      const big = pattern(8 * 1024 * 1024)
      expect(server.write(big)).toBe(false)
      const queuedAfterBig = server.queuedBytes
      const writesAfterBig = socketWrites
      const small = new Uint8Array(100)
      for (let i = 0; i < 1000; i++) {
        small.fill(i & 255) // one reused buffer: the transport must have copied it
        expect(server.write(small)).toBe(false)
      }
      expect(socketWrites).toBe(writesAfterBig) // nothing reached the socket while bytes were queued
      expect(server.queuedBytes).toBe(queuedAfterBig + 100_000)
      client.resume()
      yield* until("all bytes", () => r.received === big.byteLength + 100_000)
      yield* until("drain", () => s.drains === 1)
      expect(drainQueued).toEqual([0])
      const bytes = r.bytes()
      expect(sameBytes(bytes.subarray(0, big.byteLength), big)).toBe(true)
      for (let i = 0; i < 1000; i++) expect(bytes[big.byteLength + i * 100 + 99]).toBe(i & 255)
      // One socket write per drain at most: far fewer than the 1001 writes made.
      expect(socketWrites - writesAfterBig).toBeLessThan(100)
    }))

  it.live("write of a view sends the view's bytes, not those before it in its buffer", () =>
    Effect.gen(function* () {
      const { server, r } = yield* pair()
      const whole = pattern(1000)
      server.write(whole.subarray(300, 700))
      yield* until("400 bytes", () => r.received === 400)
      expect(sameBytes(r.bytes(), whole.subarray(300, 700))).toBe(true)
    }))

  it.live("writeRange sends only buffer[0, length), and copies what stays queued before the buffer is reused", () =>
    Effect.gen(function* () {
      const { server, client, r } = yield* pair({ paused: true })
      const writeRange = server.writeRange!.bind(server)
      // The socket takes part of it at once; the rest is queued (the client does not read).
      const big = pattern(8 * 1024 * 1024)
      const bigBuffer = new Uint8Array(big.byteLength + 1000).fill(0xee)
      bigBuffer.set(big)
      expect(writeRange(bigBuffer, big.byteLength)).toBe(false)
      bigBuffer.fill(0xee) // reused at once: what was queued must be a copy
      const queued = server.queuedBytes
      expect(queued).toBeGreaterThan(0)
      // One reused buffer, longer than what is written of it each time.
      const buffer = new Uint8Array(300)
      for (let i = 0; i < 500; i++) {
        buffer.fill(0xee)
        buffer.fill(i & 255, 0, 100)
        expect(writeRange(buffer, 100)).toBe(false)
      }
      expect(server.queuedBytes).toBe(queued + 50_000)
      client.resume()
      yield* until("all bytes", () => r.received === big.byteLength + 50_000)
      const bytes = r.bytes()
      expect(sameBytes(bytes.subarray(0, big.byteLength), big)).toBe(true)
      for (let i = 0; i < 500; i++) {
        const at = big.byteLength + i * 100
        expect(bytes[at]).toBe(i & 255)
        expect(bytes[at + 99]).toBe(i & 255)
      }
      // Nothing past each length went out.
      yield* Effect.sleep("50 millis")
      expect(r.received).toBe(big.byteLength + 50_000)
    }))

  // The shared suite checks onClose once on both sides; on Bun, destroy is `terminate()` (SO_LINGER 0).
  it.live("destroy resets the connection: the peer's onClose carries a read TransportError", () =>
    Effect.gen(function* () {
      const { server, s, client, r } = yield* pair()
      server.destroy()
      expect(s.closed).toBe(false) // reported after destroy returns, as node:net does
      yield* until("both closed", () => s.closed && r.closed)
      expect(s.events).toEqual(["close"])
      expect(r.events).toEqual(["close-error"])
      expect(r.closeError).toBeInstanceOf(TransportError)
      expect(r.closeError!.operation).toBe("read")
      server.destroy()
      client.destroy()
      yield* Effect.sleep("20 millis")
      expect(s.events.length + r.events.length).toBe(2)
    }))
})
