/**
 * effect/rpc's server `Protocol` over a sluice server: every connection is a session whose state is
 * its RPC client id; its messages go to `RpcServer` as they are decoded, and `RpcServer`'s answers
 * go out through the session, in order, with its water marks.
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { type FromClientEncoded, type FromServerEncoded, ResponseDefectEncoded } from "effect/rpc/RpcMessage"
import * as RpcServer from "effect/rpc/RpcServer"
import type { TransportError } from "../../Errors.ts"
import * as Handler from "../../Handler.ts"
import * as Pipeline from "../../Pipeline.ts"
import * as Server from "../../Server.ts"
import type { ServerOptions } from "../../rpc.ts"
import type * as Session from "../../Session.ts"
import { runNow } from "./fiber.ts"
import { codecFor, framer, serverCodec } from "./wire.ts"

/** A connection as the protocol sees it: its state is its RPC client id. */
type Connection = Session.Session<FromServerEncoded, number | undefined>

const noReplies: ReadonlyArray<FromServerEncoded> = []

export const make = (
  options: ServerOptions
): Effect.Effect<
  { readonly protocol: RpcServer.Protocol["Service"]; readonly server: Server.Server },
  TransportError,
  Scope.Scope
> =>
  Effect.gen(function* () {
    // Set while the protocol is made (`Protocol.make` runs its function at once).
    let server: Server.Server | undefined
    const protocol = yield* RpcServer.Protocol.make((writeRequest) =>
      Effect.gen(function* () {
        const disconnects = yield* Queue.make<number>()
        const connections = new Map<number, Connection>()
        const clientIds = new Set<number>()
        let nextClientId = 0
        const encodeDefect = Schema.encodeSync(codecFor(Schema.Defect()))

        // Each message goes to RpcServer at once, which starts a call's handler in a fiber of its own and
        // returns: a slow call never holds up the connection's next message. Should RpcServer not return
        // at once (a payload decoded asynchronously), reading pauses until it does: RpcServer sees a
        // connection's messages in order.
        const context = yield* Effect.context<never>()
        const done = Exit.succeed(noReplies)
        const pipeline = Pipeline.make({
          framer: framer(options.maxFrameLength),
          codec: serverCodec,
          handler: Handler.effectMany(
            (message: FromClientEncoded, session: Session.Session<FromServerEncoded, number>) => {
              const taken = runNow(context, writeRequest(session.state, message))
              if (!Exit.isExit(taken)) return Effect.as(taken, noReplies)
              return Exit.isSuccess(taken) ? done : Exit.failCause(taken.cause)
            }
          )
        }).pipe(
          // A frame that is not an effect/rpc message is answered as effect/rpc's socket protocol answers
          // one: a `Defect`, which fails that client's calls in flight; the connection goes on.
          Pipeline.catchTag(
            "PacketDecodeError",
            (error) => Effect.succeed<FromServerEncoded>(ResponseDefectEncoded(encodeDefect(error.message)))
          )
        )

        // As `Server.layer` does: the service is the server with its message and state types forgotten.
        server = (yield* Server.serve({
          ...options,
          name: options.name ?? "rpc",
          pipeline,
          onOpen: (session) =>
            Effect.sync(() => {
              const clientId = nextClientId++
              connections.set(clientId, session)
              clientIds.add(clientId)
              return clientId
            }),
          onClose: (session) =>
            Effect.suspend(() => {
              const clientId = session.state
              if (clientId === undefined || !connections.has(clientId)) return Effect.void
              connections.delete(clientId)
              clientIds.delete(clientId)
              // RpcServer interrupts the calls of a client that went away.
              return Queue.offer(disconnects, clientId)
            })
        })) as unknown as Server.Server

        return {
          disconnects,
          send: (clientId, response) => {
            const connection = connections.get(clientId)
            if (connection === undefined) return Effect.void
            // `sendWait`: an answer waits while the peer is slow to read (over the high-water mark).
            return Effect.catch(connection.sendWait(response), (error) =>
              // The peer is gone: nobody to answer. Anything else (a message too large to frame, over
              // `maxOutboundBytes`) is a defect: RpcServer answers that call with it instead.
              error._tag === "ConnectionClosed" ? Effect.void : Effect.die(error))
          },
          end: (clientId) => connections.get(clientId)?.close ?? Effect.void,
          clientIds: Effect.sync(() => clientIds),
          initialMessage: Effect.succeed(Option.none()),
          supportsAck: true,
          supportsTransferables: false,
          supportsSpanPropagation: true,
          supportsNotifications: true,
          codecFor
        }
      })
    )
    return { protocol, server: server! }
  })
