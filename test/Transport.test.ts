/**
 * The transport conformance suite: one set of scenarios, `conformance(transport)`, run against every
 * adapter the current runtime can run. `node` runs everywhere (natively on Node, through the
 * `node:net` compatibility layers on Bun and Deno); `bun` only on Bun; `deno` only on Deno.
 *
 * Both sides of every connection go through the transport under test (`listen` and `connect`), on
 * 127.0.0.1 port 0 or a temporary Unix socket path. Every wait is bounded; every listener and
 * connection is released with the test's scope.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Queue, Scope } from "effect"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as nodePath from "node:path"
import { fileURLToPath } from "node:url"
import * as Bytes from "../src/Bytes.ts"
import { TransportError } from "../src/Errors.ts"
import type {
  Address,
  Connection,
  ConnectionHandler,
  ConnectOptions,
  ListenOptions,
  Transport
} from "../src/Transport.ts"
import { runtime } from "../src/Transport.ts"
import { transport as bunTransport } from "../src/transport/bun.ts"
import { transport as denoTransport } from "../src/transport/deno.ts"
import { transport as nodeTransport } from "../src/transport/node.ts"

// --- Fixtures -------------------------------------------------------------------------------------

const certFile = (name: string): string =>
  fs.readFileSync(fileURLToPath(new URL(`./certs/${name}`, import.meta.url)), "utf8")
/** A test CA and a leaf it signed for 127.0.0.1 and localhost (see test/certs/README.md). */
const CA = certFile("ca.pem")
const CERT = certFile("server.pem")
const KEY = certFile("server-key.pem")

const KiB = 1024
const MiB = 1024 * KiB

/** The byte at `offset` of a test stream: no short period, so a lost, doubled or reordered chunk shows. */
const byteAt = (offset: number): number => (Math.imul(offset, 0x9e3779b1) >>> 24) ^ (offset >>> 16) & 0xff

/** Fills `buffer` with the stream's bytes from `offset` on. */
const fillPattern = (buffer: Uint8Array, offset: number): Uint8Array => {
  for (let i = 0; i < buffer.length; i++) buffer[i] = byteAt(offset + i)
  return buffer
}

/** The first offset where `bytes` differs from the stream pattern, or -1 (`toEqual` is too slow on MiBs). */
const patternMismatch = (bytes: Uint8Array, from = 0): number => {
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== byteAt(from + i)) return i
  return -1
}

const firstDifference = (a: Uint8Array, b: Uint8Array): number => {
  const length = Math.min(a.length, b.length)
  for (let i = 0; i < length; i++) if (a[i] !== b[i]) return i
  return a.length === b.length ? -1 : length
}

const encode = (text: string): Uint8Array => new TextEncoder().encode(text)

/** Polls `condition` every 2 ms; dies after `millis`, so that nothing hangs. */
const until = (what: string, condition: () => boolean, millis = 10_000): Effect.Effect<void> =>
  Effect.gen(function* () {
    const deadline = Date.now() + millis
    while (!condition()) {
      if (Date.now() > deadline) return yield* Effect.die(new Error(`timed out after ${millis} ms waiting for ${what}`))
      yield* Effect.sleep("2 millis")
    }
  })

/** Hooks a test adds to a recorder; each gets the connection. */
interface Hooks {
  readonly data?: (chunk: Uint8Array, connection: Connection) => void
  readonly drain?: (connection: Connection) => void
  readonly end?: (connection: Connection) => void
  readonly close?: (error: TransportError | undefined, connection: Connection) => void
}

/** Records what a connection reports: the bytes (copied), the counts, and whatever breaks the contract. */
class Recorder implements ConnectionHandler {
  readonly chunks: Array<Uint8Array> = []
  /** `end`, `close`, `close:<operation>` in order; `data` only when it came after the end or close. */
  readonly events: Array<string> = []
  length = 0
  dataCalls = 0
  drains = 0
  ends = 0
  closes = 0
  closeError: TransportError | undefined = undefined
  /** `queuedBytes` seen by each `onDrain`. */
  readonly queuedAtDrain: Array<number> = []
  /** `queuedBytes` seen by each `onProgress`, and how many drains had come before each. */
  readonly queuedAtProgress: Array<number> = []
  readonly drainsAtProgress: Array<number> = []

  constructor(readonly connection: Connection, readonly hooks: Hooks = {}) {}

