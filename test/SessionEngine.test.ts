import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Result } from "effect"
import { Bytes, Frame, Handler, Packet, Pipeline, Session } from "../src/index.ts"
import type { Connection, ConnectionHandler } from "../src/Transport.ts"

/** A connection in memory that records what the session asks of it. */
const fakeConnection = () => {
  const state = {
    pauses: 0,
    resumes: 0,
    written: [] as Array<Uint8Array>,
    handler: undefined as ConnectionHandler | undefined
  }
  const connection: Connection = {
    remoteAddress: { _tag: "Tcp", host: "127.0.0.1", port: 1 },
    localAddress: { _tag: "Tcp", host: "127.0.0.1", port: 2 },
    start: (handler) => {
      state.handler = handler
    },
    write: (bytes) => {
      state.written.push(bytes.slice())
      return true
    },
    queuedBytes: 0,
    pause: () => {
      state.pauses++
    },
    resume: () => {
      state.resumes++
    },
    end: () => state.handler?.onClose(undefined),
    destroy: () => state.handler?.onClose(undefined)
  }
  return { connection, state }
}

const framer = Frame.lengthField()
const frames = (...texts: Array<string>) => Bytes.concat(texts.map((t) => Frame.encode(framer, Bytes.fromString(t))))
const texts = (chunks: Array<Uint8Array>) => {
  const decoded = Frame.decodeAll(framer, chunks)
  return Result.isSuccess(decoded) ? decoded.success.map(Bytes.toString) : []
}

const runWith = (handler: Handler.Handler<string, string, never, never>) =>
  Effect.gen(function* () {
    const { connection, state } = fakeConnection()
    const fiber = yield* Effect.forkChild(
      Session.run(connection, { pipeline: Pipeline.make({ framer, codec: Packet.utf8, handler }) })
    )
    for (let i = 0; i < 100 && state.handler === undefined; i++) yield* Effect.yieldNow
    return { state, fiber }
  })

describe("Session read path", () => {
  it.live("an Effect.gen handler that does not suspend answers in the read callback, without pausing the socket", () =>
    Effect.gen(function* () {
      const { fiber, state } = yield* runWith(
        Handler.effect((text: string) =>
          Effect.gen(function* () {
            return text.toUpperCase()
          })
        )
      )
      state.handler!.onData(frames("a", "b"))
      // Written before onData returned: no fiber hop, no pause.
      expect(texts(state.written)).toEqual(["A", "B"])
      expect(state.pauses).toBe(0)
      state.handler!.onEnd()
      yield* Fiber.join(fiber)
    }))

  it.live("a handler that really suspends pauses reading once, and resumes it when it is done", () =>
    Effect.gen(function* () {
      const { fiber, state } = yield* runWith(
        Handler.effect((text: string) => Effect.as(Effect.sleep("5 millis"), text.toUpperCase()))
      )
      state.handler!.onData(frames("a", "b"))
      expect(state.written.length).toBe(0)
      expect(state.pauses).toBe(1)
      // Each reply goes out as soon as its handler is done, before the next one runs.
      for (let i = 0; i < 200 && texts(state.written).length < 2; i++) yield* Effect.sleep("5 millis")
      expect(texts(state.written)).toEqual(["A", "B"])
      expect(state.resumes).toBe(1)
      state.handler!.onEnd()
      yield* Fiber.join(fiber)
    }))
})

describe("Session write path: the water marks", () => {
  // A broken `onProgress` releases `sendWait` at any progress (at 80 bytes below), or not before the
  // queue is empty (the drain); a session without one cannot be called at all.
  it.live("sendWait returns when progress brings the queue to the low-water mark, before it is empty", () =>
    Effect.gen(function* () {
      const { connection, state } = fakeConnection()
      const queued = connection as { queuedBytes: number }
      const fiber = yield* Effect.forkChild(
        Session.run(connection, {
          pipeline: Pipeline.make({
            framer,
            codec: Packet.utf8,
            handler: Handler.effect((text: string, session: Session.Session<string, void>) =>
              Effect.as(session.sendWait(`${text} sent`), `${text} done`)
            )
          }),
          highWaterMark: 100,
          lowWaterMark: 50
        })
      )
      for (let i = 0; i < 100 && state.handler === undefined; i++) yield* Effect.yieldNow
      const handler = state.handler!
      // Over the high-water mark: the send is written, then the handler waits (in a fiber).
      queued.queuedBytes = 200
      handler.onData(frames("a"))
      const settle = Effect.gen(function* () {
        for (let i = 0; i < 20; i++) yield* Effect.sleep("1 millis")
      })
      yield* settle
      expect(texts(state.written)).toEqual(["a sent"])
      expect(state.pauses).toBe(1)
      // Progress, still above the low-water mark: it goes on waiting.
      queued.queuedBytes = 80
      handler.onProgress!()
      yield* settle
      expect(texts(state.written)).toEqual(["a sent"])
      // Progress to the low-water mark, with bytes still queued: it returns, its reply is written and
      // reading resumes, without waiting for the drain.
      queued.queuedBytes = 40
      handler.onProgress!()
      for (let i = 0; i < 200 && texts(state.written).length < 2; i++) yield* Effect.sleep("5 millis")
      expect(texts(state.written)).toEqual(["a sent", "a done"])
      expect(state.resumes).toBe(1)
      queued.queuedBytes = 0
      handler.onDrain()
      handler.onEnd()
      yield* Fiber.join(fiber)
    }))
})
