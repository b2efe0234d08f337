/**
 * The wire of `sluice/rpc`, checked from outside: raw node:net peers (test/util/peer.ts, and a raw
 * server here) write and read the bytes, and an independent MessagePack implementation
 * (@msgpack/msgpack, not msgpackr, which sluice uses) encodes and decodes them. The service is the
 * example's (examples/rpc), served in-process. Last, effect/rpc's own socket transports, given
 * `layerSerialization`, talk to sluice's protocols in the same bytes.
 */
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import * as NodeSocketServer from "@effect/platform-node/NodeSocketServer"
import { describe, expect, it } from "@effect/vitest"
import { decode, encode } from "@msgpack/msgpack"
import { Context, Effect, Fiber, Layer, Stream } from "effect"
import { RpcClient, RpcServer } from "effect/rpc"
import * as SocketServer from "effect/socket/SocketServer"
import * as net from "node:net"
import { Server } from "../src/index.ts"
import { layerCatchDefects, layerSerialization, makeProtocolClient } from "../src/rpc.ts"
import { Api, UserNotFound } from "../examples/rpc/api.ts"
import { calls } from "../examples/rpc/calls.ts"
import { handlers, layer } from "../examples/rpc/service.ts"
import { type Peer, peer } from "./util/peer.ts"

// --- frames, by hand ------------------------------------------------------------------------------

/** One message as a frame: a 4-byte big-endian length, then its MessagePack. */
const frame = (message: unknown): Uint8Array => {
  const body = encode(message)
  const bytes = new Uint8Array(4 + body.length)
  new DataView(bytes.buffer).setUint32(0, body.length)
  bytes.set(body, 4)
  return bytes
}

/** Splits bytes into frames: each one's length header must match what follows it. */
const frames = (bytes: Uint8Array): { readonly complete: Array<Uint8Array>; readonly rest: number } => {
  const complete: Array<Uint8Array> = []
  let offset = 0
  while (bytes.length - offset >= 4) {
    const length = new DataView(bytes.buffer, bytes.byteOffset + offset).getUint32(0)
    if (bytes.length - offset - 4 < length) break
    complete.push(bytes.subarray(offset + 4, offset + 4 + length))
    offset += 4 + length
  }
  return { complete, rest: bytes.length - offset }
}

/** Waits (at most 10 s) until `count` whole frames have arrived, and decodes them. */
const messages = (peer: { readonly received: () => Uint8Array; readonly waitFor: Peer["waitFor"] }, count: number) =>
  Effect.promise(async () => {
    for (let i = 0; i < 1000; i++) {
      const bytes = peer.received()
      const { complete } = frames(bytes)
      if (complete.length >= count) return complete.map((f) => decode(f))
      await peer.waitFor(bytes.length + 1)
    }
    throw new Error(`fewer than ${count} frames arrived`)
  })

/** The example's server in-process, on a free port. */
const exampleServer = Effect.map(Layer.build(layer({ port: 0 })), (context) => Context.get(context, Server.Server))

/** A raw TCP server that records what its one client sends, and lets the test answer. */
const rawServer = Effect.acquireRelease(
  Effect.promise(() =>
    new Promise<{ port: number; server: net.Server; client: Promise<Peer> }>((resolve) => {
      let accept!: (peer: Peer) => void
      const client = new Promise<Peer>((r) => (accept = r))
      const server = net.createServer((socket) => {
        const chunks: Array<Uint8Array> = []
        const waiters: Array<() => void> = []
        socket.on("data", (chunk: Uint8Array) => {
          chunks.push(new Uint8Array(chunk))
          for (const w of waiters.splice(0)) w()
        })
        socket.on("error", () => {})
        const received = () => {
          const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0))
          let o = 0
          for (const c of chunks) {
            all.set(c, o)
            o += c.length
          }
          return all
        }
        accept({
          socket,
          received,
          waitFor: (n, timeoutMs = 10_000) =>
            new Promise((res, rej) => {
              const deadline = setTimeout(() => rej(new Error(`timed out waiting for ${n} bytes`)), timeoutMs)
              const check = () => {
                if (received().length >= n) {
                  clearTimeout(deadline)
                  res(received())
                } else waiters.push(check)
              }
              check()
            }),
          closed: new Promise((r) => socket.once("close", (hadError) => r({ hadError }))),
          ended: new Promise((r) => socket.once("end", () => r())),
          write: (bytes) => socket.write(typeof bytes === "string" ? bytes : Buffer.from(bytes)),
          end: () => socket.end(),
          destroy: () => socket.destroy()
        })
      })
      server.listen(0, "127.0.0.1", () => resolve({ port: (server.address() as net.AddressInfo).port, server, client }))
    })
  ),
  ({ client, server }) =>
    Effect.promise(async () => {
      // A client still connected would keep `close` waiting: drop it first.
      void client.then((peer) => peer.destroy())
      await new Promise<void>((resolve) => server.close(() => resolve()))
    })
)

