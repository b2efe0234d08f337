/**
 * `fromSocket` (`sluice/socket`): a sluice session over an Effect 4 `Socket` (`effect/socket/Socket`).
 *
 * - In memory: `Socket.fromTransformStream`, on every runtime.
 * - TCP: `@effect/platform-node`'s `NodeSocket.makeNet` connected to a plain node:net peer server the
 *   test starts on 127.0.0.1.
 * - WebSocket: the global `WebSocket` (`Socket.makeWebSocket` with `Socket.layerWebSocketConstructorGlobal`)
 *   connected to a real WebSocket server the test starts on 127.0.0.1: `Bun.serve` on Bun,
 *   `Deno.serve` + `Deno.upgradeWebSocket` on Deno, the `ws` package on Node.
 *
 * Every server a test starts is stopped with the test's scope; every wait is bounded.
 */
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer } from "effect"
import type * as Scope from "effect/Scope"
import * as Socket from "effect/socket/Socket"
import * as net from "node:net"
import { Bytes, Frame, Handler, Packet, Pipeline, Session, Transport } from "../src/index.ts"
import { TransportError } from "../src/Errors.ts"
import type { Connection, ConnectionHandler } from "../src/Transport.ts"
import { fromSocket } from "../src/transport/socket.ts"

// --- Helpers --------------------------------------------------------------------------------------

/** Waits for a promise, dying after `millis`, so that nothing hangs. */
const awaitPromise = <A>(what: string, promise: Promise<A>, millis = 10_000): Effect.Effect<A> =>
  Effect.promise(() => promise).pipe(
    Effect.timeoutOrElse({
      duration: millis,
      orElse: () => Effect.die(new Error(`timed out after ${millis} ms waiting for ${what}`))
    })
  )

/** Polls `condition` every 2 ms; dies after `millis`. */
const until = (what: string, condition: () => boolean, millis = 10_000): Effect.Effect<void> =>
  Effect.gen(function* () {
    const deadline = Date.now() + millis
    while (!condition()) {
      if (Date.now() > deadline) return yield* Effect.die(new Error(`timed out after ${millis} ms waiting for ${what}`))
      yield* Effect.sleep("2 millis")
    }
  })

/** Joins a session's fiber, dying if it has not ended after `millis`. */
const joinSession = <A, E>(fiber: Fiber.Fiber<A, E>, millis = 10_000): Effect.Effect<A, E> =>
  Fiber.join(fiber).pipe(
    Effect.timeoutOrElse({
      duration: millis,
      orElse: () => Effect.die(new Error(`the session did not end within ${millis} ms`))
    })
  )

/** What the adapter pulled from the socket's reader: batches, elements and bytes. */
interface PullStats {
  pulls: number
  items: number
  bytes: number
}

/** The same socket, counting what is pulled from its reader (what a consumer has taken in). */
const countingPulls = (socket: Socket.Socket, stats: PullStats): Socket.Socket =>
  Socket.make({
    reader: Effect.map(socket.reader, (reader) => ({
      ...reader,
      pull: Effect.map(reader.pull, (batch) => {
        stats.pulls++
        stats.items += batch.length
        for (const chunk of batch) stats.bytes += typeof chunk === "string" ? chunk.length : chunk.byteLength
        return batch
      })
    })),
    writer: socket.writer
  })

/** The same connection, counting the chunks it delivers to its handler (the session). */
const countingDeliveries = (inner: Connection, stats: { delivered: number }): Connection => ({
  get remoteAddress() {
    return inner.remoteAddress
  },
  get localAddress() {
    return inner.localAddress
  },
  get queuedBytes() {
    return inner.queuedBytes
  },
  start: (handler: ConnectionHandler) =>
    inner.start({
      onData: (chunk) => {
        stats.delivered++
        handler.onData(chunk)
      },
      onDrain: () => handler.onDrain(),
      onEnd: () => handler.onEnd(),
      onClose: (error) => handler.onClose(error)
    }),
  write: (bytes) => inner.write(bytes),
  pause: () => inner.pause(),
  resume: () => inner.resume(),
  end: () => inner.end(),
  destroy: () => inner.destroy()
})

const decoder = new TextDecoder()

