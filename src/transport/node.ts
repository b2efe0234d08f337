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
import type {
  Address,
  Connection,
  ConnectionHandler,
  ConnectOptions,
  Listener,
  ListenOptions,
  Transport
} from "../Transport.ts"
import { formatAddress } from "../Transport.ts"

const addressOf = (host: string | undefined, port: number | undefined, path?: string): Address =>
  path !== undefined && path !== "" ? { _tag: "Unix", path } : { _tag: "Tcp", host: host ?? "", port: port ?? 0 }

class NodeConnection implements Connection {
  readonly remoteAddress: Address
  readonly localAddress: Address
  private handler: ConnectionHandler | undefined = undefined
  private closed = false
  private ending = false

  constructor(readonly socket: net.Socket, unixPath: string | undefined) {
    this.remoteAddress = unixPath !== undefined
      ? { _tag: "Unix", path: unixPath }
      : addressOf(socket.remoteAddress, socket.remotePort)
    this.localAddress = unixPath !== undefined
      ? { _tag: "Unix", path: unixPath }
      : addressOf(socket.localAddress, socket.localPort)
    socket.setNoDelay(true)
  }

  start(handler: ConnectionHandler): void {
    this.handler = handler
    const socket = this.socket
    socket.on("data", (chunk: Uint8Array) => handler.onData(chunk))
    socket.on("drain", () => handler.onDrain())
    socket.on("end", () => handler.onEnd())
    let failure: TransportError | undefined
    socket.on("error", (cause) => {
      failure = new TransportError({ operation: "read", address: formatAddress(this.remoteAddress), cause })
    })
    socket.on("close", () => {
      if (this.closed) return
      this.closed = true
      handler.onClose(failure)
    })
    if (socket.destroyed && !this.closed) {
      this.closed = true
      handler.onClose(failure)
    }
  }

  write(bytes: Uint8Array): boolean {
    if (this.closed || this.ending || this.socket.destroyed) return false
    // node:net keeps a reference to what it is given until it is flushed: give it a copy.
    return this.socket.write(bytes.slice())
  }

  get queuedBytes(): number {
    return this.socket.writableLength
  }

  pause(): void {
    this.socket.pause()
  }

  resume(): void {
    this.socket.resume()
  }

  end(): void {
    if (this.ending) return
    this.ending = true
    this.socket.end()
  }

  destroy(): void {
    this.socket.destroy()
  }
}

const listen = (
  options: ListenOptions,
  onConnection: (connection: Connection) => void
): Effect.Effect<Listener, TransportError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ server: net.Server; address: Address }, TransportError>((resume) => {
      const onSocket = (socket: net.Socket) => onConnection(new NodeConnection(socket, options.path))
      const server = options.tls !== undefined
        ? tls.createServer({ cert: options.tls.cert, key: options.tls.key, allowHalfOpen: true }, onSocket)
        : net.createServer({ allowHalfOpen: true, pauseOnConnect: false }, onSocket)
      const requested = formatAddress(addressOf(options.host ?? "127.0.0.1", options.port ?? 0, options.path))
      server.once("error", (cause) =>
        resume(Effect.fail(new TransportError({ operation: "listen", address: requested, cause }))))
      const ready = () => {
        const bound = server.address()
        const address: Address = options.path !== undefined
          ? { _tag: "Unix", path: options.path }
          : typeof bound === "object" && bound !== null
          ? { _tag: "Tcp", host: bound.address, port: bound.port }
          : addressOf(options.host, options.port)
        resume(Effect.succeed({ server, address }))
      }
      if (options.path !== undefined) {
        server.listen(options.path, ready)
      } else {
        server.listen(
          { host: options.host ?? "127.0.0.1", port: options.port ?? 0, exclusive: options.reusePort !== true },
          ready
        )
      }
    }),
    ({ server }) =>
      Effect.async<void>((resume) => {
        server.close(() =>
          resume(Effect.void)
        )
      })
  ).pipe(Effect.map(({ address }) => ({ address })))

const connect = (options: ConnectOptions): Effect.Effect<Connection, TransportError> =>
  Effect.async<Connection, TransportError>((resume) => {
    const host = options.host ?? "127.0.0.1"
    const target = formatAddress(addressOf(host, options.port, options.path))
    let socket: net.Socket
    const onError = (cause: Error) =>
      resume(Effect.fail(new TransportError({ operation: "connect", address: target, cause })))
    const onReady = () => {
      socket.off("error", onError)
      resume(Effect.succeed(new NodeConnection(socket, options.path)))
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
    socket.once("error", onError)
    return Effect.sync(() => socket.destroy())
  })

/**
 * The `node:net` / `node:tls` transport.
 *
 * @since 0.1.0
 * @category transports
 */
export const transport: Transport = { name: "node", listen, connect }
