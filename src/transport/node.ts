/**
 * Node's sockets (`node:net`, `node:tls`) as a sluice transport. Also runs on Bun and Deno through
 * their Node compatibility layers, though their native transports are faster there.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import { Buffer } from "node:buffer"
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
import { formatAddress, makeAddress } from "../internal/address.ts"

class NodeConnection implements Connection {
  readonly remoteAddress: Address
  readonly localAddress: Address
  private handler: ConnectionHandler | undefined = undefined
  private closed = false
  private ending = false
  private failure: TransportError | undefined = undefined
  /** A `write` returned false: `onDrain` is owed once nothing is queued. */
  private drainOwed = false

  constructor(readonly socket: net.Socket, unixPath: string | undefined) {
    this.remoteAddress = unixPath !== undefined
      ? { _tag: "Unix", path: unixPath }
      : makeAddress(socket.remoteAddress, socket.remotePort)
    this.localAddress = unixPath !== undefined
      ? { _tag: "Unix", path: unixPath }
      : makeAddress(socket.localAddress, socket.localPort)
    // Half-open by default (see `listen` for TLS servers, which cannot be created with it).
    socket.allowHalfOpen = true
    // From the start: an `error` without a listener (a reset before `start`, say) would crash the process.
    socket.on("error", (cause) => {
      this.failure ??= new TransportError({ operation: "read", address: formatAddress(this.remoteAddress), cause })
    })
    socket.setNoDelay(true)
  }

  start(handler: ConnectionHandler): void {
    if (this.handler !== undefined) return
    this.handler = handler
    const socket = this.socket
    // Nothing but `onClose` once the socket is destroyed: Bun's node:net emits `end` after `destroy()`.
    socket.on("data", (chunk: Uint8Array) => {
      if (!socket.destroyed) handler.onData(chunk)
    })
    socket.on("end", () => {
      if (!socket.destroyed) handler.onEnd()
    })
    socket.on("close", () => this.reportClose())
    if (socket.destroyed) this.reportClose()
  }

  private reportClose(): void {
    if (this.closed || this.handler === undefined) return
    this.closed = true
    this.handler.onClose(this.failure)
  }

  /**
   * Called by node:net for each write once it is flushed (with the bytes' count already taken off
   * `writableLength`). Node's own `drain` event comes only after a write that passed its 16 KiB
   * high-water mark, while the contract owes `onDrain` after every `write` that returned false.
   */
  private readonly afterWrite = (): void => {
    if (!this.drainOwed || this.closed || this.socket.destroyed || this.socket.writableLength !== 0) return
    this.drainOwed = false
    this.handler?.onDrain()
  }

  write(bytes: Uint8Array): boolean {
    if (this.closed || this.ending || this.socket.destroyed) return false
    const socket = this.socket
    // node:net keeps a reference to what it is given until it is flushed: give it a copy, from
    // Node's buffer pool for small writes rather than a new ArrayBuffer each time.
    socket.write(Buffer.from(bytes), this.afterWrite)
    // node:net's own answer is "below 16 KiB queued"; the contract's is "nothing queued".
    if (socket.writableLength === 0) return true
    this.drainOwed = true
    return false
  }

  writeNoCopy(bytes: Uint8Array): boolean {
    if (this.closed || this.ending || this.socket.destroyed) return false
    const socket = this.socket
    socket.write(bytes, this.afterWrite)
    // Nothing queued: the kernel took every byte inside `write`, and node:net holds no reference.
    if (socket.writableLength === 0) return false
    this.drainOwed = true
    return true
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
    Effect.callback<{ server: net.Server; address: Address }, TransportError>((resume) => {
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
        : net.createServer({ allowHalfOpen: true, pauseOnConnect: false }, onSocket)
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