// --- A plain node:net peer server -----------------------------------------------------------------

/** The server side of one TCP connection. */
interface TcpPeer {
  readonly socket: net.Socket
  /** Everything received so far, as text. */
  readonly text: () => string
  /** The client half-closed (FIN). */
  readonly ended: Promise<void>
  readonly closed: Promise<{ readonly hadError: boolean }>
}

interface TcpServer {
  readonly port: number
  /** The next accepted connection. */
  readonly accepted: Effect.Effect<TcpPeer>
}

/** A node:net server on 127.0.0.1 (half-open allowed: the test decides when the peer ends), stopped with the scope. */
const tcpServer: Effect.Effect<TcpServer, never, Scope.Scope> = Effect.gen(function* () {
  const peers: Array<TcpPeer> = []
  const waiting: Array<(peer: TcpPeer) => void> = []
  const sockets = new Set<net.Socket>()
  const server = yield* Effect.acquireRelease(
    Effect.promise(() =>
      new Promise<net.Server>((resolve, reject) => {
        const server = net.createServer({ allowHalfOpen: true }, (socket) => {
          sockets.add(socket)
          const chunks: Array<Uint8Array> = []
          let resolveEnded!: () => void
          const ended = new Promise<void>((r) => (resolveEnded = r))
          let resolveClosed!: (value: { readonly hadError: boolean }) => void
          const closed = new Promise<{ readonly hadError: boolean }>((r) => (resolveClosed = r))
          socket.on("data", (chunk: Uint8Array) => chunks.push(new Uint8Array(chunk)))
          socket.on("end", () => resolveEnded())
          socket.on("error", () => {})
          socket.on("close", (hadError) => {
            sockets.delete(socket)
            resolveClosed({ hadError })
          })
          const peer: TcpPeer = { socket, text: () => decoder.decode(Bytes.concat(chunks)), ended, closed }
          const waiter = waiting.shift()
          if (waiter !== undefined) waiter(peer)
          else peers.push(peer)
        })
        server.once("error", reject)
        server.listen(0, "127.0.0.1", () => resolve(server))
      })
    ),
    (server) =>
      Effect.promise(() =>
        new Promise<void>((resolve) => {
          for (const socket of sockets) socket.destroy()
          server.close(() => resolve())
        })
      )
  )
  return {
    port: (server.address() as net.AddressInfo).port,
    accepted: Effect.suspend(() => {
      const peer = peers.shift()
      return peer !== undefined
        ? Effect.succeed(peer)
        : awaitPromise("a TCP connection", new Promise<TcpPeer>((resolve) => waiting.push(resolve)))
    })
  }
})

// --- A WebSocket server, each runtime's own -------------------------------------------------------

/** The server side of one WebSocket connection. */
interface WsPeer {
  readonly send: (data: string | Uint8Array) => void
  readonly close: (code: number, reason?: string) => void
  /** Every message received, in order, as text (binary messages decoded as UTF-8). */
  readonly messages: Array<string>
  /** Whether each message was binary. */
  readonly binary: Array<boolean>
  /** The close code the client sent (or the one the server closed with). */
  readonly closed: Promise<number>
}

interface WsServer {
  readonly port: number
  readonly accepted: Effect.Effect<WsPeer>
}

interface WsBackend {
  readonly port: number
  readonly stop: () => Promise<void>
}

/** A peer's event sinks, filled by a runtime's server. */
const makePeer = (send: WsPeer["send"], close: WsPeer["close"]) => {
  let resolveClosed!: (code: number) => void
  const peer: WsPeer = {
    send,
    close,
    messages: [],
    binary: [],
    closed: new Promise<number>((r) => (resolveClosed = r))
  }
  return {
    peer,
    message: (data: string | ArrayBuffer | Uint8Array) => {
      peer.messages.push(typeof data === "string" ? data : decoder.decode(data))
      peer.binary.push(typeof data !== "string")
    },
    closed: (code: number) => resolveClosed(code)
  }
}

type Sinks = ReturnType<typeof makePeer>

