/**
 * Bun's native sockets (`Bun.listen` / `Bun.connect`) as a sluice transport.
 *
 * Bun delivers every socket's events through one set of handlers per listener; each socket's
 * `Connection` lives in the socket's own `data` slot and the handlers dispatch to it.
 *
 * What this adapter relies on (checked on Bun 1.4.5, see test/transport-bun.test.ts):
 * - every `data` callback gets a freshly allocated array, never reused afterwards, so chunks are
 *   handed to `onData` without a copy and stay valid as long as the user keeps them;
 * - `socket.write` is unbuffered and may take fewer bytes than asked: the rest is copied into the
 *   connection's own buffer, later writes are appended to it, and each `drain` flushes all of it
 *   in one `write`;
 * - `socket.end()` closes both directions at once: a half-close is `socket.shutdown()`;
 * - after our own `shutdown()`, a plain TCP socket reports the peer's FIN as a clean `close`
 *   without an `end` callback: the adapter then calls `onEnd` itself before `onClose`;
 * - a reset arrives as `close(socket, error)` with `ECONNRESET`; `error` fires when a handler
 *   throws (the socket stays open: the adapter closes it) or an established TLS session fails.
 *
 * The module can be imported anywhere; `listen` and `connect` fail with a `TransportError` when
 * the program does not run on Bun.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { TransportError } from "../Errors.ts"
import type { Connection, ConnectOptions, Listener, ListenOptions, Transport } from "../Transport.ts"
import { formatAddress, makeAddress } from "../internal/address.ts"
import { BunConnection, type BunSocket } from "../internal/bun-connection.ts"
import { bunGlobal } from "../internal/runtime.ts"

// ---------------------------------------------------------------------------------------------
// The part of Bun's socket API this adapter uses (bun-types: `Bun.Socket`, `Bun.SocketHandler`).
// ---------------------------------------------------------------------------------------------

interface BunSocketHandler {
  readonly binaryType?: "uint8array"
  readonly open?: (socket: BunSocket) => void
  readonly handshake?: (socket: BunSocket, success: boolean, authorizationError: Error | null) => void
  readonly data: (socket: BunSocket, data: Uint8Array) => void
  readonly drain: (socket: BunSocket) => void
  readonly end: (socket: BunSocket) => void
  readonly close: (socket: BunSocket, error?: Error) => void
  readonly error: (socket: BunSocket, error: Error) => void
  readonly connectError?: (socket: BunSocket, error: Error) => void
}

interface BunTlsOptions {
  readonly cert?: string
  readonly key?: string
  readonly ca?: string
  readonly serverName?: string
  readonly rejectUnauthorized?: boolean
}

interface BunSocketOptions {
  readonly hostname?: string
  readonly port?: number
  readonly unix?: string
  readonly reusePort?: boolean
  readonly allowHalfOpen: boolean
  readonly tls?: BunTlsOptions | boolean
  readonly socket: BunSocketHandler
}

interface BunListener {
  readonly port?: number
  readonly hostname?: string
  /** Stops accepting; with `true` also closes the open connections. */
  stop(closeActiveConnections?: boolean): void
}

interface BunApi {
  listen(options: BunSocketOptions): BunListener
  connect(options: BunSocketOptions): Promise<BunSocket>
}

const bunApi = (): BunApi | undefined => bunGlobal<BunApi>()

const notOnBun = (): Error => new Error("the Bun transport needs the Bun runtime (globalThis.Bun is undefined)")

// ---------------------------------------------------------------------------------------------
// Handlers shared by every socket: they dispatch to the socket's connection.
// ---------------------------------------------------------------------------------------------

const onData = (socket: BunSocket, chunk: Uint8Array): void => socket.data?.onSocketData(chunk)
const onDrain = (socket: BunSocket): void => socket.data?.onSocketDrain()
const onEnd = (socket: BunSocket): void => socket.data?.onSocketEnd()
const onClose = (socket: BunSocket, error?: Error): void => socket.data?.onSocketClose(error)
const onError = (socket: BunSocket, error: Error): void => {
  if (socket.data !== undefined) socket.data.onSocketError(error)
  else socket.terminate()
}

// ---------------------------------------------------------------------------------------------
// listen / connect
// ---------------------------------------------------------------------------------------------