  onData = (chunk: Uint8Array): void => {
    if (this.closes > 0 || this.ends > 0) this.events.push("data")
    this.dataCalls++
    this.chunks.push(chunk.slice())
    this.length += chunk.length
    this.hooks.data?.(chunk, this.connection)
  }
  onDrain = (): void => {
    this.drains++
    this.queuedAtDrain.push(this.connection.queuedBytes)
    this.hooks.drain?.(this.connection)
  }
  onProgress = (): void => {
    this.queuedAtProgress.push(this.connection.queuedBytes)
    this.drainsAtProgress.push(this.drains)
  }
  onEnd = (): void => {
    this.ends++
    this.events.push("end")
    this.hooks.end?.(this.connection)
  }
  onClose = (error: TransportError | undefined): void => {
    this.closes++
    this.closeError = error
    this.events.push(error === undefined ? "close" : `close:${error.operation}`)
    this.hooks.close?.(error, this.connection)
  }

  bytes(): Uint8Array {
    return Bytes.concat(this.chunks)
  }
  text(): string {
    return new TextDecoder().decode(this.bytes())
  }
}

/** One end of a connection with its recorder. */
interface Side {
  readonly connection: Connection
  readonly recorder: Recorder
}

interface Served {
  readonly address: Address
  readonly port: number
  /** The next accepted connection (already started with the server's hooks). */
  readonly accepted: Effect.Effect<Side>
}

const portOf = (address: Address): number => address._tag === "Tcp" ? address.port : 0

/** An echo server's hooks: writes back what it reads, ends when the peer ends. */
const echoHooks: Hooks = {
  data: (chunk, connection) => connection.write(chunk),
  end: (connection) => connection.end()
}

/**
 * Listens until the scope closes; accepted connections are started with `hooks` and destroyed with the
 * scope (unless `keepConnections`). With `startLater`, the test starts them (`connection.start(recorder)`).
 */
const serve = (
  transport: Transport,
  options: ListenOptions,
  hooks: Hooks = {},
  { keepConnections = false, startLater = false }: {
    readonly keepConnections?: boolean
    readonly startLater?: boolean
  } = {}
): Effect.Effect<Served, TransportError, Scope.Scope> =>
  Effect.gen(function* () {
    const accepted = yield* Queue.unbounded<Side>()
    const open: Array<Connection> = []
    const listener = yield* transport.listen({ host: "127.0.0.1", port: 0, ...options }, (connection) => {
      open.push(connection)
      const recorder = new Recorder(connection, hooks)
      if (!startLater) connection.start(recorder)
      Queue.offerUnsafe(accepted, { connection, recorder })
    })
    // Added after listening, so it runs before the listener is released.
    if (!keepConnections) yield* Effect.addFinalizer(() => Effect.sync(() => open.forEach((c) => c.destroy())))
    return {
      address: listener.address,
      port: portOf(listener.address),
      accepted: Queue.take(accepted).pipe(
        Effect.timeoutOrElse({
          duration: "10 seconds",
          orElse: () => Effect.fail(new Error("no connection accepted"))
        }),
        Effect.orDie
      )
    }
  })

/** Connects and starts (paused first when asked); the connection is destroyed with the scope. */
const dial = (
  transport: Transport,
  options: ConnectOptions,
  hooks: Hooks = {},
  start: { readonly paused?: boolean } = {}
): Effect.Effect<Side, TransportError, Scope.Scope> =>
  Effect.acquireRelease(
    transport.connect({ host: "127.0.0.1", ...options }),
    (connection) => Effect.sync(() => connection.destroy())
  ).pipe(
    Effect.map((connection) => {
      const recorder = new Recorder(connection, hooks)
      if (start.paused === true) connection.pause()
      connection.start(recorder)
      return { connection, recorder }
    })
  )

/** Writes `total` pattern bytes in `piece`-sized writes from one reused buffer; returns what each write returned. */
const writePattern = (connection: Connection, total: number, piece: number, from = 0): Array<boolean> => {
  const buffer = new Uint8Array(piece)
  const returned: Array<boolean> = []
  for (let at = 0; at < total; at += piece) {
    const chunk = at + piece <= total ? buffer : buffer.subarray(0, total - at)
    returned.push(connection.write(fillPattern(chunk, from + at)))
  }
  return returned
}

