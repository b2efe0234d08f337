/**
 * effect/rpc's client `Protocol` over one sluice connection: the messages of every `RpcClient` made
 * with it go out through one session, and what the server answers is routed back to the client whose
 * request it answers.
 */
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as RpcClient from "effect/rpc/RpcClient"
import { RpcClientError } from "effect/rpc/RpcClientError"
import { constPing, type FromClientEncoded, type FromServerEncoded } from "effect/rpc/RpcMessage"
import { SocketOpenError, SocketReadError, SocketWriteError } from "effect/socket/Socket"
import type { ConnectTimeout, TransportError } from "../../Errors.ts"
import * as Handler from "../../Handler.ts"
import * as Pipeline from "../../Pipeline.ts"
import * as Session from "../../Session.ts"
import * as Transport from "../../Transport.ts"
import { closedFor, connect as connectWithin, dial, stoppedFor } from "../dial.ts"
import type { ClientOptions } from "../../rpc.ts"
import { runNow } from "./fiber.ts"
import { clientCodec, codecFor, framer } from "./wire.ts"

type Connection = Session.Session<FromClientEncoded, void | undefined>

const noReplies: ReadonlyArray<FromClientEncoded> = []

export const make = (
  options: ClientOptions
): Effect.Effect<RpcClient.Protocol["Service"], TransportError | ConnectTimeout, Scope.Scope> =>
  RpcClient.Protocol.make((writeResponse, clientIds) =>
    Effect.gen(function* () {
      const transport = options.transport ?? (yield* Transport.current)
      const where = dial(options)
      const reconnect = options.reconnect
      const pingInterval = Duration.fromInputUnsafe(options.pingInterval ?? "30 seconds")
      /** Which client each request in flight came from. */
      const requestClients = new Map<string | number, number>()
      let current: Connection | undefined
      /** Why there is no connection now, once one has ended. */
      let failure: RpcClientError | undefined
      let ready = Deferred.makeUnsafe<void>()
      let stopped = false

      const broadcast = (response: FromServerEncoded): Effect.Effect<void> => {
        const deliver = Effect.forEach(Array.from(clientIds), (clientId) => writeResponse(clientId, response), {
          discard: true
        })
        if (response._tag !== "Defect" && response._tag !== "ClientProtocolError") return deliver
        // A defect or a lost connection ends every call: forget their routes before a caller can start new ones.
        requestClients.clear()
        return Effect.uninterruptible(deliver)
      }

      const deliver = (response: FromServerEncoded): Effect.Effect<void> => {
        if (response._tag === "Pong") return Effect.void
        if (response._tag === "Chunk" || response._tag === "Exit") {
          const clientId = requestClients.get(response.requestId)
          if (clientId !== undefined) {
            if (response._tag === "Exit") requestClients.delete(response.requestId)
            return writeResponse(clientId, response)
          }
        }
        return broadcast(response)
      }

      const context = yield* Effect.context<never>()
      const done = Exit.succeed(noReplies)
      // Server messages are delivered up to `deliveryConcurrency` at once: a chunk for a stream whose
      // consumer is behind waits for it (RpcClient acknowledges a chunk once its queue took it, and the
      // server sends no more of that stream before), without holding up the answers to other calls.
      // Past that many waiting, the connection stops reading.
      const pipeline = Pipeline.make({
        framer: framer(options.maxFrameLength),
        codec: clientCodec,
        handler: Handler.effectMany((response: FromServerEncoded) => {
          const delivered = runNow(context, deliver(response))
          if (!Exit.isExit(delivered)) return Effect.as(delivered, noReplies)
          return Exit.isSuccess(delivered) ? done : Exit.failCause(delivered.cause)
        }).pipe(
          Handler.concurrent(options.deliveryConcurrency ?? 64, { ordered: false })
        )
      })

      const connect = connectWithin(transport, options, where)

      /** Runs one connection to its end, then fails the calls in flight. */
      const runConnection = (connection: Transport.Connection): Effect.Effect<void> =>
        Session.run(connection, {
          ...options,
          // A delivery that waits for a slow stream consumer is not a stuck handler.
          handlerTimeout: options.handlerTimeout ?? Duration.infinity,
          pipeline,
          onOpen: (session) =>
            Effect.sync(() => {
              current = session
              failure = undefined
              Deferred.doneUnsafe(ready, Exit.void)
            }),
          // Pings keep an idle connection alive through the server's `readIdleTimeout`.
          onCron: Duration.isFinite(pingInterval)
            ? {
              schedule: Schedule.spaced(pingInterval),
              run: (session) => Effect.ignore(session.send(constPing))
            }
            : undefined
        }).pipe(Effect.flatMap((reason) => dropped(reason)))

      const dropped = (reason: Session.CloseReason): Effect.Effect<void> =>
        Effect.suspend(() => {
          current = undefined
          if (reconnect !== undefined && !stopped) ready = Deferred.makeUnsafe<void>()
          const error = new RpcClientError({ reason: new SocketReadError({ cause: closedFor(where, reason) }) })
          failure = error
          return broadcast({ _tag: "ClientProtocolError", error })
        })

      const openFailed = (error: TransportError | ConnectTimeout): RpcClientError =>
        new RpcClientError({
          reason: new SocketOpenError({ kind: error._tag === "ConnectTimeout" ? "Timeout" : "Unknown", cause: error })
        })

      const first = yield* connect
      const loop = reconnect === undefined ? runConnection(first) : runConnection(first).pipe(
        Effect.andThen(
          connect.pipe(
            Effect.tapError((error) => Effect.sync(() => (failure = openFailed(error)))),
            Effect.flatMap(runConnection),
            Effect.result,
            Effect.repeat(Schedule.passthrough(reconnect))
          )
        )
      )
      const loopFiber = yield* Effect.forkScoped(
        Effect.ensuring(
          loop,
          Effect.sync(() => {
            stopped = true
            Deferred.doneUnsafe(ready, Exit.void)
          })
        )
      )
      yield* Effect.addFinalizer(() => Fiber.interrupt(loopFiber))
      yield* Deferred.await(ready)

      const stoppedError = (): RpcClientError =>
        failure ??
          new RpcClientError({
            reason: new SocketWriteError({
              cause: stoppedFor(where)
            })
          })

      const write = (connection: Connection, clientId: number, request: FromClientEncoded) => {
        if (request._tag === "Request") requestClients.set(request.id, clientId)
        else if (request._tag === "Interrupt") requestClients.delete(request.requestId)
        // `sendWait`: a caller waits while the server is slow to read (over the high-water mark).
        return Effect.mapError(connection.sendWait(request), (cause) => {
          if (request._tag === "Request") requestClients.delete(request.id)
          return new RpcClientError({ reason: new SocketWriteError({ cause }) })
        })
      }

      const send = (clientId: number, request: FromClientEncoded): Effect.Effect<void, RpcClientError> =>
        Effect.suspend(() => {
          const connection = current
          if (connection !== undefined && connection.isOpen) return write(connection, clientId, request)
          if (reconnect === undefined || stopped) return Effect.fail(stoppedError())
          // Between connections: wait for the next one, as long as a connect may take.
          return Deferred.await(ready).pipe(
            Effect.timeoutOrElse({ duration: where.connectMillis, orElse: () => Effect.fail(stoppedError()) }),
            Effect.andThen(() =>
              current !== undefined && current.isOpen ? send(clientId, request) : Effect.fail(stoppedError())
            )
          )
        })

      return {
        send,
        supportsAck: true,
        supportsTransferables: false,
        codecFor
      }
    })
  )