const listen = (
  options: ListenOptions,
  onConnection: (connection: Connection) => void
): Effect.Effect<Listener, TransportError, Scope.Scope> => {
  const host = options.host ?? "127.0.0.1"
  const path = options.path
  const requested = path !== undefined ? path : formatAddress(makeAddress(host, options.port ?? 0))
  const accept = (socket: BunSocket): void => {
    const connection = new BunConnection(socket, path)
    socket.data = connection
    onConnection(connection)
    connection.holdUntilStart()
  }
  // With TLS, `open` comes at the TCP accept and `handshake` once TLS is up: a client that does
  // not finish its handshake within `handshakeTimeout` is dropped.
  const handshakeMillis = options.tls?.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT_MILLIS
  const handshakes = new WeakMap<BunSocket, ReturnType<typeof setTimeout>>()
  const socket: BunSocketHandler = {
    binaryType: "uint8array",
    open: (socket) => {
      if (options.tls === undefined) return accept(socket)
      handshakes.set(
        socket,
        setTimeout(() => {
          handshakes.delete(socket)
          socket.terminate()
        }, handshakeMillis)
      )
    },
    ...(options.tls !== undefined
      ? {
        handshake: (socket: BunSocket) => {
          const timer = handshakes.get(socket)
          // Bun also reports the end of a handshake that timed out: that socket is gone.
          if (timer === undefined) return
          clearTimeout(timer)
          handshakes.delete(socket)
          accept(socket)
        }
      }
      : {}),
    data: onData,
    drain: onDrain,
    end: onEnd,
    close: onClose,
    error: onError
  }
  return Effect.acquireRelease(
    Effect.try({
      try: () => {
        const Bun = bunApi()
        if (Bun === undefined) throw notOnBun()
        const tls = options.tls !== undefined ? { cert: options.tls.cert, key: options.tls.key } : undefined
        return Bun.listen(
          path !== undefined ? { unix: path, allowHalfOpen: true, ...(tls !== undefined ? { tls } : {}), socket } : {
            hostname: host,
            port: options.port ?? 0,
            allowHalfOpen: true,
            ...(options.reusePort === true ? { reusePort: true } : {}),
            ...(tls !== undefined ? { tls } : {}),
            socket
          }
        )
      },
      catch: (cause) => new TransportError({ operation: "listen", address: requested, cause })
    }),
    // Stops accepting only: open connections stay open and keep being served until the session
    // layer closes them (graceful shutdown happens above the transport). A Unix socket's file is
    // removed.
    (listener) => Effect.sync(() => listener.stop(false))
  ).pipe(
    Effect.map((listener): Listener => ({
      address: path !== undefined
        ? { _tag: "Unix", path }
        : { _tag: "Tcp", host: listener.hostname ?? host, port: listener.port ?? options.port ?? 0 }
    }))
  )
}

/** A TLS client that has not finished its handshake by then is dropped. */
const DEFAULT_HANDSHAKE_TIMEOUT_MILLIS = 10_000

const isIpAddress = (host: string): boolean => /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.includes(":")

const connect = (options: ConnectOptions): Effect.Effect<Connection, TransportError> =>
  Effect.callback<Connection, TransportError>((resume) => {
    const host = options.host ?? "127.0.0.1"
    const path = options.path
    const target = path !== undefined ? path : formatAddress(makeAddress(host, options.port ?? 0))
    const Bun = bunApi()
    if (Bun === undefined) {
      resume(Effect.fail(new TransportError({ operation: "connect", address: target, cause: notOnBun() })))
      return
    }
    const secure = options.tls !== undefined
    let settled = false
    let abandoned = false
    let opened: BunSocket | undefined
    const fail = (operation: "connect" | "handshake", cause: unknown): void => {
      if (settled) return
      settled = true
      resume(Effect.fail(new TransportError({ operation, address: target, cause })))
    }
    const succeed = (socket: BunSocket): void => {
      if (settled) return
      settled = true
      const connection = new BunConnection(socket, path)
      socket.data = connection
      connection.holdUntilStart()
      resume(Effect.succeed(connection))
    }
    const socket: BunSocketHandler = {
      binaryType: "uint8array",
      open: (socket) => {
        opened = socket
        if (abandoned) socket.terminate()
        else if (!secure) succeed(socket)
      },
      // With a `handshake` handler Bun calls `open` before the TLS handshake; a failed
      // verification calls this with `success` false, then Bun closes the socket.
      ...(secure
        ? {
          handshake: (socket: BunSocket, success: boolean, authorizationError: Error | null) => {
            if (abandoned) socket.terminate()
            else if (success) succeed(socket)
            else {
              fail("handshake", authorizationError ?? new Error("TLS handshake failed"))
              socket.terminate()
            }
          }
        }
        : {}),
      data: onData,
      drain: onDrain,
      end: onEnd,
      close: (socket, error) => {
        if (!settled) {
          fail(secure ? "handshake" : "connect", error ?? new Error("the connection closed while it was being set up"))
        }
        onClose(socket, error)
      },
      error: onError,
      connectError: (_socket, error) => fail("connect", error)
    }
    const serverName = options.tls?.serverName ?? (isIpAddress(host) ? undefined : host)
    // Never an empty object: Bun takes `tls: {}` for no TLS at all, connects in plain TCP, and the
    // handshake this adapter waits for never comes.
    const tls: BunTlsOptions | undefined = options.tls === undefined ? undefined : {
      rejectUnauthorized: true,
      ...(options.tls.ca !== undefined ? { ca: options.tls.ca } : {}),
      ...(serverName !== undefined ? { serverName } : {})
    }
    try {
      Bun.connect(
        path !== undefined ? { unix: path, allowHalfOpen: true, ...(tls !== undefined ? { tls } : {}), socket } : {
          hostname: host,
          port: options.port ?? 0,
          allowHalfOpen: true,
          ...(tls !== undefined ? { tls } : {}),
          socket
        }
      ).then(
        (socket) => {
          if (abandoned) socket.terminate()
        },
        (cause) => fail("connect", cause)
      )
    } catch (cause) {
      fail("connect", cause)
      return
    }
    return Effect.sync(() => {
      abandoned = true
      opened?.terminate()
    })
  })

/**
 * The transport on Bun's native sockets (`Bun.listen` / `Bun.connect`), with TLS and Unix
 * sockets.
 *
 * Closing the `listen` scope stops accepting; connections already accepted stay open until they
 * are ended or destroyed.
 *
 * @since 0.1.0
 * @category transports
 */
export const transport: Transport = { name: "bun", listen, connect }
