/**
 * Deno's native sockets (`Deno.listen`, `Deno.listenTls`, `Deno.connect`, `Deno.connectTls`, Unix
 * sockets) as a sluice transport.
 *
 * Deno's I/O is promise-based: each connection runs one async read loop (`conn.read` into a reused
 * buffer, `onData` called synchronously with a view of it) and one async write loop (a single
 * `conn.write` in flight; bytes written meanwhile are copied into one buffer of unsent bytes and flushed as
 * one write when it completes). `Deno` is reached through `globalThis`, so this module can be
 * imported anywhere; `listen` and `connect` fail with a `TransportError` off Deno.
 *
 * Buffers follow the traffic, so that an idle or lightly used connection costs little: the read
 * buffer starts at 8 KiB, doubles when a read fills it (up to 64 KiB) and halves after a run of
 * small reads; write buffers are made on the first write, and big ones are dropped after a run of
 * small flushes.
 *
 * Deno quirks worth knowing: a reset from the peer (RST) reads as a plain end of stream (`onEnd`), not
 * as an error; only a later write fails (broken pipe). `reusePort` is unstable in Deno and needs
 * `--unstable-net` (without it Deno would exit the process, so `listen` refuses it up front).
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { TransportError } from "../Errors.ts"
import type { Address, Connection, ConnectOptions, Listener, ListenOptions, Transport } from "../Transport.ts"
import { formatAddress } from "../internal/address.ts"
import {
  ACCEPT_RETRY_MILLIS,
  closeQuietly,
  type DenoConn,
  DenoConnection,
  type DenoListener,
  type DenoNamespace,
  TLS_HANDSHAKE_TIMEOUT_MILLIS,
  toAddress
} from "../internal/deno-connection.ts"
import { denoGlobal } from "../internal/runtime.ts"

const denoNamespace = (): DenoNamespace | undefined => denoGlobal<DenoNamespace>()

const notOnDeno = (): Error =>
  new Error(
    "globalThis.Deno is undefined: the deno transport runs only on Deno (use Transport.auto to pick the runtime's)"
  )

// --- Listen -------------------------------------------------------------------------------------

interface Server {
  readonly listener: DenoListener
  readonly address: Address
  stopped: boolean
  done: Promise<void>
}

const sleep = (millis: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, millis))

const openListener = (deno: DenoNamespace, options: ListenOptions): DenoListener => {
  if (options.path !== undefined) return deno.listen({ transport: "unix", path: options.path })
  const hostname = options.host ?? "127.0.0.1"
  const port = options.port ?? 0
  const reusePort = options.reusePort === true ? { reusePort: true } : {}
  if (options.reusePort === true && typeof deno.listenDatagram !== "function") {
    // Deno exits the whole process when an unstable option is used without its flag: refuse first.
    throw new Error('reusePort is an unstable Deno API: run deno with --unstable-net (or "unstable": ["net"])')
  }
  return options.tls !== undefined
    ? deno.listenTls({ hostname, port, cert: options.tls.cert, key: options.tls.key, ...reusePort })
    : deno.listen({ transport: "tcp", hostname, port, ...reusePort })
}

/** Hands a TLS connection over once its handshake is done; one that fails or stalls is dropped. */
const handOverTls = (
  server: Server,
  conn: DenoConn,
  handshakeMillis: number,
  hand: (conn: DenoConn) => void
): void => {
  const timer = setTimeout(() => closeQuietly(conn), handshakeMillis)
  conn.handshake!().then(
    () => {
      clearTimeout(timer)
      if (server.stopped) closeQuietly(conn)
      else hand(conn)
    },
    () => {
      clearTimeout(timer)
      closeQuietly(conn)
    }
  )
}

const acceptLoop = async (
  deno: DenoNamespace,
  server: Server,
  options: ListenOptions,
  onConnection: (connection: Connection) => void
): Promise<void> => {
  const hand = (conn: DenoConn): void => {
    try {
      onConnection(new DenoConnection(conn, options.path))
    } catch {
      // A bug above in one connection's setup must not stop the server: drop that connection.
      closeQuietly(conn)
    }
  }
  while (!server.stopped) {
    let conn: DenoConn
    try {
      conn = await server.listener.accept()
    } catch (cause) {
      if (server.stopped || cause instanceof deno.errors.BadResource) return
      await sleep(ACCEPT_RETRY_MILLIS)
      continue
    }
    if (server.stopped) {
      closeQuietly(conn)
      return
    }
    if (options.tls !== undefined && typeof conn.handshake === "function") {
      handOverTls(server, conn, options.tls.handshakeTimeout ?? TLS_HANDSHAKE_TIMEOUT_MILLIS, hand)
    } else hand(conn)
  }
}

