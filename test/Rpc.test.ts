/**
 * effect/rpc over sluice (`sluice/rpc`): a service declared with `RpcGroup`, served by effect's own
 * `RpcServer` over `layerProtocolServer` and called with effect's own `RpcClient` over
 * `makeProtocolClient`, on real sockets on 127.0.0.1, with the runtime's own transport (Bun.listen,
 * Deno.listen or node:net). The handlers report what happens on the server side (started, finished,
 * interrupted, produced) through a probe, so that nothing here depends on timing.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Context, Deferred, Effect, Exit, Fiber, Layer, Queue, Schedule, Schema, Stream } from "effect"
import { Rpc, RpcClient, RpcClientError, RpcGroup, RpcServer } from "effect/rpc"
import { encode } from "@msgpack/msgpack"
import { Errors, Frame, Server } from "../src/index.ts"
import {
  CatchDefects,
  type ClientOptions,
  layerCatchDefects,
  layerProtocolServer,
  makeProtocolClient,
  RpcDefect
} from "../src/rpc.ts"
import { peer } from "./util/peer.ts"

// --- the service under test -------------------------------------------------------------------------

class NotFound extends Schema.TaggedError<NotFound>()("NotFound", { id: Schema.Int }) {}

class TestApi extends RpcGroup.make(
  /**
   * Call `n` of `of` answers only once every call has arrived, and call `n + 1`'s answer has reached
   * the client: the answers cross the connection in reverse order.
   */
  Rpc.make("Reversed", { payload: { n: Schema.Int, of: Schema.Int }, success: Schema.String }),
  Rpc.make("Find", { payload: { id: Schema.Int }, success: Schema.String, error: NotFound }),
  Rpc.make("Crash", { payload: { reason: Schema.String }, success: Schema.String }),
  /** Never answers: reports when it started and when it was interrupted. */
  Rpc.make("Hang", { payload: { key: Schema.String }, success: Schema.Void }),
  Rpc.make("Numbers", { payload: { to: Schema.Int }, success: Schema.Int, stream: true })
).middleware(CatchDefects) {}

/** What the handlers tell the test. */
class Probe {
  arrived = 0
  readonly finished: Array<number> = []
  produced = 0
  producerStopped = false
  private readonly deferreds = new Map<string, Deferred.Deferred<void>>()
  /** A signal by name, made on first use by either side. */
  signal(name: string): Deferred.Deferred<void> {
    let deferred = this.deferreds.get(name)
    if (deferred === undefined) {
      deferred = Deferred.makeUnsafe<void>()
      this.deferreds.set(name, deferred)
    }
    return deferred
  }
  open(name: string): Effect.Effect<void> {
    return Effect.asVoid(Deferred.succeed(this.signal(name), undefined))
  }
  /** Waits for a signal, failing the test after 10 s. */
  await(name: string): Effect.Effect<void> {
    return Deferred.await(this.signal(name)).pipe(
      Effect.timeoutOrElse({
        duration: "10 seconds",
        orElse: () => Effect.die(new Error(`timed out after 10 s waiting for ${name}`))
      })
    )
  }
}

const handlers = (probe: Probe) =>
  TestApi.toLayer({
    Reversed: ({ n, of }) =>
      Effect.gen(function* () {
        if (++probe.arrived === of) yield* probe.open("all arrived")
        yield* probe.await(n === of - 1 ? "all arrived" : `received ${n + 1}`)
        probe.finished.push(n)
        return `answer to ${n}`
      }),
    Find: ({ id }) => id === 1 ? Effect.succeed("found 1") : Effect.fail(new NotFound({ id })),
    Crash: ({ reason }) => Effect.sync(() => JSON.parse(reason) as string),
    Hang: ({ key }) =>
      probe.open(`started ${key}`).pipe(
        Effect.andThen(Effect.never),
        Effect.onInterrupt(() => probe.open(`interrupted ${key}`))
      ),
    Numbers: ({ to }) =>
      // One element per pull, counted as the server produces it.
      Stream.range(1, to, 1).pipe(
        Stream.tap(() => Effect.sync(() => probe.produced++)),
        Stream.ensuring(Effect.sync(() => (probe.producerStopped = true)))
      )
  })

