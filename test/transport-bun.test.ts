// Scratch tests of the Bun transport over real sockets on 127.0.0.1 (superseded later by the shared
// transport conformance suite). Skipped outside Bun.
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
  text(): string
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
    },
    text: () => new TextDecoder().decode(r.bytes())
  }
  return r
}

const text = (s: string): Uint8Array => new TextEncoder().encode(s)

/** Polls `condition` every 2 ms, failing after `millis`. */
const until = (what: string, condition: () => boolean, millis = 10_000): Effect.Effect<void> =>
  Effect.gen(function* () {
    const deadline = Date.now() + millis
    while (!condition()) {
      if (Date.now() > deadline) return yield* Effect.dieMessage(`timed out waiting for ${what}`)
      yield* Effect.sleep("2 millis")
    }
  })

/** A listener on 127.0.0.1:0 whose accepted connections are destroyed when the scope closes. */
const serve = (
  onConnection: (connection: Connection) => void,
  tls?: { cert: string; key: string }
): Effect.Effect<number, TransportError, Scope.Scope> =>
  Effect.gen(function* () {
    const accepted: Array<Connection> = []
    yield* Effect.addFinalizer(() => Effect.sync(() => accepted.forEach((c) => c.destroy())))
    const listener = yield* transport.listen({ port: 0, ...(tls ? { tls } : {}) }, (connection) => {
      accepted.push(connection)
      onConnection(connection)
    })
    if (listener.address._tag !== "Tcp") throw new Error("expected a TCP address")
    return listener.address.port
  })

const dial = (
  port: number,
  tls?: { ca?: string; serverName?: string }
): Effect.Effect<Connection, TransportError, Scope.Scope> =>
  Effect.acquireRelease(
    transport.connect({ host: "127.0.0.1", port, ...(tls ? { tls } : {}) }),
    (c) => Effect.sync(() => c.destroy())
  )

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