/** The `ws` package on Node. */
const nodeWsServer = async (onPeer: (sinks: Sinks) => void): Promise<WsBackend> => {
  const { WebSocketServer } = await import("ws")
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 })
  await new Promise<void>((resolve, reject) => {
    wss.once("listening", () => resolve())
    wss.once("error", reject)
  })
  wss.on("connection", (ws) => {
    const sinks = makePeer((data) => ws.send(data), (code, reason) => ws.close(code, reason))
    ws.on("message", (data, isBinary) => {
      const bytes = Array.isArray(data) ? Bytes.concat(data) : new Uint8Array(data as ArrayBuffer)
      sinks.message(isBinary ? bytes : decoder.decode(bytes))
    })
    ws.on("close", (code) => sinks.closed(code))
    ws.on("error", () => {})
    onPeer(sinks)
  })
  return {
    port: (wss.address() as net.AddressInfo).port,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate()
        wss.close(() => resolve())
      })
  }
}

/** `Bun.serve` with a `websocket` handler on Bun. */
const bunWsServer = (onPeer: (sinks: Sinks) => void): Promise<WsBackend> => {
  const server = Bun.serve<{ sinks?: Sinks }>({
    hostname: "127.0.0.1",
    port: 0,
    fetch: (request, server) =>
      server.upgrade(request, { data: {} }) ? undefined : new Response("WebSocket only", { status: 400 }),
    websocket: {
      open: (ws) => {
        const sinks = makePeer((data) => ws.send(data), (code, reason) => ws.close(code, reason))
        ws.data.sinks = sinks
        onPeer(sinks)
      },
      message: (ws, message) => ws.data.sinks?.message(message),
      close: (ws, code) => ws.data.sinks?.closed(code)
    }
  })
  return Promise.resolve({ port: server.port!, stop: () => server.stop(true) })
}

/** `Deno.serve` and `Deno.upgradeWebSocket` on Deno. */
const denoWsServer = (onPeer: (sinks: Sinks) => void): Promise<WsBackend> => {
  const sockets = new Set<WebSocket>()
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
    const { response, socket } = Deno.upgradeWebSocket(request)
    socket.binaryType = "arraybuffer"
    sockets.add(socket)
    const sinks = makePeer(
      (data) => socket.send(data as Uint8Array<ArrayBuffer>),
      (code, reason) => socket.close(code, reason)
    )
    socket.onopen = () => onPeer(sinks)
    socket.onmessage = (event) => sinks.message(event.data as string | ArrayBuffer)
    socket.onclose = (event) => {
      sockets.delete(socket)
      sinks.closed(event.code)
    }
    socket.onerror = () => {}
    return response
  })
  return Promise.resolve({
    port: server.addr.port,
    stop: async () => {
      for (const socket of sockets) socket.close(1001)
      await server.shutdown()
    }
  })
}

/** A WebSocket server on 127.0.0.1, stopped with the scope. */
const wsServer: Effect.Effect<WsServer, never, Scope.Scope> = Effect.gen(function* () {
  const peers: Array<WsPeer> = []
  const waiting: Array<(peer: WsPeer) => void> = []
  const onPeer = ({ peer }: Sinks) => {
    const waiter = waiting.shift()
    if (waiter !== undefined) waiter(peer)
    else peers.push(peer)
  }
  const backend = yield* Effect.acquireRelease(
    Effect.promise(() =>
      Transport.runtime === "bun"
        ? bunWsServer(onPeer)
        : Transport.runtime === "deno"
        ? denoWsServer(onPeer)
        : nodeWsServer(onPeer)
    ),
    (backend) => awaitPromise("the WebSocket server to stop", backend.stop()).pipe(Effect.ignore)
  )
  return {
    port: backend.port,
    accepted: Effect.suspend(() => {
      const peer = peers.shift()
      return peer !== undefined
        ? Effect.succeed(peer)
        : awaitPromise("a WebSocket connection", new Promise<WsPeer>((resolve) => waiting.push(resolve)))
    })
  }
})