// --- tests ----------------------------------------------------------------------------------------

describe("sluice/rpc: the wire", () => {
  it.live("a request written by hand is answered with one length-prefixed MessagePack frame", () =>
    Effect.gen(function* () {
      const server = yield* exampleServer
      const client = yield* peer(server.port)
      client.write(frame({ _tag: "Request", id: 1, tag: "Greet", payload: { name: "raw" }, headers: [] }))
      const bytes = yield* Effect.promise(() => client.waitFor(5))
      const [answer] = yield* messages(client, 1)
      // The header counts exactly the bytes of the message after it: one frame, nothing else.
      expect(frames(client.received())).toMatchObject({ complete: [expect.anything()], rest: 0 })
      expect(new DataView(bytes.buffer, bytes.byteOffset).getUint32(0)).toBe(client.received().length - 4)
      expect(answer).toEqual({ _tag: "Exit", requestId: 1, exit: { _tag: "Success", value: "hello, raw" } })
    }))

  it.live("a declared error and a stream on the wire: the Exit's Fail, the Chunk, and the Ack that releases the rest", () =>
    Effect.gen(function* () {
      const server = yield* exampleServer
      const client = yield* peer(server.port)
      client.write(frame({ _tag: "Request", id: 2, tag: "GetUser", payload: { id: 9 }, headers: [] }))
      expect((yield* messages(client, 1))[0]).toEqual({
        _tag: "Exit",
        requestId: 2,
        exit: { _tag: "Failure", cause: [{ _tag: "Fail", error: { _tag: "UserNotFound", id: 9 } }] }
      })
      client.write(frame({ _tag: "Request", id: "s", tag: "Count", payload: { to: 3 }, headers: [] }))
      expect((yield* messages(client, 2))[1]).toEqual({ _tag: "Chunk", requestId: "s", values: [1, 2, 3] })
      // Until the chunk is acknowledged the server sends nothing more of that stream: a Ping written
      // now is answered first. (A server that did not wait for the Ack would have sent its Exit
      // right after the chunk, before this Pong.)
      client.write(frame({ _tag: "Ping" }))
      expect((yield* messages(client, 3))[2]).toEqual({ _tag: "Pong" })
      client.write(frame({ _tag: "Ack", requestId: "s" }))
      expect((yield* messages(client, 4))[3]).toEqual({
        _tag: "Exit",
        requestId: "s",
        exit: { _tag: "Success", value: null }
      })
    }))

  it.live("a request for a method the server does not have: that call's Exit is a defect naming it; the connection goes on", () =>
    Effect.gen(function* () {
      const server = yield* exampleServer
      const client = yield* peer(server.port)
      client.write(frame({ _tag: "Request", id: 7, tag: "Nope", payload: {}, headers: [] }))
      expect((yield* messages(client, 1))[0]).toEqual({
        _tag: "Exit",
        requestId: 7,
        exit: { _tag: "Failure", cause: [{ _tag: "Die", defect: "Unknown request tag: Nope" }] }
      })
      client.write(frame({ _tag: "Request", id: 8, tag: "Greet", payload: { name: "still here" }, headers: [] }))
      expect((yield* messages(client, 2))[1]).toMatchObject({ requestId: 8, exit: { value: "hello, still here" } })
    }))

  it.live("frames that are not effect/rpc messages are answered with a Defect that says why; the connection goes on", () =>
    Effect.gen(function* () {
      const server = yield* exampleServer
      const client = yield* peer(server.port)
      // A map of one entry, cut short.
      client.write(Uint8Array.of(0, 0, 0, 1, 0x81))
      client.write(frame(42))
      client.write(frame({ _tag: "Bogus" }))
      client.write(frame({ _tag: "Request", id: 1, tag: "Greet", payload: { name: "x" }, headers: { a: "b" } }))
      const [invalid, notAMap, unknownTag, badHeaders] = yield* messages(client, 4)
      expect(invalid).toMatchObject({ _tag: "Defect", defect: expect.stringMatching(/invalid MessagePack/) })
      expect(notAMap).toMatchObject({ _tag: "Defect", defect: expect.stringMatching(/a message must be a map/) })
      expect(unknownTag).toMatchObject({
        _tag: "Defect",
        defect: expect.stringMatching(/unknown message _tag "Bogus"/)
      })
      expect(badHeaders).toMatchObject({
        _tag: "Defect",
        defect: expect.stringMatching(/headers must be \[name, value\] pairs/)
      })
      // Headers may be left out (effect/rpc reads none then).
      client.write(frame({ _tag: "Request", id: 2, tag: "Greet", payload: { name: "ok" } }))
      expect((yield* messages(client, 5))[4]).toMatchObject({ requestId: 2, exit: { value: "hello, ok" } })
    }))

  it.live("a frame header over maxFrameLength closes that connection; the server serves the next one", () =>
    Effect.gen(function* () {
      const server = yield* exampleServer
      const bad = yield* peer(server.port)
      bad.write(Uint8Array.of(0xff, 0xff, 0xff, 0xff))
      const closed = yield* Effect.promise(() => bad.closed)
      expect(closed).toBeDefined()
      const good = yield* peer(server.port)
      good.write(frame({ _tag: "Request", id: 1, tag: "Greet", payload: { name: "next" }, headers: [] }))
      expect((yield* messages(good, 1))[0]).toMatchObject({ exit: { value: "hello, next" } })
    }))

  it.live("what the client sends: a Request map per call, and an answer written by hand resolves it", () =>
    Effect.gen(function* () {
      const raw = yield* rawServer
      const protocol = yield* makeProtocolClient({ port: raw.port, pingInterval: "1 hour" })
      const client = yield* RpcClient.make(Api).pipe(Effect.provideService(RpcClient.Protocol, protocol))
      const call = yield* Effect.forkChild(client.Greet({ name: "wire" }))
      const server = yield* Effect.promise(() => raw.client)
      const [request] = yield* messages(server, 1)
      expect(request).toMatchObject({ _tag: "Request", tag: "Greet", payload: { name: "wire" }, headers: [] })
      const id = (request as { id: unknown }).id
      expect(typeof id === "number" || typeof id === "string").toBe(true)
      server.write(frame({ _tag: "Exit", requestId: id, exit: { _tag: "Success", value: "written by hand" } }))
      expect(yield* Fiber.join(call)).toBe("written by hand")
      server.destroy()
    }))
})

