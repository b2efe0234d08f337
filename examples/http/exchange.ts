/**
 * One request whose body streams to its route while the response streams back, over sluice's
 * one-message-at-a-time dispatch.
 *
 * The framer hands out a request as its head, then its body chunk by chunk, each a message of its
 * own. The head's handler starts the route in a fiber of the connection's scope, with the body as a
 * `Stream` fed by a bounded queue (`body`). The route's response goes the other way through a second
 * bounded queue (`events`), because only a message's handler can write in order with the replies:
 *
 * ```text
 *  connection side (message handlers)           route side (its own fiber)
 *  ---------------------------------           --------------------------
 *  head     -> start the route; 100 Continue
 *  chunk    -> offer the bytes to `body`  ---->  the body Stream pulls them
 *              relay what `events` holds  <----  response pieces (head, chunks), "done"
 *  last     -> end `body`; relay until "done"
 * ```
 *
 * A chunk's handler never waits for the route blindly: when `body` is full it waits on `events`,
 * where the route posts its response pieces and, once it has taken from `body` again, "room". So a
 * route that echoes as it reads (`POST /echo`) and a route that reads everything before answering
 * (`POST /sha256`) both go on, and memory stays bounded: `body` holds a few chunks, `events` a few
 * pieces; while either is full, the chunk's handler waits, and sluice stops reading from the socket.
 * Response pieces wait in `events` while no message is being handled (between two reads), and go
 * out with the next message's handler: at the latest, the last chunk's.
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import { Bytes, type Session } from "../../src/index.ts"
import type { Head } from "./framer.ts"
import { chunk, encodeHead, errorResponse, framingOf, lastChunk, type Response } from "./response.ts"

/** What a route gets: the head as parsed, and the body as it arrives. */
export interface RouteRequest {
  readonly head: Head
  /** The body's bytes, each chunk a copy the route may keep. Empty when the request has none. */
  readonly body: Stream.Stream<Uint8Array>
}

/** A route: a request in, a response out. A defect is answered with 500 (or a close, mid-response). */
export type Route = (request: RouteRequest) => Effect.Effect<Response>

/**
 * Counts what the exchange machinery holds, for tests and curiosity: the largest body chunk a
 * handler received, and the body bytes waiting for the route and the response bytes waiting for the
 * connection (now, and the most at any time).
 */
export interface Probe {
  largestChunk: number
  bodyBuffered: number
  peakBodyBuffered: number
  pending: number
  peakPending: number
}

export const makeProbe = (): Probe => ({
  largestChunk: 0,
  bodyBuffered: 0,
  peakBodyBuffered: 0,
  pending: 0,
  peakPending: 0
})

/** Body chunks the route may be behind by. */
const BODY_CAPACITY = 4
/** Response pieces the connection may be behind by. */
const EVENTS_CAPACITY = 4

type Event = Uint8Array | "room" | "done" | "failed"

/** Where the connection side writes response pieces: the session, in order with the replies. */
export interface Sink {
  sendWait(message: Uint8Array): Effect.Effect<void, Session.SendError>
}

/** The bytes a response writes, in order, to some sink: the socket, or an exchange's `events`. */
export const write = (
  head: Head,
  response: Response,
  sink: (bytes: Uint8Array) => Effect.Effect<void, unknown>
): Effect.Effect<boolean, unknown> =>
  Effect.gen(function* () {
    const { close, framing } = framingOf(head, response)
    yield* sink(
      Bytes.fromString(
        encodeHead(head.version, head.keepAlive, response.status, response.headers ?? [], framing, close)
      )
    )
    const body = response.body
    if (head.method === "HEAD" || body === undefined) return close
    if (typeof body === "string" || body instanceof Uint8Array) {
      const bytes = typeof body === "string" ? Bytes.fromString(body) : body
      if (bytes.length > 0) yield* sink(bytes)
      return close
    }
    let sent = 0
    yield* Stream.runForEach(body, (piece) => {
      if (piece.length === 0) return Effect.void // an empty chunk would end a chunked body
      sent += piece.length
      if (framing.kind === "length" && sent > framing.length) {
        return Effect.die(new Error(`the body is longer than its length ${framing.length}`))
      }
      return sink(framing.kind === "chunked" ? chunk(piece) : piece)
    })
    if (framing.kind === "chunked") yield* sink(lastChunk)
    if (framing.kind === "length" && sent !== framing.length) {
      return yield* Effect.die(new Error(`the body has ${sent} bytes, not its length ${framing.length}`))
    }
    return close || framing.kind === "close"
  })

