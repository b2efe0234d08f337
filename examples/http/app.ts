/**
 * The HTTP/1.1 server: the pipeline (the request framer, a codec that hands heads and body chunks on
 * as they are, one handler for both) and `serve`, which runs it. `server.ts` runs it as a program;
 * tests run it in-process.
 *
 * ```text
 * bytes -> requests(limits) -> codec -> handler: head  -> route (no body: answered at once)
 *                                                        -> Exchange (a body: streamed to the route)
 *                                               chunk -> Exchange.feed / Exchange.end
 *       <- raw response bytes, in request order <-
 * ```
 *
 * Frame errors (a limit, a malformed request, a head that takes longer than `frameTimeout`) get one
 * last response through `Pipeline.onFrameError`, then the connection closes.
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { Bytes, type Errors, Handler, Pipeline, Server, type Session, type Transport } from "../../src/index.ts"
import { Exchange, type Probe, write } from "./exchange.ts"
import { codec, type Head, type Limits, type Request, requests } from "./framer.ts"
import { continue100, encodeWhole, errorResponse, type Response } from "./response.ts"
import { find, type Routes, routes as defaultRoutes } from "./routes.ts"

/** What a connection keeps between messages: its scope (for route fibers) and the request whose body is streaming. */
export interface ConnectionState {
  readonly scope: Scope.Scope
  exchange: Exchange | undefined
}

type HttpSession = Session.Session<Uint8Array, ConnectionState>

export interface Options extends Limits, Session.Options, Transport.ListenOptions {
  /** The routes; default `routes.ts`'s. */
  readonly routes?: Routes | undefined
  /** Counts what streamed bodies hold (tests). */
  readonly probe?: Probe | undefined
}

/** A body that is written whole, as the message's one reply. */
const isWhole = (body: Response["body"]): body is Uint8Array | string | undefined =>
  body === undefined || typeof body === "string" || body instanceof Uint8Array

/** Whether the connection closes after this response. */
const closes = (head: Head, response: Response): boolean => response.close === true || !head.keepAlive

/** A request without a body: its route runs in the head's handler, and its response is the head's reply. */
function* answer(head: Head, responding: Effect.Effect<Response>, session: HttpSession) {
  const response = yield* responding
  if (isWhole(response.body)) {
    const close = closes(head, response)
    if (close) yield* session.close
    return encodeWhole(head, response, close)
  }
  // A streamed body: written as it is pulled, while the outbound bytes are under the high-water mark.
  const exit = yield* Effect.exit(write(head, response, (bytes) => session.sendWait(bytes)))
  if (Exit.isFailure(exit)) {
    yield* Effect.logError("response failed", exit.cause)
    yield* session.close
  } else if (exit.value) {
    yield* session.close
  }
  return Bytes.empty
}

/** Every message but the quick ones: body chunks, heads with a body, routes that take their time. */
function* handle(table: Routes, probe: Probe | undefined, request: Request | undefined, session: HttpSession) {
  if (request === undefined) return Bytes.empty
  const connection = session.state
  if (request.kind === "chunk") {
    const exchange = connection.exchange
    if (exchange === undefined) return Bytes.empty
    if (probe !== undefined) probe.largestChunk = Math.max(probe.largestChunk, request.data.length)
    if (request.last) {
      yield* exchange.end(request.data, session)
      connection.exchange = undefined
    } else {
      yield* exchange.feed(request.data, session)
    }
    // A response broken half-way can only be ended by closing the connection.
    if (exchange.state === "failed" || (request.last && exchange.close)) yield* session.close
    return Bytes.empty
  }
  const found = find(table, request)
  if (typeof found !== "function") {
    // Answered from the head (404, 405): the body the client may send is not read, so the
    // connection closes after the response.
    const close = !request.keepAlive || request.body.kind !== "none"
    if (close) yield* session.close
    return encodeWhole(request, found, close)
  }
  if (request.body.kind === "none") return yield* answer(request, found({ head: request, body: Stream.empty }), session)
  const exchange = yield* Exchange.make(probe)
  connection.exchange = exchange
  yield* Effect.forkIn(exchange.run(found, request), connection.scope)
  return request.expectContinue ? continue100 : Bytes.empty
}

const handler = (table: Routes, probe: Probe | undefined) =>
  Handler.effect((request: Request | undefined, session: HttpSession) => {
    if (request?.kind === "head" && request.body.kind === "none") {
      const route = find(table, request)
      if (typeof route === "function") {
        const responding = route({ head: request, body: Stream.empty })
        // The common case: a route that answers at once (an Exit) with a whole body.
        const exit = Exit.isExit(responding) ? responding as Exit.Exit<Response> : undefined
        if (exit !== undefined && Exit.isSuccess(exit) && isWhole(exit.value.body)) {
          // Answered in place, without a generator or a fiber. `session.close` run here, while the
          // handler is being called, closes the connection right after this reply.
          const close = closes(request, exit.value)
          if (close) Effect.runSync(session.close)
          return Exit.succeed(encodeWhole(request, exit.value, close))
        }
        return Effect.gen(() => answer(request, responding, session))
      }
    }
    return Effect.gen(() => handle(table, probe, request, session))
  })

/** The status that answers a frame error. */
export const statusOf = (error: Errors.FrameError): number => {
  switch (error._tag) {
    case "FrameTimeout":
      return 408
    case "FrameTooLarge":
      return error.framer === "http uri" ? 414 : error.framer === "http body" ? 413 : 431
    case "MalformedFrame": {
      const status = error.reason === "Protocol" ? Number(error.detail.slice(0, 3)) : 400
      return Number.isInteger(status) ? status : 400
    }
  }
}

/** The last response to a frame error: its status, unless a response is already going out. */
const lastReply = (error: Errors.FrameError, session: HttpSession): Effect.Effect<Uint8Array> =>
  Effect.succeed(session.state.exchange?.started === true ? Bytes.empty : errorResponse(statusOf(error)))

/** A handler that died, or ran longer than `handlerTimeout`: 500, unless a response is already going out; then close. */
const failed = (error: Errors.HandlerError | Errors.HandlerTimeout, session: HttpSession): Effect.Effect<Uint8Array> =>
  Effect.gen(function* () {
    yield* Effect.logError("request failed", error)
    yield* session.close
    return session.state.exchange?.started === true ? Bytes.empty : errorResponse(500)
  })

/** The HTTP/1.1 pipeline. */
export const pipeline = (options: Options = {}) => {
  const framer = requests(options)
  return Pipeline.make({
    framer,
    codec: codec(framer),
    handler: handler(options.routes ?? defaultRoutes, options.probe)
  }).pipe(
    Pipeline.catchTag("HandlerError", (error, _request, session) => failed(error, session)),
    Pipeline.catchTag("HandlerTimeout", (error, _request, session) => failed(error, session)),
    Pipeline.onFrameError(lastReply)
  )
}

/** Serves HTTP/1.1 until the scope closes (then shuts down gracefully). Host default 127.0.0.1, port default 0. */
export const serve = (options: Options = {}) => {
  const {
    examined: _examined,
    maxBodyLength: _maxBodyLength,
    maxChunkLength: _maxChunkLength,
    maxHeadLength: _maxHeadLength,
    maxHeaders: _maxHeaders,
    maxUriLength: _maxUriLength,
    probe: _probe,
    routes: _routes,
    ...serverOptions
  } = options
  return Server.serve({
    ...serverOptions,
    pipeline: pipeline(options),
    onOpen: () => Effect.map(Effect.scope, (scope): ConnectionState => ({ scope, exchange: undefined }))
  })
}
