/**
 * The narrow interface every runtime's socket API is adapted to. A transport listens (and hands
 * over accepted connections) and connects; a connection delivers reads to a handler, writes bytes
 * with backpressure, pauses and resumes reading, half-closes and closes, and tells its addresses.
 *
 * Adapters: `sluice/bun` (`Bun.listen` / `Bun.connect`), `sluice/deno` (`Deno.listen` /
 * `Deno.connect`), `sluice/node` (`node:net`), each with TLS and Unix sockets. `Transport.auto`
 * picks the one of the runtime the program runs on. `sluice/socket` adapts any Effect 4 `Socket`
 * (a WebSocket, say).
 *
 * Callback I/O (Bun, Node) runs a read's work synchronously inside the `data` callback; promise
 * I/O (Deno) runs one read loop per connection. Either way the session above sees `onData`.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { TransportError } from "./Errors.ts"
import * as address from "./internal/address.ts"
import * as runtimeInternal from "./internal/runtime.ts"

/**
 * Where a socket is: a TCP host and port, or a Unix socket path.
 *
 * @since 0.1.0
 * @category models
 */
export type Address =
  | { readonly _tag: "Tcp"; readonly host: string; readonly port: number }
  | { readonly _tag: "Unix"; readonly path: string }

/**
 * The address of a TCP host and port, or of a Unix socket when `path` is given (and not empty).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeAddress: (
  host: string | null | undefined,
  port: number | null | undefined,
  path?: string | undefined
) => Address = address.makeAddress

/**
 * `host:port` (`[host]:port` for IPv6) or the socket path.
 *
 * @since 0.1.0
 * @category conversions
 */
export const formatAddress: (address: Address) => string = address.formatAddress

/**
 * What a connection tells its user. Each is called synchronously from the transport's I/O.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConnectionHandler {
  /**
   * Bytes read. The array stays valid until `onData` returns, and longer while reading is paused
   * from inside `onData` (until `resume`): the transport does not reuse it before then.
   */
  readonly onData: (chunk: Uint8Array) => void
  /** Everything queued by `write` has been handed to the operating system. */
  readonly onDrain: () => void
  /**
   * Optional: part of what `write` queued has been handed to the operating system and part is still
   * queued (`queuedBytes` tells how much). A session resumes at its low-water mark from here, before
   * the queue is empty; `onDrain` still follows once it is.
   */
  readonly onProgress?: (() => void) | undefined
  /** The peer closed its side (FIN): nothing more will be read. */
  readonly onEnd: () => void
  /** The connection is closed, by either side; `error` when it failed (a reset, say). Called once. */
  readonly onClose: (error: TransportError | undefined) => void
}

/**
 * One open connection.
 *
 * @since 0.1.0
 * @category models
 */
export interface Connection {
  readonly remoteAddress: Address
  readonly localAddress: Address
  /** Starts reading; the handler's callbacks run from then on. Call once. */
  start(handler: ConnectionHandler): void
  /**
   * Writes bytes, or queues what the OS does not take at once; queued bytes are coalesced and
   * flushed as one write when the socket drains. The caller may reuse `bytes` as soon as this
   * returns. Returns `true` when nothing is left queued.
   */
  write(bytes: Uint8Array): boolean
  /**
   * Optional: `write` without the copy of what stays queued, for a transport whose socket keeps a
   * reference to what it is given (node:net). Returns `true` when the transport kept `bytes`: the
   * caller must then never modify them again (a `Bytes.Writer` calls `detach`). Callers that reuse
   * their buffers use it when present; `write` is always correct.
   */
  writeNoCopy?(bytes: Uint8Array): boolean
  /**
   * Optional: `write(buffer.subarray(0, length))` without making that view, for a runtime where a
   * view per write costs (JavaScriptCore: Bun). Like `write`, it copies what stays queued; the caller
   * may reuse `buffer` once it returns.
   */
  writeRange?(buffer: Uint8Array, length: number): boolean
  /** Bytes queued in the transport, not yet handed to the OS. */
  readonly queuedBytes: number
  /** Stops reading (the kernel's buffer then fills and the peer's sends stall). */
  pause(): void
  /** Resumes reading. */
  resume(): void
  /** Flushes what is queued, then closes the write side (FIN). Reading goes on until the peer ends. */
  end(): void
  /** Closes at once, dropping what is queued. */
  destroy(): void
}

/**
 * Options of `listen`.
 *
 * @since 0.1.0
 * @category models
 */
export interface ListenOptions {
  /** Host to bind; default `"127.0.0.1"`. Ignored with `path`. */
  readonly host?: string | undefined
  /** Port; 0 (the default) picks a free one, reported in `Listener.address`. */
  readonly port?: number | undefined
  /** A Unix domain socket path instead of TCP. */
  readonly path?: string | undefined
  /** Lets several processes bind the same port (Bun; Deno with `--unstable-net`; Linux). */
  readonly reusePort?: boolean | undefined
  /**
   * TLS: PEM certificate chain and private key; a client that has not finished its handshake
   * within `handshakeTimeout` milliseconds (default 10 000) is dropped.
   */
  readonly tls?:
    | { readonly cert: string; readonly key: string; readonly handshakeTimeout?: number | undefined }
    | undefined
}

/**
 * Options of `connect`.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConnectOptions {
  readonly host?: string | undefined
  readonly port?: number | undefined
  readonly path?: string | undefined
  /**
   * TLS: the CA certificates to trust (PEM) and the name to check the server's certificate
   * against (default: `host`).
   */
  readonly tls?: { readonly ca?: string | undefined; readonly serverName?: string | undefined } | undefined
}

/**
 * A bound listener.
 *
 * @since 0.1.0
 * @category models
 */
export interface Listener {
  /** Where it listens (the bound port when 0 was asked). */
  readonly address: Address
}

/**
 * A runtime's sockets.
 *
 * @since 0.1.0
 * @category models
 */
export interface Transport {
  readonly name: string
  /**
   * Listens until the scope closes; `onConnection` receives each accepted connection, not yet
   * started.
   */
  readonly listen: (
    options: ListenOptions,
    onConnection: (connection: Connection) => void
  ) => Effect.Effect<Listener, TransportError, Scope.Scope>
  /** Connects. Interrupting it abandons the attempt. */
  readonly connect: (options: ConnectOptions) => Effect.Effect<Connection, TransportError>
}

/**
 * The transport in use, as a service; `Transport.auto` when none is provided.
 *
 * @since 0.1.0
 * @category services
 */
export const CurrentTransport: Context.Service<Transport, Transport> = Context.Service<Transport>("sluice/Transport")

/**
 * The runtime this program runs on: `globalThis.Bun`, else `globalThis.Deno`, else Node.
 *
 * @since 0.1.0
 * @category runtime
 */
export const runtime: "bun" | "deno" | "node" = runtimeInternal.runtime

/**
 * The transport of the runtime this program runs on: Bun's, Deno's or Node's native sockets.
 *
 * @since 0.1.0
 * @category constructors
 */
export const auto: Effect.Effect<Transport> = Effect.promise(async (): Promise<Transport> => {
  switch (runtime) {
    case "bun":
      return (await import("./transport/bun.ts")).transport
    case "deno":
      return (await import("./transport/deno.ts")).transport
    default:
      return (await import("./transport/node.ts")).transport
  }
})

/**
 * The transport in the context, or `auto`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const current: Effect.Effect<Transport> = Effect.flatMap(
  Effect.serviceOption(CurrentTransport),
  (option) => option._tag === "Some" ? Effect.succeed(option.value) : auto
)