describe("sluice/rpc: effect/rpc's own socket transports speak the same wire", () => {
  it.live("effect's socket client (NodeSocket) with layerSerialization calls a sluice server", () =>
    Effect.gen(function* () {
      const server = yield* exampleServer
      const result = yield* calls.pipe(
        Effect.provide(
          RpcClient.layerProtocolSocket().pipe(
            Layer.provide([NodeSocket.layerNet({ host: "127.0.0.1", port: server.port }), layerSerialization])
          )
        )
      )
      expect(result).toMatchObject({ greeting: "hello, sluice", user: "Ada", missing: "no user 404" })
      expect(result.counted).toEqual([1, 2, 3, 4, 5])
    }))

  it.live("a sluice client calls effect's socket server (NodeSocketServer) with layerSerialization", () =>
    Effect.gen(function* () {
      const context = yield* Layer.build(
        RpcServer.layer(Api).pipe(
          Layer.provide([handlers, layerCatchDefects]),
          Layer.provide(RpcServer.layerProtocolSocketServer),
          Layer.provide(layerSerialization),
          Layer.provideMerge(NodeSocketServer.layer({ host: "127.0.0.1", port: 0 }))
        )
      )
      const address = Context.get(context, SocketServer.SocketServer).address
      const port = address._tag === "UnixPathAddress" ? 0 : address.port
      const protocol = yield* makeProtocolClient({ port })
      const client = yield* RpcClient.make(Api).pipe(Effect.provideService(RpcClient.Protocol, protocol))
      expect(yield* client.Greet({ name: "effect" })).toBe("hello, effect")
      const error = yield* Effect.flip(client.GetUser({ id: 5 }))
      expect(error).toBeInstanceOf(UserNotFound)
      expect(Array.from(yield* Stream.runCollect(client.Count({ to: 4 })))).toEqual([1, 2, 3, 4])
    }))
})