const listen = (
  options: ListenOptions,
  onConnection: (connection: Connection) => void
): Effect.Effect<Listener, TransportError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.try({
      try: (): Server => {
        const deno = denoNamespace()
        if (deno === undefined) throw notOnDeno()
        const listener = openListener(deno, options)
        const server: Server = {
          listener,
          address: toAddress(listener.addr, options.path),
          stopped: false,
          done: Promise.resolve()
        }
        server.done = acceptLoop(deno, server, options, onConnection)
        return server
      },
      catch: (cause) =>
        new TransportError({
          operation: "listen",
          address: options.path ?? formatAddress({
            _tag: "Tcp",
            host: options.host ?? "127.0.0.1",
            port: options.port ?? 0
          }),
          cause
        })
    }),
    (server) =>
      Effect.promise(() => {
        server.stopped = true
        try {
          server.listener.close()
        } catch {
          // already closed
        }
        // Deno may hold the port until the pending accept has rejected: wait for the loop to end.
        return server.done
      })
  ).pipe(Effect.map((server): Listener => ({ address: server.address })))

// --- Connect ------------------------------------------------------------------------------------

const connect = (options: ConnectOptions): Effect.Effect<Connection, TransportError> =>
  Effect.callback<Connection, TransportError>((resume) => {
    const host = options.host ?? "127.0.0.1"
    const port = options.port ?? 0
    const target = options.path ?? formatAddress({ _tag: "Tcp", host, port })
    const failed = (operation: "connect" | "handshake", cause: unknown) =>
      new TransportError({ operation, address: target, cause })
    const deno = denoNamespace()
    if (deno === undefined) {
      resume(Effect.fail(failed("connect", notOnDeno())))
      return
    }
    const controller = new AbortController()
    let abandoned = false
    let opening: DenoConn | undefined
    const open = async (): Promise<DenoConn> => {
      if (options.path !== undefined) return deno.connect({ transport: "unix", path: options.path })
      const tls = options.tls
      if (tls === undefined) return deno.connect({ hostname: host, port, signal: controller.signal })
      const caCerts = tls.ca !== undefined ? [tls.ca] : undefined
      // `Deno.connectTls` checks the certificate against `hostname`; another name needs `startTls`.
      opening = tls.serverName === undefined || tls.serverName === host
        ? await deno.connectTls({ hostname: host, port, caCerts })
        : await deno.startTls(await deno.connect({ hostname: host, port, signal: controller.signal }), {
          hostname: tls.serverName,
          caCerts
        })
      if (abandoned) return opening
      try {
        await opening.handshake?.()
      } catch (cause) {
        closeQuietly(opening)
        throw failed("handshake", cause)
      }
      return opening
    }
    open().then(
      (conn) => {
        if (abandoned) closeQuietly(conn)
        else resume(Effect.succeed(new DenoConnection(conn, options.path)))
      },
      (cause) => {
        if (!abandoned) resume(Effect.fail(cause instanceof TransportError ? cause : failed("connect", cause)))
      }
    )
    return Effect.sync(() => {
      abandoned = true
      controller.abort()
      if (opening !== undefined) closeQuietly(opening)
    })
  })

/**
 * Deno's native transport: `Deno.listen` / `Deno.listenTls` / Unix sockets and `Deno.connect` /
 * `Deno.connectTls`, with one async read loop and one coalescing write loop per connection.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { transport } from "sluice/deno"
 *
 * const program = transport.listen({ port: 0 }, (connection) =>
 *   connection.start({
 *     onData: (chunk) => connection.write(chunk),
 *     onDrain: () => {},
 *     onEnd: () => connection.end(),
 *     onClose: () => {}
 *   }))
 * ```
 *
 * @since 0.1.0
 * @category transports
 */
export const transport: Transport = { name: "deno", listen, connect }