// Self-signed test certificate for CN "sluice test", SAN localhost and 127.0.0.1 (valid until 2126).
const CERT = `-----BEGIN CERTIFICATE-----
MIIBnzCCAUWgAwIBAgIUGHoSndkdL3/nzyj7ElCBtIDg7MIwCgYIKoZIzj0EAwIw
FjEUMBIGA1UEAwwLc2x1aWNlIHRlc3QwIBcNMjYxMTI0MjI1MjUwWhgPMjEyNjEw
MzEyMjUyNTBaMBYxFDASBgNVBAMMC3NsdWljZSB0ZXN0MFkwEwYHKoZIzj0CAQYI
KoZIzj0DAQcDQgAE9lyXEdlXBznyZjVItwkSFmecBlvhvXrvdskm2gUxMo/LLoGE
+CdfxA1n03IXBzbWs2Yk3lBtOXqXW8M/4FJop6NvMG0wHQYDVR0OBBYEFJe4U6XV
TtuQ7QX37UiVutgFcHH5MB8GA1UdIwQYMBaAFJe4U6XVTtuQ7QX37UiVutgFcHH5
MA8GA1UdEwEB/wQFMAMBAf8wGgYDVR0RBBMwEYIJbG9jYWxob3N0hwR/AAABMAoG
CCqGSM49BAMCA0gAMEUCIFXZoJsIvOletK2Y01aYXrpa4ZfS//zSfFnFs8gXHfh0
AiEApiyw+o52ym1KITwM466+HGNXvTl4dsGp3NpNyZ5LAtg=
-----END CERTIFICATE-----
`
const KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgFhWuMRV8PVcVrKZx
uSApuFFP9HPn9RjlK1P18ecSnKGhRANCAAT2XJcR2VcHOfJmNUi3CRIWZ5wGW+G9
eu92ySbaBTEyj8sugYT4J1/EDWfTchcHNtazZiTeUG05epdbwz/gUmin
-----END PRIVATE KEY-----
`

describe.skipIf(!onBun)("transport/bun", () => {
  it.scopedLive("echo through a listener and a connection, with addresses", () =>
    Effect.gen(function* () {
      let server: Connection | undefined
      const port = yield* serve((c) => {
        server = c
        c.start(recorder({ onData: (chunk) => c.write(chunk) }))
      })
      const client = yield* dial(port)
      const r = recorder()
      client.start(r)
      expect(client.write(text("hello "))).toBe(true)
      expect(client.write(text("world"))).toBe(true)
      yield* until("the echo", () => r.received === 11)
      expect(r.text()).toBe("hello world")
      expect(client.remoteAddress).toEqual({ _tag: "Tcp", host: "127.0.0.1", port })
      expect(client.localAddress).toEqual(server!.remoteAddress)
      expect(server!.localAddress).toEqual({ _tag: "Tcp", host: "127.0.0.1", port })
    }))

  it.scopedLive("a chunk kept after onData keeps its bytes while more data arrives", () =>
    Effect.gen(function* () {
      let server: Connection | undefined
      const port = yield* serve((c) => {
        server = c
        c.start(recorder())
      })
      const client = yield* dial(port)
      const r = recorder()
      client.start(r)
      yield* until("the server connection", () => server !== undefined)
      const copies: Array<Uint8Array> = []
      for (let i = 0; i < 20; i++) {
        server!.write(new Uint8Array(1000).fill(i))
        yield* until(`chunk ${i}`, () => r.received === (i + 1) * 1000)
        copies.push(r.chunks[r.chunks.length - 1]!.slice())
      }
      expect(r.chunks.length).toBe(20)
      r.chunks.forEach((chunk, i) => expect(sameBytes(chunk, copies[i]!)).toBe(true))
      // Bun allocates every chunk anew: no two share memory.
      expect(new Set(r.chunks.map((c) => c.buffer)).size).toBe(20)
    }))

  it.scopedLive("16 MiB to a reader that pauses: partial writes queue, drain flushes, bytes arrive intact", () =>
    Effect.gen(function* () {
      const payload = pattern(16 * 1024 * 1024)
      let server: Connection | undefined
      const s = recorder()
      const port = yield* serve((c) => {
        server = c
        c.start(s)
      })
      const client = yield* dial(port)
      const r = recorder()
      client.pause()
      client.start(r)
      yield* until("the server connection", () => server !== undefined)
      const firstWrite = server!.write(payload)
      const queuedAfterWrite = server!.queuedBytes
      payload.fill(0, 0, 1024) // the caller may reuse its buffer as soon as write returns
      expect(firstWrite).toBe(false)
      expect(queuedAfterWrite).toBeGreaterThan(0)
      expect(queuedAfterWrite).toBeLessThan(payload.byteLength)
      yield* Effect.sleep("150 millis")
      expect(r.received).toBe(0)
      expect(s.drains).toBe(0)
      client.resume()
      yield* until("all bytes", () => r.received === payload.byteLength)
      yield* until("drain", () => s.drains === 1)
      expect(server!.queuedBytes).toBe(0)
      const expected = pattern(16 * 1024 * 1024)
      expect(sameBytes(r.bytes(), expected)).toBe(true)
    }))

  it.scopedLive("writes while bytes are queued are coalesced and flushed in one socket write per drain", () =>
    Effect.gen(function* () {
      let server: Connection | undefined
      const s = recorder({ onDrain: () => drainQueued.push(server!.queuedBytes) })
      const drainQueued: Array<number> = []
      const port = yield* serve((c) => {
        server = c
        c.start(s)
      })
      const client = yield* dial(port)
      const r = recorder()
      client.pause()
      client.start(r)
      yield* until("the server connection", () => server !== undefined)
      // Spy on Bun's socket (not part of the Connection interface) to count the writes it gets.
      const socket = (server as unknown as { socket: { write: (...args: Array<unknown>) => number } }).socket
      const write = socket.write.bind(socket)
      let socketWrites = 0
      socket.write = (...args) => {
        socketWrites++
        return write(...args)
      }
      const big = pattern(8 * 1024 * 1024)
      expect(server!.write(big)).toBe(false)
      const queuedAfterBig = server!.queuedBytes
      const writesAfterBig = socketWrites
      const small = new Uint8Array(100)
      for (let i = 0; i < 1000; i++) {
        small.fill(i & 255) // one reused buffer: the transport must have copied it
        expect(server!.write(small)).toBe(false)
      }
      expect(socketWrites).toBe(writesAfterBig) // nothing reached the socket while bytes were queued
      expect(server!.queuedBytes).toBe(queuedAfterBig + 100_000)
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

  it.scopedLive("half-close: the client's end reaches the server, which can still write back, then closes", () =>
    Effect.gen(function* () {
      let server: Connection | undefined
      const s = recorder({
        onEnd: () => {
          server!.write(text("reply after FIN"))
          server!.end()
        }
      })
      const port = yield* serve((c) => {
        server = c
        c.start(s)
      })
      const client = yield* dial(port)
      const r = recorder()
      client.start(r)
      client.write(text("request"))
      client.end()
      expect(client.write(text("too late"))).toBe(false)
      yield* until("both sides closed", () => s.closed && r.closed)
      expect(s.text()).toBe("request")
      expect(s.events).toEqual(["end", "close"])
      expect(r.text()).toBe("reply after FIN")
      expect(r.events).toEqual(["end", "close"])
      expect(s.closeError).toBeUndefined()
      expect(r.closeError).toBeUndefined()
    }))

  it.scopedLive("end waits for queued bytes before the FIN", () =>
    Effect.gen(function* () {
      let server: Connection | undefined
      const port = yield* serve((c) => {
        server = c
        c.start(recorder())
      })
      const client = yield* dial(port)
      const r = recorder({ onEnd: () => client.end() })
      client.pause()
      client.start(r)
      yield* until("the server connection", () => server !== undefined)
      const payload = pattern(4 * 1024 * 1024)
      expect(server!.write(payload)).toBe(false)
      server!.end()
      yield* Effect.sleep("50 millis")
      client.resume()
      yield* until("the client's end", () => r.closed)
      expect(r.events).toEqual(["end", "close"])
      expect(sameBytes(r.bytes(), payload)).toBe(true)
    }))

  it.scopedLive("destroy on one side: both get onClose once, the peer with a read TransportError", () =>
    Effect.gen(function* () {
      let server: Connection | undefined
      const s = recorder()
      const port = yield* serve((c) => {
        server = c
        c.start(s)
      })
      const client = yield* dial(port)
      const r = recorder()
      client.start(r)
      yield* until("the server connection", () => server !== undefined)
      server!.destroy()
      expect(s.closed).toBe(false) // reported after destroy returns, as node:net does
      yield* until("both closed", () => s.closed && r.closed)
      expect(s.events).toEqual(["close"])
      expect(r.events).toEqual(["close-error"])
      expect(r.closeError).toBeInstanceOf(TransportError)
      expect(r.closeError!.operation).toBe("read")
      server!.destroy()
      client.destroy()
      yield* Effect.sleep("20 millis")
      expect(s.events.length + r.events.length).toBe(2)
    }))

  it.scopedLive("a connection not started at once holds its data until start", () =>
    Effect.gen(function* () {
      let server: Connection | undefined
      const port = yield* serve((c) => {
        server = c
      })
      const client = yield* dial(port)
      client.start(recorder())
      client.write(text("early"))
      client.end()
      yield* until("the server connection", () => server !== undefined)
      yield* Effect.sleep("50 millis")
      const s = recorder()
      server!.start(s)
      yield* until("end", () => s.ended)
      expect(s.text()).toBe("early")
    }))

  it.scopedLive("listening on a port in use fails with a listen TransportError", () =>
    Effect.gen(function* () {
      const port = yield* serve(() => {})
      const error = yield* Effect.flip(transport.listen({ host: "127.0.0.1", port }, () => {}))
      expect(error).toBeInstanceOf(TransportError)
      expect(error.operation).toBe("listen")
      expect(error.address).toBe(`127.0.0.1:${port}`)
    }))

  it.scopedLive("connecting to a closed port fails with a connect TransportError", () =>
    Effect.gen(function* () {
      const port = yield* Effect.scoped(serve(() => {}))
      const error = yield* Effect.flip(transport.connect({ host: "127.0.0.1", port }))
      expect(error).toBeInstanceOf(TransportError)
      expect(error.operation).toBe("connect")
    }))

  it.scopedLive("TLS: echo with a trusted certificate; a wrong server name fails the handshake", () =>
    Effect.gen(function* () {
      const port = yield* serve((c) => c.start(recorder({ onData: (chunk) => c.write(chunk) })), {
        cert: CERT,
        key: KEY
      })
      const client = yield* dial(port, { ca: CERT, serverName: "localhost" })
      const r = recorder()
      client.start(r)
      client.write(text("over tls"))
      yield* until("the echo", () => r.received === 8)
      expect(r.text()).toBe("over tls")
      const error = yield* Effect.flip(transport.connect({ port, tls: { ca: CERT, serverName: "example.com" } }))
      expect(error.operation).toBe("handshake")
      const untrusted = yield* Effect.flip(transport.connect({ port, tls: { serverName: "localhost" } }))
      expect(untrusted.operation).toBe("handshake")
    }))
})