export class Exchange {
  /** The connection side waits for room in `body`: the route wakes it when it takes. */
  private waiting = false
  /** What the route side has said: still running, its response complete, or broken. */
  state: "running" | "done" | "failed" = "running"
  /** Response bytes have gone out: a frame error can no longer be answered with a status. */
  started = false
  /** Close the connection after the response. */
  close = false
  /** The route side has posted response bytes. */
  private posted = false

  private constructor(
    private readonly body: Queue.Queue<Uint8Array, Cause.Done>,
    private readonly events: Queue.Queue<Event>,
    private readonly probe: Probe | undefined
  ) {}

  static make(probe: Probe | undefined): Effect.Effect<Exchange> {
    return Effect.gen(function* () {
      const body = yield* Queue.bounded<Uint8Array, Cause.Done>(BODY_CAPACITY)
      const events = yield* Queue.bounded<Event>(EVENTS_CAPACITY)
      return new Exchange(body, events, probe)
    })
  }

  // --- the route side ------------------------------------------------------------------------------

  /** Runs `route` and writes its response into `events`; a defect before any byte is a 500. */
  run(route: Route, head: Head): Effect.Effect<void> {
    const post = (bytes: Uint8Array): Effect.Effect<void> => {
      this.posted = true
      const probe = this.probe
      if (probe !== undefined) {
        probe.pending += bytes.length
        probe.peakPending = Math.max(probe.peakPending, probe.pending)
      }
      return Queue.offer(this.events, bytes)
    }
    return route({ head, body: this.bodyStream() }).pipe(
      Effect.flatMap((response) => write(head, response, post)),
      Effect.flatMap((close) => {
        this.close = close
        return Queue.offer(this.events, "done")
      }),
      Effect.catchCause((cause) =>
        Cause.hasInterruptsOnly(cause) ?
          Effect.failCause(cause as Cause.Cause<never>) :
          Effect.gen({ self: this }, function* () {
            yield* Effect.logError("route failed", cause)
            if (this.posted) return yield* Queue.offer(this.events, "failed")
            this.close = true
            yield* post(errorResponse(500))
            yield* Queue.offer(this.events, "done")
          })
      ),
      Effect.asVoid
    )
  }

  /** The body as its route reads it: what `body` holds, as it comes; "room" for a connection side that waits. */
  private bodyStream(): Stream.Stream<Uint8Array> {
    const take = Effect.map(Queue.takeAll(this.body), (chunks) => {
      if (this.probe !== undefined) { for (const chunk of chunks) this.probe.bodyBuffered -= chunk.length }
      if (this.waiting) {
        this.waiting = false
        // Dropped when `events` is full: the connection side then has events to handle, and tries again.
        Queue.offerUnsafe(this.events, "room")
      }
      return chunks
    })
    return Stream.fromPull(Effect.succeed(take))
  }

  // --- the connection side: generators run by the message handlers -----------------------------------

  /** Writes a response piece (in order with the replies), or notes what the route said. */
  private *relay(event: Event, session: Sink) {
    switch (event) {
      case "room":
        return
      case "done":
        this.state = "done"
        return
      case "failed":
        this.state = "failed"
        return
    }
    if (this.probe !== undefined) this.probe.pending -= event.length
    this.started = true
    yield* session.sendWait(event)
  }

  /** Relays what `events` holds now, without waiting. */
  private *relayReady(session: Sink) {
    for (let exit = Queue.takeUnsafe(this.events); exit !== undefined; exit = Queue.takeUnsafe(this.events)) {
      if (Exit.isFailure(exit)) return
      yield* this.relay(exit.value, session)
    }
  }

  /**
   * A body chunk (not the last): a copy goes to the route (the frame is a view of the read buffer).
   * Waits while `body` is full, relaying the response meanwhile. Once the route is done, the rest of
   * the body is read and dropped.
   */
  *feed(data: Uint8Array, session: Sink) {
    yield* this.relayReady(session)
    if (data.length === 0 || this.state !== "running") return
    const copy = data.slice()
    while (!Queue.offerUnsafe(this.body, copy)) {
      this.waiting = true
      const event = yield* Queue.take(this.events)
      this.waiting = false
      yield* this.relay(event, session)
      yield* this.relayReady(session)
      if (this.state !== "running") return
    }
    if (this.probe !== undefined) {
      this.probe.bodyBuffered += copy.length
      this.probe.peakBodyBuffered = Math.max(this.probe.peakBodyBuffered, this.probe.bodyBuffered)
    }
  }

  /** The last chunk: the body ends, and the rest of the response is relayed as the route writes it. */
  *end(data: Uint8Array, session: Sink) {
    yield* this.feed(data, session)
    Queue.endUnsafe(this.body)
    while (this.state === "running") {
      const event = yield* Queue.take(this.events)
      yield* this.relay(event, session)
    }
  }
}
