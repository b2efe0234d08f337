/**
 * What a client (`Client`, `sluice/rpc`'s client protocol) does around its connections: the address
 * it names in errors, a connection attempt bounded by the connect time-out, and the
 * `ConnectionClosed` that says why a connection ended.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { ConnectionClosed, ConnectTimeout, type TransportError } from "../Errors.ts"
import type { CloseReason } from "../Session.ts"
import type * as Transport from "../Transport.ts"
import { formatAddress, makeAddress } from "./address.ts"

/** Where a client connects, as its errors name it, and how long one attempt may take. */
export interface Dial {
  readonly target: string
  readonly connectMillis: number
}

export const dial = (
  options: Transport.ConnectOptions & {
    readonly connectTimeout?: Duration.Input | undefined
  }
): Dial => ({
  target: formatAddress(makeAddress(options.host ?? "127.0.0.1", options.port, options.path)),
  connectMillis: Duration.toMillis(Duration.fromInputUnsafe(options.connectTimeout ?? Duration.seconds(10)))
})

/** Fails with `ConnectTimeout` once `effect` has taken longer than the connect time-out. */
export const withinConnectTimeout = <A, E, R>(
  dial: Dial,
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, E | ConnectTimeout, R> =>
  Effect.timeoutOrElse(effect, {
    duration: dial.connectMillis,
    orElse: () => Effect.fail(new ConnectTimeout({ address: dial.target, timeoutMillis: dial.connectMillis }))
  })

/** One connection attempt, bounded by the connect time-out. */
export const connect = (
  transport: Transport.Transport,
  options: Transport.ConnectOptions,
  dial: Dial
): Effect.Effect<Transport.Connection, TransportError | ConnectTimeout> =>
  withinConnectTimeout(dial, transport.connect(options))

/** Why a connection ended, in words. */
const describe = (reason: CloseReason | undefined): string => {
  switch (reason?._tag) {
    case "PeerClosed":
      return "the server closed the connection"
    case "Closed":
    case "Shutdown":
      return "the client closed the connection"
    case "Failed":
      return "the connection failed"
    case "Defect":
      return "the connection ended by a defect"
    default:
      return "the connection was closed"
  }
}

/** The `ConnectionClosed` of a call made to, or waiting in, a client that has stopped. */
export const stoppedFor = (dial: Dial): ConnectionClosed =>
  new ConnectionClosed({ remoteAddress: dial.target, reason: "the client stopped" })

/** The `ConnectionClosed` for a connection that ended for `reason`: its words, and its error as the cause. */
export const closedFor = (dial: Dial, reason: CloseReason | undefined): ConnectionClosed => {
  const cause = reason?._tag === "Failed" ? reason.error : reason?._tag === "Defect" ? reason.defect : undefined
  return new ConnectionClosed({
    remoteAddress: dial.target,
    reason: describe(reason),
    ...(cause !== undefined ? { cause } : {})
  })
}