/** Gives the event loop a moment, then checks that nothing more was reported (a late duplicate event, say). */
const settle = Effect.sleep("50 millis")

// --- The suite ------------------------------------------------------------------------------------

/** What a runtime cannot do, with the reason: the scenario is skipped for its transport. */
interface Limitations {
  readonly abandonedHandshake?: string
}

/** The scenarios every transport must pass. */
const conformance = (transport: Transport, limitations: Limitations = {}): void => {
  it.live("ordering: 10 000 small writes arrive in order, byte-exact, and are echoed back in order", () =>
    Effect.gen(function* () {
      const server = yield* serve(transport, {}, echoHooks)
      expect(server.address).toEqual({ _tag: "Tcp", host: "127.0.0.1", port: server.port })
      expect(server.port).toBeGreaterThan(0)
      const client = yield* dial(transport, { port: server.port })
      const count = 10_000
      const size = 7
      const message = new Uint8Array(size) // reused: `write` must copy what it keeps
      let falseReturns = 0
      let trueWithQueued = 0
      for (let i = 0; i < count; i++) {
        new DataView(message.buffer).setUint32(0, i)
        fillPattern(message.subarray(4), i * size + 4)
        if (client.connection.write(message)) {
          if (client.connection.queuedBytes !== 0) trueWithQueued++
        } else falseReturns++
      }
      // "Returns `true` when nothing is left queued."
      expect(trueWithQueued).toBe(0)
      const accepted = yield* server.accepted
      expect(client.connection.remoteAddress).toEqual(server.address)
      expect(accepted.connection.localAddress).toEqual(server.address)
      expect(client.connection.localAddress).toEqual(accepted.connection.remoteAddress)
      expect(portOf(client.connection.localAddress)).toBeGreaterThan(0)
      yield* until("the echo", () => client.recorder.length >= count * size)
      for (const [name, got] of [["server", accepted.recorder.bytes()], ["client", client.recorder.bytes()]] as const) {
        expect(got.length, name).toBe(count * size)
        const view = new DataView(got.buffer, got.byteOffset, got.length)
        let wrong = -1
        for (let i = 0; i < count && wrong < 0; i++) {
          if (
            view.getUint32(i * size) !== i ||
            patternMismatch(got.subarray(i * size + 4, (i + 1) * size), i * size + 4) >= 0
          ) {
            wrong = i
          }
        }
        expect(wrong, `${name}: first message out of place`).toBe(-1)
      }
      // Every `false` is followed by an `onDrain` once everything is handed over.
      if (falseReturns > 0) yield* until("the client's drain", () => client.recorder.drains > 0)
      expect(client.connection.queuedBytes).toBe(0)
      client.connection.end()
      yield* until("both closed", () => client.recorder.closes > 0 && accepted.recorder.closes > 0)
      expect(client.recorder.events).toEqual(["end", "close"])
      expect(accepted.recorder.events).toEqual(["end", "close"])
    }))

  it.live("backpressure: 16 MiB to a paused reader queues, write returns false, resume delivers it intact and drains", () =>
    Effect.gen(function* () {
      const server = yield* serve(transport, {})
      const client = yield* dial(transport, { port: server.port }, {}, { paused: true })
      const { connection, recorder } = yield* server.accepted
      const total = 16 * MiB
      let maxQueued = 0
      const buffer = new Uint8Array(64 * KiB)
      const returned: Array<boolean> = []
      for (let at = 0; at < total; at += buffer.length) {
        returned.push(connection.write(fillPattern(buffer, at)))
        maxQueued = Math.max(maxQueued, connection.queuedBytes)
      }
      expect(returned).toContain(false)
      expect(maxQueued).toBeGreaterThan(0)
      expect(maxQueued).toBeLessThanOrEqual(total)
      yield* Effect.sleep("100 millis")
      // The kernel's buffers hold a few MiB at most: the rest is still queued, nothing drained or read.
      expect(connection.queuedBytes).toBeGreaterThan(0)
      expect(recorder.drains).toBe(0)
      expect(client.recorder.dataCalls).toBe(0)
      client.connection.resume()
      yield* until("16 MiB at the client", () => client.recorder.length >= total)
      yield* until("the server's drain", () => recorder.drains > 0)
      expect(client.recorder.length).toBe(total)
      expect(patternMismatch(client.recorder.bytes())).toBe(-1)
      expect(connection.queuedBytes).toBe(0)
      expect(recorder.queuedAtDrain.at(-1)).toBe(0)
      // On the way, progress was reported with bytes still queued, less each time, all before the drain
      // (a transport that reports only the drain leaves a session waiting for an empty queue).
      const progress = recorder.queuedAtProgress
      expect(progress.length).toBeGreaterThan(0)
      expect(progress.every((queued) => queued > 0)).toBe(true)
      expect(progress.every((queued, i) => i === 0 || queued <= progress[i - 1]!)).toBe(true)
      expect(progress[0]).toBeLessThan(total)
      expect(recorder.drainsAtProgress.every((drains) => drains === 0)).toBe(true)
    }))

  it.live("coalescing: writes made while bytes are queued are queued exactly once each and flushed intact", () =>
    Effect.gen(function* () {
      const server = yield* serve(transport, {})
      const client = yield* dial(transport, { port: server.port }, {}, { paused: true })
      const { connection, recorder } = yield* server.accepted
      // Fill the kernel's buffers until the transport has to queue (bounded: 64 MiB).
      const piece = new Uint8Array(4 * KiB)
      let written = 0
      let trueWithQueued = 0
      while (connection.queuedBytes === 0 && written < 64 * MiB) {
        if (connection.write(fillPattern(piece, written)) && connection.queuedBytes > 0) trueWithQueued++
        written += piece.length
      }
      expect(connection.queuedBytes).toBeGreaterThan(0)
      // "Returns `true` when nothing is left queued", also for the write the kernel took only part of.
      expect(trueWithQueued).toBe(0)
      const small = new Uint8Array(100)
      let grewBy100 = 0
      for (let i = 0; i < 1000; i++) {
        const before = connection.queuedBytes
        expect(connection.write(fillPattern(small, written))).toBe(false)
        written += small.length
        if (connection.queuedBytes === before + small.length) grewBy100++
      }
      // Queued bytes grow by exactly what was written: copied once, neither dropped nor doubled.
      // (Node may hand part of its queue to the kernel meanwhile, so allow a few exceptions there.)
      expect(grewBy100).toBeGreaterThan(990)
      client.connection.resume()
      yield* until("everything at the client", () => client.recorder.length >= written)
      yield* until("the drain", () => recorder.drains > 0)
      yield* settle
      expect(client.recorder.length).toBe(written)
      expect(patternMismatch(client.recorder.bytes())).toBe(-1)
      expect(recorder.drains).toBe(1)
      expect(recorder.queuedAtDrain).toEqual([0])
    }))

  it.live("end flushes what is queued before the FIN", () =>
    Effect.gen(function* () {
      const server = yield* serve(transport, {})
      const client = yield* dial(transport, { port: server.port }, { end: (c) => c.end() }, { paused: true })
      const { connection, recorder } = yield* server.accepted
      const total = 8 * MiB
      writePattern(connection, total, 256 * KiB)
      connection.end()
      expect(connection.write(encode("after end"))).toBe(false)
      yield* Effect.sleep("50 millis")
      client.connection.resume()
      yield* until("both closed", () => client.recorder.closes > 0 && recorder.closes > 0)
      expect(client.recorder.length).toBe(total)
      expect(patternMismatch(client.recorder.bytes())).toBe(-1)
      expect(client.recorder.events).toEqual(["end", "close"])
      expect(recorder.events).toEqual(["end", "close"])
    }))

  it.live("half-close: the client's end reaches the server, which still writes back, then both close once", () =>
    Effect.gen(function* () {
      const server = yield* serve(transport, {}, {
        end: (connection) => {
          connection.write(encode("reply after FIN"))
        }
      })
      const client = yield* dial(transport, { port: server.port })
      client.connection.write(encode("request"))
      client.connection.end()
      expect(client.connection.write(encode("too late"))).toBe(false)
      const accepted = yield* server.accepted
      yield* until("the server's onEnd", () => accepted.recorder.ends > 0)
      expect(accepted.recorder.text()).toBe("request")
      yield* until("the reply", () => client.recorder.length >= 15)
      expect(client.recorder.text()).toBe("reply after FIN")
      expect(client.recorder.ends).toBe(0)
      expect(client.recorder.closes).toBe(0)
      expect(accepted.recorder.closes).toBe(0)
      accepted.connection.end()
      yield* until("both closed", () => client.recorder.closes > 0 && accepted.recorder.closes > 0)
      yield* settle
      expect(accepted.recorder.events).toEqual(["end", "close"])
      expect(client.recorder.events).toEqual(["end", "close"])
      accepted.connection.destroy()
      client.connection.destroy()
      yield* settle
      expect(accepted.recorder.closes + client.recorder.closes).toBe(2)
    }))

  it.live("peer reset: destroying with unread bytes closes the peer exactly once, with no data after onClose", () =>
    Effect.gen(function* () {
      // The server reads one chunk, then stops: the rest stays unread in its kernel buffer.
      const server = yield* serve(transport, {}, { data: (_, connection) => connection.pause() })
      // A well-behaved half-close user ends its side once the peer's end arrives.
      const client = yield* dial(transport, { port: server.port }, { end: (connection) => connection.end() })
      client.connection.write(fillPattern(new Uint8Array(1 * MiB), 0))
      const accepted = yield* server.accepted
      yield* until("the server's first chunk", () => accepted.recorder.dataCalls > 0)
      yield* Effect.sleep("50 millis")
      accepted.connection.destroy()
      yield* until("the server's onClose", () => accepted.recorder.closes > 0, 5_000)
      yield* until("the client's onClose", () => client.recorder.closes > 0, 5_000)
      accepted.connection.destroy()
      client.connection.destroy()
      expect(client.connection.write(encode("after close"))).toBe(false)
      yield* settle
      expect(accepted.recorder.closes).toBe(1)
      expect(accepted.recorder.dataCalls).toBe(1)
      expect(client.recorder.closes).toBe(1)
      // Reset or end: either way no data after the close, and the close is last.
      expect(client.recorder.events.at(-1)).toMatch(/^close/)
      expect(client.recorder.events).not.toContain("data")
      yield* Effect.log(`${transport.name}: the peer of a reset saw ${client.recorder.events.join(", ")}`)
    }))

  it.live("a peer that never reads: queuedBytes stays bounded by what was written, destroy releases it", () =>
    Effect.gen(function* () {
      const server = yield* serve(transport, {})
      const client = yield* dial(transport, { port: server.port }, { end: (c) => c.end() }, { paused: true })
      const { connection, recorder } = yield* server.accepted
      const piece = new Uint8Array(64 * KiB)
      let written = 0
      while (connection.queuedBytes <= 4 * MiB && written < 64 * MiB) {
        connection.write(fillPattern(piece, written))
        written += piece.length
      }
      expect(connection.queuedBytes).toBeGreaterThan(4 * MiB)
      let maxQueued = 0
      for (let i = 0; i < 20; i++) {
        yield* Effect.sleep("10 millis")
        maxQueued = Math.max(maxQueued, connection.queuedBytes)
      }
      expect(maxQueued).toBeLessThanOrEqual(written)
      expect(recorder.drains).toBe(0)
      expect(client.recorder.dataCalls).toBe(0)
      connection.destroy()
      expect(recorder.closes).toBe(0) // reported after `destroy` returns, not from inside it
      yield* until("the server's onClose", () => recorder.closes > 0, 5_000)
      // "Closes at once, dropping what is queued."
      expect(connection.queuedBytes).toBe(0)
      expect(connection.write(piece)).toBe(false)
      // The reader resumes: it gets what the kernel held, then its end or reset; nothing hangs.
      client.connection.resume()
      yield* until("the client's onClose", () => client.recorder.closes > 0, 10_000)
      yield* settle
      expect(recorder.closes).toBe(1)
      expect(client.recorder.closes).toBe(1)
      expect(client.recorder.length).toBeLessThanOrEqual(written)
      expect(patternMismatch(client.recorder.bytes())).toBe(-1)
    }))

  it.live("pause inside onData: no onData until resume, and the paused chunk stays intact", () =>
    Effect.gen(function* () {
      const server = yield* serve(transport, {})
      let held: { readonly chunk: Uint8Array; readonly copy: Uint8Array } | undefined
      const client = yield* dial(transport, { port: server.port }, {
        data: (chunk, connection) => {
          if (held !== undefined) return
          held = { chunk, copy: chunk.slice() }
          connection.pause()
        }
      })
      const { connection } = yield* server.accepted
      const total = 4 * MiB
      writePattern(connection, total, 256 * KiB)
      yield* until("the first chunk", () => held !== undefined)
      yield* Effect.sleep("150 millis")
      expect(client.recorder.dataCalls).toBe(1)
      expect(firstDifference(held!.chunk, held!.copy)).toBe(-1)
      client.connection.resume()
      yield* until("everything", () => client.recorder.length >= total)
      expect(client.recorder.length).toBe(total)
      expect(patternMismatch(client.recorder.bytes())).toBe(-1)
    }))

  it.live("pause from outside onData while the peer keeps writing: no onData until resume", () =>
    Effect.gen(function* () {
      const server = yield* serve(transport, {})
      const client = yield* dial(transport, { port: server.port })
      const { connection } = yield* server.accepted
      const piece = 16 * KiB
      let written = 0
      let callsAtPause = -1
      for (let i = 0; i < 150; i++) {
        written += piece
        writePattern(connection, piece, piece, written - piece)
        yield* Effect.sleep("1 millis")
        if (i === 20) {
          yield* until("some data", () => client.recorder.dataCalls > 0)
          client.connection.pause()
          callsAtPause = client.recorder.dataCalls
        }
      }
      // About 130 writes made while paused: none of them reached onData.
      expect(client.recorder.dataCalls).toBe(callsAtPause)
      client.connection.resume()
      yield* until("everything", () => client.recorder.length >= written)
      expect(client.recorder.length).toBe(written)
      expect(patternMismatch(client.recorder.bytes())).toBe(-1)
    }))

  it.live("destroy: onClose comes once, after destroy returns; the peer closes once", () =>
    Effect.gen(function* () {
      const server = yield* serve(transport, {}, echoHooks)
      const client = yield* dial(transport, { port: server.port })
      client.connection.write(encode("hello"))
      yield* until("the echo", () => client.recorder.length >= 5)
      const accepted = yield* server.accepted
      client.connection.destroy()
      expect(client.recorder.closes).toBe(0)
      yield* until("both closed", () => client.recorder.closes > 0 && accepted.recorder.closes > 0, 5_000)
      client.connection.destroy()
      yield* settle
      expect(client.recorder.events).toEqual(["close"])
      expect(client.recorder.closeError).toBeUndefined()
      expect(accepted.recorder.closes).toBe(1)
      expect(accepted.recorder.events.at(-1)).toMatch(/^close/)
    }))

  it.live("a connection started late loses nothing: bytes and the end sent before start arrive after it", () =>
    Effect.gen(function* () {
      const server = yield* serve(transport, {}, echoHooks, { startLater: true })
      const client = yield* dial(transport, { port: server.port })
      const total = 64 * KiB
      writePattern(client.connection, total, 4 * KiB)
      client.connection.end()
      const accepted = yield* server.accepted
      yield* Effect.sleep("100 millis")
      expect(accepted.recorder.dataCalls + accepted.recorder.ends + accepted.recorder.closes).toBe(0)
      accepted.connection.start(accepted.recorder)
      yield* until("both closed", () => client.recorder.closes > 0 && accepted.recorder.closes > 0)
      expect(accepted.recorder.length).toBe(total)
      expect(patternMismatch(accepted.recorder.bytes())).toBe(-1)
      expect(accepted.recorder.events).toEqual(["end", "close"])
      expect(client.recorder.length).toBe(total)
      expect(client.recorder.events).toEqual(["end", "close"])
    }))

  it.live("a connection reset before start: nothing crashes, start reports onClose once", () =>
    Effect.gen(function* () {
      const server = yield* serve(transport, {}, echoHooks, { startLater: true })
      const client = yield* dial(transport, { port: server.port }, {}, { paused: true })
      const accepted = yield* server.accepted
      accepted.connection.write(fillPattern(new Uint8Array(1 * MiB), 0))
      yield* Effect.sleep("50 millis")
      client.connection.destroy() // with unread bytes: a reset
      yield* until("the client's onClose", () => client.recorder.closes > 0, 5_000)
      yield* Effect.sleep("100 millis")
      accepted.connection.start(accepted.recorder)
      yield* until("the server's onClose", () => accepted.recorder.closes > 0, 5_000)
      yield* settle
      expect(accepted.recorder.closes).toBe(1)
      expect(accepted.recorder.events.at(-1)).toMatch(/^close/)
    }))

  it.live("interrupting a connect returns at once", () =>
    Effect.gen(function* () {
      // A plain TCP server never answers a TLS client's hello: the connect stays in its handshake.
      const server = yield* serve(transport, {})
      const started = Date.now()
      const result = yield* transport.connect({ host: "127.0.0.1", port: server.port, tls: { ca: CA } }).pipe(
        Effect.timeout("100 millis"),
        Effect.result
      )
      expect(result._tag).toBe("Failure")
      expect(Date.now() - started).toBeLessThan(2_000)
    }))

  const abandonSkip = limitations.abandonedHandshake
  it.live.skipIf(abandonSkip !== undefined)(
    `interrupting a connect mid-handshake closes the abandoned socket${
      abandonSkip === undefined ? "" : ` (skipped: ${abandonSkip})`
    }`,
    () =>
      Effect.gen(function* () {
        const server = yield* serve(transport, {}, { end: (connection) => connection.end() })
        yield* transport.connect({ host: "127.0.0.1", port: server.port, tls: { ca: CA } }).pipe(
          Effect.timeout("100 millis"),
          Effect.result
        )
        const accepted = yield* server.accepted
        yield* until("the server's onClose", () => accepted.recorder.closes > 0, 5_000)
        expect(accepted.recorder.length).toBeGreaterThan(0) // the client's hello
      })
  )

  it.live.skipIf(abandonSkip !== undefined)(
    `a TLS client that never finishes its handshake is dropped after handshakeTimeout${
      abandonSkip === undefined ? "" : ` (skipped: ${abandonSkip})`
    }`,
    () =>
      Effect.gen(function* () {
        const accepted: Array<Connection> = []
        yield* transport.listen(
          { host: "127.0.0.1", port: 0, tls: { cert: CERT, key: KEY, handshakeTimeout: 300 } },
          (connection) => accepted.push(connection)
        ).pipe(
          Effect.flatMap((listener) =>
            Effect.gen(function* () {
              const port = listener.address._tag === "Tcp" ? listener.address.port : 0
              // A plain TCP client that connects and says nothing: no handshake ever starts.
              const silent = net.connect({ host: "127.0.0.1", port })
              silent.on("error", () => {})
              yield* Effect.addFinalizer(() => Effect.sync(() => silent.destroy()))
              let closed = false
              silent.on("close", () => (closed = true))
              yield* until("the silent client dropped", () => closed, 5_000)
              expect(accepted.length).toBe(0)
            })
          )
        )
      })
  )

  it.live("listening on a port in use fails with a listen TransportError", () =>
    Effect.gen(function* () {
      const server = yield* serve(transport, {})
      const error = yield* Effect.flip(transport.listen({ host: "127.0.0.1", port: server.port }, () => {}))
      expect(error).toBeInstanceOf(TransportError)
      expect(error.operation).toBe("listen")
      expect(error.address).toBe(`127.0.0.1:${server.port}`)
    }))

  it.live("connecting to a closed port fails with a connect TransportError", () =>
    Effect.gen(function* () {
      const port = yield* Effect.scoped(Effect.map(serve(transport, {}), (server) => server.port))
      const error = yield* Effect.flip(transport.connect({ host: "127.0.0.1", port }))
      expect(error).toBeInstanceOf(TransportError)
      expect(error.operation).toBe("connect")
      // Released: the port can be bound again.
      const again = yield* serve(transport, { port })
      expect(again.port).toBe(port)
    }))

  it.live("releasing the listener stops accepting without waiting for open connections, which keep working", () =>
    Effect.gen(function* () {
      const listening = yield* Scope.make()
      const server = yield* serve(transport, {}, echoHooks, { keepConnections: true }).pipe(Scope.provide(listening))
      const client = yield* dial(transport, { port: server.port })
      const accepted = yield* server.accepted
      yield* Effect.addFinalizer(() => Effect.sync(() => accepted.connection.destroy()))
      // Forked: a release that waits for the connections cannot be interrupted, only abandoned.
      const release = yield* Effect.forkDetach(Scope.close(listening, Exit.void))
      yield* Fiber.join(release).pipe(
        Effect.timeoutOrElse({
          duration: "3 seconds",
          orElse: () => Effect.fail(new Error("the listener's release hung"))
        }),
        Effect.orDie
      )
      const refused = yield* Effect.flip(transport.connect({ host: "127.0.0.1", port: server.port }))
      expect(refused.operation).toBe("connect")
      client.connection.write(encode("still here"))
      yield* until("the echo", () => client.recorder.length >= 10)
      expect(client.recorder.text()).toBe("still here")
      client.connection.end()
      yield* until("both closed", () => client.recorder.closes > 0 && accepted.recorder.closes > 0)
    }))

  describe("TLS (a test CA and a leaf it signed, test/certs)", () => {
    it.live("echo over TLS with the CA trusted, by IP and by server name", () =>
      Effect.gen(function* () {
        const server = yield* serve(transport, { tls: { cert: CERT, key: KEY } }, echoHooks)
        for (const tls of [{ ca: CA }, { ca: CA, serverName: "localhost" }]) {
          const client = yield* dial(transport, { port: server.port, tls })
          const total = 256 * KiB
          writePattern(client.connection, total, 16 * KiB)
          yield* until("the echo", () => client.recorder.length >= total)
          expect(client.recorder.length).toBe(total)
          expect(patternMismatch(client.recorder.bytes())).toBe(-1)
          client.connection.end()
          yield* until("the close", () => client.recorder.closes > 0)
          expect(client.recorder.events).toEqual(["end", "close"])
        }
      }))

    it.live("a client that does not trust the CA, or checks another name, fails to connect", () =>
      Effect.gen(function* () {
        const server = yield* serve(transport, { tls: { cert: CERT, key: KEY } }, echoHooks)
        for (const tls of [{}, { serverName: "localhost" }, { ca: CA, serverName: "example.com" }]) {
          const error = yield* Effect.flip(transport.connect({ host: "127.0.0.1", port: server.port, tls }))
          expect(error).toBeInstanceOf(TransportError)
          expect(["handshake", "connect"]).toContain(error.operation)
        }
        // The server survives failed handshakes.
        const client = yield* dial(transport, { port: server.port, tls: { ca: CA } })
        client.connection.write(encode("ok"))
        yield* until("the echo", () => client.recorder.length >= 2)
      }))
  })

  it.live("Unix socket: echo, Unix addresses on both sides, the path can be listened on again after release", () =>
    Effect.gen(function* () {
      const dir = yield* Effect.acquireRelease(
        Effect.sync(() => fs.mkdtempSync(nodePath.join(os.tmpdir(), "sluice-"))),
        (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
      )
      const path = nodePath.join(dir, "t.sock")
      for (const round of [1, 2]) {
        yield* Effect.scoped(Effect.gen(function* () {
          const server = yield* serve(transport, { path }, echoHooks)
          expect(server.address).toEqual({ _tag: "Unix", path })
          const client = yield* dial(transport, { path })
          const accepted = yield* server.accepted
          for (const side of [client.connection, accepted.connection]) {
            expect(side.remoteAddress._tag).toBe("Unix")
            expect(side.localAddress._tag).toBe("Unix")
          }
          client.connection.write(encode(`over unix ${round}`))
          client.connection.end()
          yield* until("both closed", () => client.recorder.closes > 0 && accepted.recorder.closes > 0)
          expect(client.recorder.text()).toBe(`over unix ${round}`)
          expect(client.recorder.events).toEqual(["end", "close"])
        }))
      }
      yield* Effect.log(`${transport.name}: socket file left after release: ${fs.existsSync(path)}`)
    }))
}

// --- Which transports run here ---------------------------------------------------------------------

const transports: ReadonlyArray<
  { readonly transport: Transport; readonly skip: string | undefined; readonly limitations?: Limitations }
> = [
  { transport: nodeTransport, skip: undefined },
  { transport: bunTransport, skip: runtime === "bun" ? undefined : `needs the Bun runtime, this is ${runtime}` },
  {
    transport: denoTransport,
    skip: runtime === "deno" ? undefined : `needs the Deno runtime, this is ${runtime}`,
    limitations: {
      // Checked on Deno 2.9.6: `close()` on a `Deno.TlsConn` (client or server side) whose handshake is
      // pending cancels the pending ops but keeps the TCP socket open until the handshake ends
      // (denoland/deno#14547 finishes the handshake before shutting down); no stable API closes it.
      abandonedHandshake: "Deno keeps a TLS socket open until its handshake ends, whatever close() is called"
    }
  }
]

for (const { limitations, skip, transport } of transports) {
  const name = `transport ${transport.name} on ${runtime}`
  if (skip === undefined) describe(name, () => conformance(transport, limitations))
  else describe.skip(`${name} (skipped: ${skip})`, () => conformance(transport, limitations))
}