/** The global WebSocket's constructor, also counting the messages every socket it makes receives. */
const countingWebSocketConstructor = (arrived: { messages: number }): Layer.Layer<Socket.WebSocketConstructor> =>
  Layer.effect(
    Socket.WebSocketConstructor,
    Effect.gen(function* () {
      const make = yield* Socket.WebSocketConstructor
      return (url: string, options?: Socket.WebSocketConstructorOptions) => {
        const ws = make(url, options)
        ws.addEventListener("message", () => arrived.messages++)
        return ws
      }
    })
  ).pipe(Layer.provide(Socket.layerWebSocketConstructorGlobal))

// --- The tests ------------------------------------------------------------------------------------

describe("fromSocket", () => {
  it.live("runs a session over an in-memory Socket (fromTransformStream), one message per frame", () =>
    Effect.gen(function* () {
      // An in-memory duplex: what the peer writes to `toServer` the session reads, and back.
      const toServer = new TransformStream<Uint8Array, Uint8Array>()
      const toPeer = new TransformStream<Uint8Array, Uint8Array>()
      const socket = yield* Socket.fromTransformStream(
        Effect.succeed({ readable: toServer.readable, writable: toPeer.writable })
      )
      const connection = yield* fromSocket(socket)
      const closes: Array<string> = []
      const fiber = yield* Effect.forkChild(Session.run(connection, {
        pipeline: Pipeline.make({
          framer: Frame.datagram(),
          codec: Packet.utf8,
          handler: Handler.syncMany((text: string) => [text.toUpperCase(), `${text.length}`])
        }),
        onClose: (_, reason) => Effect.sync(() => closes.push(reason._tag))
      }))
      const writer = toServer.writable.getWriter()
      const reader = toPeer.readable.getReader()
      yield* awaitPromise("the write", writer.write(Bytes.fromString("hello")))
      const replies: Array<string> = []
      for (let i = 0; i < 2; i++) {
        const { value } = yield* awaitPromise("a reply", reader.read())
        replies.push(Bytes.toString(value!))
      }
      // Two replies to one message stay two messages: a message-oriented framer is never coalesced.
      expect(replies).toEqual(["HELLO", "5"])
      yield* awaitPromise("the close", writer.close())
      const reason = yield* joinSession(fiber)
      expect(reason._tag).toBe("PeerClosed")
      expect(closes).toEqual(["PeerClosed"])
      // The session's end released the writer: the peer's side of the stream is closed too.
      const last = yield* awaitPromise("the end of the replies", reader.read())
      expect(last.done).toBe(true)
    }))

  // NodeSocket is node:net in paused mode (`readable` events, `read()`): it works on Node 24 and through
  // the node:net layers of Bun 1.4.5 and Deno 2.9.6 (it has a Deno special case), so it runs everywhere.
  describe("over TCP: @effect/platform-node's NodeSocket.makeNet and a node:net peer", () => {
    const lines = Pipeline.make({
      framer: Frame.lines({ maxLength: 100 }),
      codec: Packet.utf8,
      handler: Handler.sync((line: string) => line.toUpperCase())
    })

    it.live("round-trips lines; the peer's FIN ends the session as PeerClosed and the session half-closes back", () =>
      Effect.gen(function* () {
        const server = yield* tcpServer
        const socket = yield* NodeSocket.makeNet({ host: "127.0.0.1", port: server.port })
        const connection = yield* fromSocket(socket, {
          remoteAddress: { _tag: "Tcp", host: "127.0.0.1", port: server.port }
        })
        expect(connection.remoteAddress).toEqual({ _tag: "Tcp", host: "127.0.0.1", port: server.port })
        const closes: Array<string> = []
        const fiber = yield* Effect.forkChild(Session.run(connection, {
          pipeline: lines,
          onClose: (_, reason) => Effect.sync(() => closes.push(reason._tag))
        }))
        const peer = yield* server.accepted
        // Split inside a line: the framer joins the reads.
        peer.socket.write("hello\nsluice ov")
        yield* Effect.sleep("20 millis")
        peer.socket.write("er tcp\n")
        yield* until("the replies", () => peer.text().length >= "HELLO\nSLUICE OVER TCP\n".length)
        expect(peer.text()).toBe("HELLO\nSLUICE OVER TCP\n")
        expect(fiber.pollUnsafe()).toBeUndefined()
        // A clean end of the input: a FIN.
        peer.socket.end()
        const reason = yield* joinSession(fiber)
        expect(reason).toEqual({ _tag: "PeerClosed" })
        expect(closes).toEqual(["PeerClosed"])
        // The session released the writer, which half-closes the socket: the peer reads its FIN.
        yield* awaitPromise("the client's FIN", peer.ended)
        const closed = yield* awaitPromise("the peer's close", peer.closed)
        expect(closed.hadError).toBe(false)
      }))

    it.live("a reset by the peer ends the session as Failed with a read TransportError", () =>
      Effect.gen(function* () {
        const server = yield* tcpServer
        const socket = yield* NodeSocket.makeNet({ host: "127.0.0.1", port: server.port })
        const connection = yield* fromSocket(socket)
        const fiber = yield* Effect.forkChild(Session.run(connection, { pipeline: lines }))
        const peer = yield* server.accepted
        peer.socket.write("one\n")
        yield* until("the reply", () => peer.text() === "ONE\n")
        peer.socket.resetAndDestroy()
        const reason = yield* joinSession(fiber)
        expect(reason._tag).toBe("Failed")
        const error = reason._tag === "Failed" ? reason.error : undefined
        expect(error).toBeInstanceOf(TransportError)
        expect((error as TransportError).operation).toBe("read")
      }))

    it.live("a suspended handler stops the pulls: the peer's bytes wait in the kernel, not in an array", () =>
      Effect.gen(function* () {
        const server = yield* tcpServer
        const pulled: PullStats = { pulls: 0, items: 0, bytes: 0 }
        const delivered = { delivered: 0 }
        const socket = countingPulls(yield* NodeSocket.makeNet({ host: "127.0.0.1", port: server.port }), pulled)
        const connection = countingDeliveries(yield* fromSocket(socket), delivered)
        const entered = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        const handled: Array<number> = []
        const fiber = yield* Effect.forkChild(Session.run(connection, {
          pipeline: Pipeline.make({
            framer: Frame.lines({ maxLength: 2048 }),
            codec: Packet.utf8,
            handler: Handler.effect((line: string) => {
              const n = Number(line.slice(0, 8))
              handled.push(n)
              // The first message blocks until the test releases it: the session pauses reading.
              return n === 0
                ? Deferred.succeed(entered, undefined).pipe(Effect.andThen(Deferred.await(release)), Effect.as(`${n}`))
                : Effect.succeed(`${n}`)
            })
          })
        }))
        const peer = yield* server.accepted
        // 1 KiB lines: at least 4 MiB, and on until node:net has to queue 1 MiB that the kernel would not
        // take (bounded: 64 MiB). The client reads in this same process, so nothing is read meanwhile.
        const line = new Uint8Array(1024).fill(0x2e)
        line[1023] = 0x0a
        let count = 0
        while ((count < 4096 || peer.socket.writableLength < 1024 * 1024) && count < 64 * 1024) {
          line.set(Bytes.fromString(String(count).padStart(8, "0")))
          peer.socket.write(line.slice())
          count++
        }
        const total = count * 1024
        yield* Deferred.await(entered).pipe(
          Effect.timeoutOrElse({ duration: "10 seconds", orElse: () => Effect.die(new Error("the handler never ran")) })
        )
        const atBlock = { ...pulled }
        // While the handler is blocked, nothing more is pulled, let alone delivered.
        yield* Effect.sleep("300 millis")
        yield* Effect.log(
          `TCP: ${count} lines (${total} bytes) sent; pulled while blocked: ${pulled.pulls} batches, ` +
            `${pulled.items} chunks, ${pulled.bytes} bytes; peer still queues ${peer.socket.writableLength} bytes`
        )
        expect(handled).toEqual([0])
        expect(pulled).toEqual(atBlock)
        // The first message came in the first batch: one batch was taken, and only its first chunk delivered.
        expect(pulled.pulls).toBe(1)
        expect(delivered.delivered).toBe(1)
        expect(pulled.bytes).toBeLessThan(total / 4)
        // The socket's backpressure reached the peer: what the kernel would not take is still queued there.
        // (Only Node's node:net tells: Bun's and Deno's hand writes to their native sockets and report 0.)
        if (Transport.runtime === "node") expect(peer.socket.writableLength).toBeGreaterThan(0)
        yield* Deferred.succeed(release, undefined)
        const expected = Array.from({ length: count }, (_, i) => `${i}\n`).join("")
        yield* until("every reply", () => peer.text().length >= expected.length, 20_000)
        expect(peer.text()).toBe(expected)
        expect(handled.length).toBe(count)
        expect(pulled.bytes).toBe(total)
        peer.socket.end()
        expect((yield* joinSession(fiber))._tag).toBe("PeerClosed")
      }))
  })

  describe(`over a WebSocket: the global WebSocket and a ${Transport.runtime} WebSocket server`, () => {
    const upper = Pipeline.make({
      framer: Frame.datagram(),
      codec: Packet.utf8,
      handler: Handler.syncMany((text: string) => [text.toUpperCase(), `${text.length}`])
    })

    it.live("round-trips messages, one WebSocket message per frame; a close with 1000 is PeerClosed", () =>
      Effect.gen(function* () {
        const server = yield* wsServer
        const socket = yield* Socket.makeWebSocket(`ws://127.0.0.1:${server.port}`)
        const connection = yield* fromSocket(socket, { halfClose: false })
        const closes: Array<string> = []
        const fiber = yield* Effect.forkChild(Session.run(connection, {
          pipeline: upper,
          onClose: (_, reason) => Effect.sync(() => closes.push(reason._tag))
        }))
        const peer = yield* server.accepted
        peer.send("hello")
        peer.send(Bytes.fromString("sluice"))
        peer.send("ws")
        yield* until("the replies", () => peer.messages.length >= 6)
        // Each frame is its own message, never coalesced with the next: two replies per message, in order.
        expect(peer.messages).toEqual(["HELLO", "5", "SLUICE", "6", "WS", "2"])
        expect(peer.binary).toEqual(Array(6).fill(true))
        expect(fiber.pollUnsafe()).toBeUndefined()
        // A clean close by the server.
        peer.close(1000, "done")
        const reason = yield* joinSession(fiber)
        expect(reason).toEqual({ _tag: "PeerClosed" })
        expect(closes).toEqual(["PeerClosed"])
        expect(yield* awaitPromise("the close handshake", peer.closed)).toBe(1000)
      }).pipe(Effect.provide(Socket.layerWebSocketConstructorGlobal)))

    it.live("a close with another code than 1000 ends the session as Failed with a TransportError", () =>
      Effect.gen(function* () {
        const server = yield* wsServer
        const socket = yield* Socket.makeWebSocket(`ws://127.0.0.1:${server.port}`)
        const connection = yield* fromSocket(socket, { halfClose: false })
        const fiber = yield* Effect.forkChild(Session.run(connection, { pipeline: upper }))
        const peer = yield* server.accepted
        peer.send("x")
        yield* until("the replies", () => peer.messages.length >= 2)
        peer.close(4000, "going away")
        const reason = yield* joinSession(fiber)
        expect(reason._tag).toBe("Failed")
        const error = reason._tag === "Failed" ? reason.error : undefined
        expect(error).toBeInstanceOf(TransportError)
        expect((error as TransportError).operation).toBe("read")
      }).pipe(Effect.provide(Socket.layerWebSocketConstructorGlobal)))

    it.live("closing the session sends a close frame with code 1000 after its replies", () =>
      Effect.gen(function* () {
        const server = yield* wsServer
        const socket = yield* Socket.makeWebSocket(`ws://127.0.0.1:${server.port}`)
        const connection = yield* fromSocket(socket, { halfClose: false })
        const opened = yield* Deferred.make<Session.Session<string, void>>()
        const closes: Array<string> = []
        const fiber = yield* Effect.forkChild(Session.run(connection, {
          pipeline: upper,
          onOpen: (session) => Deferred.succeed(opened, session),
          onClose: (_, reason) => Effect.sync(() => closes.push(reason._tag))
        }))
        const peer = yield* server.accepted
        const session = yield* Deferred.await(opened)
        peer.send("a")
        peer.send("bc")
        yield* until("the replies", () => peer.messages.length >= 4)
        yield* session.close
        expect(yield* joinSession(fiber)).toEqual({ _tag: "Closed" })
        expect(closes).toEqual(["Closed"])
        // A WebSocket cannot half-close: `end` (halfClose: false) sends a close frame with code 1000.
        expect(yield* awaitPromise("the client's close frame", peer.closed)).toBe(1000)
        expect(peer.messages).toEqual(["A", "1", "BC", "2"])
      }).pipe(Effect.provide(Socket.layerWebSocketConstructorGlobal)))

    it.live("messages pushed with session.send are one WebSocket message each", () =>
      Effect.gen(function* () {
        const server = yield* wsServer
        const socket = yield* Socket.makeWebSocket(`ws://127.0.0.1:${server.port}`)
        const connection = yield* fromSocket(socket, { halfClose: false })
        const opened = yield* Deferred.make<Session.Session<string, void>>()
        const fiber = yield* Effect.forkChild(Session.run(connection, {
          pipeline: upper,
          onOpen: (session) => Deferred.succeed(opened, session)
        }))
        const peer = yield* server.accepted
        const session = yield* Deferred.await(opened)
        // A first request answered: the session's pipeline runs.
        peer.send("a")
        yield* until("the replies", () => peer.messages.length >= 2)
        yield* session.send("one")
        yield* session.send("two")
        yield* session.send("three")
        yield* until("the pushed messages", () => peer.messages.join("").length >= "A1onetwothree".length)
        // `Frame.datagram` is message-oriented: a frame is never coalesced with the next.
        expect(peer.messages).toEqual(["A", "1", "one", "two", "three"])
        peer.close(1000)
        expect((yield* joinSession(fiber))._tag).toBe("PeerClosed")
      }).pipe(Effect.provide(Socket.layerWebSocketConstructorGlobal)))

    it.live("a suspended handler stops the pulls: arrived messages are not taken from the socket until resumed", () => {
      const arrived = { messages: 0 }
      return Effect.gen(function* () {
        const server = yield* wsServer
        const pulled: PullStats = { pulls: 0, items: 0, bytes: 0 }
        const delivered = { delivered: 0 }
        const socket = countingPulls(yield* Socket.makeWebSocket(`ws://127.0.0.1:${server.port}`), pulled)
        const connection = countingDeliveries(yield* fromSocket(socket, { halfClose: false }), delivered)
        const entered = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        const handled: Array<string> = []
        const fiber = yield* Effect.forkChild(Session.run(connection, {
          pipeline: Pipeline.make({
            framer: Frame.datagram(),
            codec: Packet.utf8,
            handler: Handler.effect((text: string) => {
              handled.push(text)
              return text === "0"
                ? Deferred.succeed(entered, undefined).pipe(Effect.andThen(Deferred.await(release)), Effect.as(text))
                : Effect.succeed(text)
            })
          })
        }))
        const peer = yield* server.accepted
        peer.send("0")
        yield* Deferred.await(entered).pipe(
          Effect.timeoutOrElse({ duration: "10 seconds", orElse: () => Effect.die(new Error("the handler never ran")) })
        )
        // The session is paused on message 0. The peer sends 1000 more, which all reach the client's WebSocket.
        const count = 1000
        for (let i = 1; i <= count; i++) peer.send(`${i}`)
        yield* until("every message at the client's WebSocket", () => arrived.messages === count + 1)
        yield* Effect.sleep("100 millis")
        // Nothing was pulled from the socket since message 0: a batch of one message, delivered alone.
        expect(pulled).toEqual({ pulls: 1, items: 1, bytes: 1 })
        expect(delivered.delivered).toBe(1)
        expect(handled).toEqual(["0"])
        expect(peer.messages).toEqual([])
        yield* Deferred.succeed(release, undefined)
        yield* until("every reply", () => peer.messages.length >= count + 1)
        const expected = Array.from({ length: count + 1 }, (_, i) => `${i}`)
        expect(peer.messages).toEqual(expected)
        expect(handled).toEqual(expected)
        expect(pulled.items).toBe(count + 1)
        peer.close(1000)
        expect((yield* joinSession(fiber))._tag).toBe("PeerClosed")
      }).pipe(Effect.provide(countingWebSocketConstructor(arrived)))
    })
  })
})