/** The server (port 0) and a client over one sluice connection to it, for the test's scope. */
const setup = (probe: Probe, clientOptions?: Omit<ClientOptions, "port">) =>
  Effect.gen(function* () {
    const context = yield* Layer.build(
      RpcServer.layer(TestApi).pipe(
        Layer.provide([handlers(probe), layerCatchDefects]),
        Layer.provideMerge(layerProtocolServer({ port: 0 }))
      )
    )
    const server = Context.get(context, Server.Server)
    const protocol = yield* makeProtocolClient({ ...clientOptions, port: server.port })
    const client = yield* RpcClient.make(TestApi).pipe(Effect.provideService(RpcClient.Protocol, protocol))
    return { server, client }
  })

const range = (n: number): Array<number> => Array.from({ length: n }, (_, i) => i)

/** The cause of an `RpcClientError` whose reason is a socket error: sluice's error that says why. */
const causeOf = (error: unknown): unknown =>
  error instanceof RpcClientError.RpcClientError && "cause" in error.reason ? error.reason.cause : undefined

/** Polls `read` every 20 ms until it has not changed for 5 polls in a row (at most 10 s): the producer has stalled. */
const settled = (read: () => number): Effect.Effect<number> =>
  Effect.gen(function* () {
    let last = read()
    let same = 0
    for (let i = 0; i < 500 && same < 5; i++) {
      yield* Effect.sleep("20 millis")
      const now = read()
      same = now === last ? same + 1 : 0
      last = now
    }
    return last
  })

// --- tests ----------------------------------------------------------------------------------------

