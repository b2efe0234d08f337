/**
 * Node's sockets (`node:net`, `node:tls`) as a sluice transport. Also runs on Bun and Deno through
 * their Node compatibility layers, though their native transports are faster there.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as net from "node:net"
import * as tls from "node:tls"
import { TransportError } from "../Errors.ts"
import type * as Scope from "effect/Scope"
import type { Address, Connection, ConnectOptions, Listener, ListenOptions, Transport } from "../Transport.ts"
import { formatAddress, makeAddress } from "../internal/address.ts"
import { NodeConnection } from "../internal/node-connection.ts"

const listen = (
  options: ListenOptions,
  onConnection: (connection: Connection) => void
): Effect.Effect<Listener, TransportError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.callback<{ server: net.Server; address: Address }, TransportError>((resume) => {
      // TCP and Unix sockets are accepted paused: nothing is read before `start` sets up where reads go.
      const onSocket = (socket: net.Socket) => onConnection(new NodeConnection(socket, options.path))
      // A TLS server is created without `allowHalfOpen` (`NodeConnection` turns it on once the
      // handshake is done): with it, a client that hangs up during the handshake (one that rejects
      // the certificate, say) leaves a socket that node:tls never closes, nor reports.
      const server = options.tls !== undefined
        ? tls.createServer({
          cert: options.tls.cert,
          key: options.tls.key,
          allowHalfOpen: false,
          handshakeTimeout: options.tls.handshakeTimeout ?? 10_000
        }, onSocket)
        : net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, onSocket)
      // A failed or timed-out handshake is reported here and the socket is left open: drop it.
      server.on("tlsClientError", (_error: Error, socket: net.Socket) => socket.destroy())
      const requested = formatAddress(makeAddress(options.host ?? "127.0.0.1", options.port ?? 0, options.path))
      const onListenError = (cause: Error) =>
        resume(Effect.fail(new TransportError({ operation: "listen", address: requested, cause })))
      server.once("error", onListenError)
      const ready = () => {
        server.off("error", onListenError)
        // An accept error (EMFILE, say) is emitted on the server and would crash the process
        // without a listener; the server goes on listening.
        server.on("error", () => {})
        const bound = server.address()
        const address: Address = options.path !== undefined
          ? { _tag: "Unix", path: options.path }
          : typeof bound === "object" && bound !== null
          ? { _tag: "Tcp", host: bound.address, port: bound.port }
          : makeAddress(options.host, options.port)
        resume(Effect.succeed({ server, address }))
      }
      if (options.path !== undefined) {
        server.listen(options.path, ready)
      } else {
        // Node 24's `reusePort` (SO_REUSEPORT): several processes bind the port, the kernel spreads
        // the connections.
        server.listen(
          {
            host: options.host ?? "127.0.0.1",
            port: options.port ?? 0,
            ...(options.reusePort === true ? { reusePort: true } : {})
          },
          ready
        )
      }
    }),
    // Stops accepting and frees the address at once. Not `server.close(callback)`'s callback: it
    // waits until every accepted connection has closed, and those are the session layer's to end.
    ({ server }) => Effect.sync(() => server.close())
  ).pipe(Effect.map(({ address }) => ({ address })))

const connect = (options: ConnectOptions): Effect.Effect<Connection, TransportError> =>
  Effect.callback<Connection, TransportError>((resume) => {
    const host = options.host ?? "127.0.0.1"
    const target = formatAddress(makeAddress(host, options.port, options.path))
    let socket: net.Socket
    let settled = false
    // `on`, not `once`: a second `error` while connecting must not find the socket without a listener.
    const onError = (cause: Error) => {
      if (settled) return
      settled = true
      resume(Effect.fail(new TransportError({ operation: "connect", address: target, cause })))
    }
    const onReady = () => {
      if (settled) return
      settled = true
      const connection = new NodeConnection(socket, options.path) // listens for errors from now on
      socket.off("error", onError)
      resume(Effect.succeed(connection))
    }
    if (options.tls !== undefined) {
      socket = tls.connect({
        host,
        port: options.port ?? 0,
        ca: options.tls.ca,
        servername: options.tls.serverName ?? (net.isIP(host) ? undefined : host),
        allowHalfOpen: true
      } as tls.ConnectionOptions, onReady)
    } else if (options.path !== undefined) {
      socket = net.connect({ path: options.path, allowHalfOpen: true }, onReady)
    } else {
      socket = net.connect({ host, port: options.port ?? 0, allowHalfOpen: true }, onReady)
    }
    socket.on("error", onError)
    return Effect.sync(() => {
      settled = true
      socket.destroy()
    })
  })

/**
 * The `node:net` / `node:tls` transport.
 *
 * @since 0.1.0
 * @category transports
 */
export const transport: Transport = { name: "node", listen, connect }