describe("sluice/rpc: effect/rpc services over sluice", () => {
  it.live("50 calls in flight over one connection, answered in reverse order: each gets its own answer", () =>
    Effect.gen(function* () {
      const probe = new Probe()
      const { server, client } = yield* setup(probe)
      const arrivals: Array<number> = []
      const answers = yield* Effect.forEach(
        range(50),
        (n) =>
          Effect.tap(
            client.Reversed({ n, of: 50 }),
            () => Effect.andThen(Effect.sync(() => arrivals.push(n)), probe.open(`received ${n}`))
          ),
        { concurrency: "unbounded" }
      )
      // A client that matched answers to calls in the order it sent them (FIFO) would hand call 0 the
      // answer to call 49: every call must get the answer to itself.
      expect(answers).toEqual(range(50).map((n) => `answer to ${n}`))
      // Every call was in flight at once (none could finish before all had arrived), they finished
      // last first, and their answers arrived last first.
      expect(probe.finished).toEqual(range(50).reverse())
      expect(arrivals).toEqual(range(50).reverse())
      // All over the one connection.
      expect(server.accepted).toBe(1)
    }))

  it.live("a declared error arrives typed, and Effect.catchTag catches it", () =>
    Effect.gen(function* () {
      const { client } = yield* setup(new Probe())
      // A protocol that lost the error's encoding on the way would give a defect, or a plain object
      // that is no NotFound and that catchTag does not catch.
      const error = yield* Effect.flip(client.Find({ id: 404 }))
      expect(error).toBeInstanceOf(NotFound)
      expect(error).toMatchObject({ _tag: "NotFound", id: 404 })
      const recovered = yield* client.Find({ id: 7 }).pipe(
        Effect.catchTag("NotFound", (e) => Effect.succeed(`no ${e.id}`))
      )
      expect(recovered).toBe("no 7")
      expect(yield* client.Find({ id: 1 })).toBe("found 1")
    }))

  it.live("a handler's defect answers that call with a typed RpcDefect; the other calls on the connection go on", () =>
    Effect.gen(function* () {
      const probe = new Probe()
      const { server, client } = yield* setup(probe)
      // A call in flight while another dies: effect/rpc's default (a fatal defect) would fail it too.
      const waiting = yield* Effect.forkChild(client.Hang({ key: "bystander" }))
      yield* probe.await("started bystander")
      const error = yield* Effect.flip(client.Crash({ reason: "not json" }))
      expect(error).toBeInstanceOf(RpcDefect)
      expect(error).toMatchObject({ _tag: "RpcDefect", method: "Crash" })
      expect(error.message).toMatch(/SyntaxError/)
      const caught = yield* client.Crash({ reason: "{" }).pipe(
        Effect.catchTag("RpcDefect", (e) => Effect.succeed(`caught ${e.method}`))
      )
      expect(caught).toBe("caught Crash")
      // The same connection answers the next call, and the call in flight is still running.
      expect(yield* client.Crash({ reason: JSON.stringify("fine") })).toBe("fine")
      expect(waiting.pollUnsafe()).toBeUndefined()
      expect(server.accepted).toBe(1)
      yield* Fiber.interrupt(waiting)
    }))

  it.live("a method the server does not have is answered for that call alone, naming it", () =>
    Effect.gen(function* () {
      const { server } = yield* setup(new Probe())
      // A client whose group has one method more than the server's (an older server, say).
      class Newer extends RpcGroup.make(
        Rpc.make("Find", { payload: { id: Schema.Int }, success: Schema.String, error: NotFound }),
        Rpc.make("Unheard", { payload: { id: Schema.Int }, success: Schema.String })
      ) {}
      const protocol = yield* makeProtocolClient({ port: server.port })
      const newer = yield* RpcClient.make(Newer).pipe(Effect.provideService(RpcClient.Protocol, protocol))
      const exit = yield* Effect.exit(newer.Unheard({ id: 1 }))
      // effect/rpc answers an unknown tag with that call's Exit: a defect that names the tag.
      expect(Exit.isFailure(exit)).toBe(true)
      const defect = Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined
      expect(String(defect)).toMatch(/Unknown request tag: Unheard/)
      // The connection goes on.
      expect(yield* newer.Find({ id: 1 })).toBe("found 1")
    }))

  it.live("interrupting a call on the client interrupts its handler on the server", () =>
    Effect.gen(function* () {
      const probe = new Probe()
      const { client } = yield* setup(probe)
      const call = yield* Effect.forkChild(client.Hang({ key: "a" }))
      yield* probe.await("started a")
      yield* Fiber.interrupt(call)
      // A protocol that dropped the client's Interrupt would leave the handler running forever.
      yield* probe.await("interrupted a")
    }))

  it.live("a time-out on the client's call fails it with a TimeoutError and interrupts the server's handler", () =>
    Effect.gen(function* () {
      const probe = new Probe()
      const { client } = yield* setup(probe)
      const error = yield* Effect.flip(client.Hang({ key: "slow" }).pipe(Effect.timeout("200 millis")))
      expect(Cause.isTimeoutError(error)).toBe(true)
      yield* probe.await("interrupted slow")
      expect(yield* client.Find({ id: 1 })).toBe("found 1")
    }))

  it.live("a stream to a slow consumer: the server produces only a bounded number ahead of what is consumed", () =>
    Effect.gen(function* () {
      const probe = new Probe()
      const { client } = yield* setup(probe)
      const bufferSize = 8
      const queue = yield* client.Numbers({ to: 100_000 }, { asQueue: true, streamBufferSize: bufferSize })
      let consumed = 0
      for (let round = 0; round < 5; round++) {
        for (let i = 0; i < 10; i++) {
          expect(yield* Queue.take(queue)).toBe(++consumed)
        }
        const produced = yield* settled(() => probe.produced)
        // Ahead of the consumer by at most: the client's queue, the chunk waiting to enter it, and the
        // element the server pulled while it waits for the last chunk's acknowledgement. A server that
        // did not wait for acknowledgements would stall only at the 100 000th element.
        expect(produced).toBeGreaterThan(consumed)
        expect(produced - consumed).toBeLessThanOrEqual(bufferSize + 3)
      }
      expect(probe.producerStopped).toBe(false)
    }))

  it.live("closing a stream's consumer stops its producer on the server", () =>
    Effect.gen(function* () {
      const probe = new Probe()
      const { client } = yield* setup(probe)
      const taken = yield* Stream.runCollect(Stream.take(client.Numbers({ to: 100_000 }), 3))
      expect(Array.from(taken)).toEqual([1, 2, 3])
      for (let i = 0; i < 500 && !probe.producerStopped; i++) yield* Effect.sleep("20 millis")
      expect(probe.producerStopped).toBe(true)
      expect(probe.produced).toBeLessThan(100)
    }))

  it.live("a connection the server drops fails the calls in flight with RpcClientError, and later calls too", () =>
    Effect.gen(function* () {
      const probe = new Probe()
      const { server, client } = yield* setup(probe)
      const call = yield* Effect.forkChild(Effect.flip(client.Hang({ key: "dropped" })))
      yield* probe.await("started dropped")
      for (const session of server.sessions) yield* session.close
      const error = yield* Fiber.join(call)
      expect(error).toBeInstanceOf(RpcClientError.RpcClientError)
      expect(error._tag === "RpcClientError" ? error.reason._tag : error._tag).toBe("SocketReadError")
      expect(causeOf(error)).toBeInstanceOf(Errors.ConnectionClosed)
      expect(causeOf(error)).toMatchObject({ reason: "the server closed the connection" })
      // The server interrupted the call of the client that went away.
      yield* probe.await("interrupted dropped")
      // No reconnect: a later call fails at once with the same reason.
      const later = yield* Effect.flip(client.Find({ id: 1 }))
      expect(later).toBeInstanceOf(RpcClientError.RpcClientError)
      expect(causeOf(later)).toMatchObject({ reason: "the server closed the connection" })
    }))

  it.live("with a reconnect schedule, a call after the drop goes over a new connection", () =>
    Effect.gen(function* () {
      const { server, client } = yield* setup(new Probe(), { reconnect: Schedule.spaced("20 millis") })
      expect(yield* client.Find({ id: 1 })).toBe("found 1")
      for (const session of server.sessions) yield* session.close
      // Calls made while it reconnects wait for the new connection (up to connectTimeout).
      for (let i = 0; i < 500 && server.accepted < 2; i++) yield* Effect.sleep("20 millis")
      expect(server.accepted).toBe(2)
      const answer = yield* client.Find({ id: 1 }).pipe(
        Effect.retry({ times: 50, schedule: Schedule.spaced("20 millis") })
      )
      expect(answer).toBe("found 1")
    }))

  it.live("a client that goes away: the server interrupts its calls still running", () =>
    Effect.gen(function* () {
      const probe = new Probe()
      const { server } = yield* setup(probe)
      const raw = yield* peer(server.port)
      const body = encode({ _tag: "Request", id: 1, tag: "Hang", payload: { key: "gone" }, headers: [] })
      raw.write(Frame.encode(Frame.lengthField(), body))
      yield* probe.await("started gone")
      raw.destroy()
      // A protocol that did not report the disconnect would leave the handler running forever.
      yield* probe.await("interrupted gone")
    }))

  it.live("the first connect fails with a typed TransportError when nothing listens", () =>
    Effect.gen(function* () {
      // A port that was just free: bind one with a server, stop it, then connect to it.
      const port = yield* Effect.scoped(
        Layer.build(layerProtocolServer({ port: 0 })).pipe(
          Effect.map((context) => Context.get(context, Server.Server).port)
        )
      )
      const error = yield* Effect.flip(makeProtocolClient({ port, connectTimeout: "5 seconds" }))
      expect(error._tag).toBe("TransportError")
    }))
})
