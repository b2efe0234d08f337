/**
 * A raw TCP peer for tests, on node:net (available on Node, Bun and Deno), independent of the
 * transports under test.
 */
import * as Effect from "effect/Effect"
import * as net from "node:net"
import * as Bytes from "../../src/Bytes.ts"

export interface Peer {
  readonly socket: net.Socket
  /** Everything received so far. */
  readonly received: () => Uint8Array
  /** Waits until at least `n` bytes have arrived (or the socket closes). */
  readonly waitFor: (n: number, timeoutMs?: number) => Promise<Uint8Array>
  readonly closed: Promise<{ readonly hadError: boolean }>
  readonly ended: Promise<void>
  write(bytes: Uint8Array | string): void
  end(): void
  destroy(): void
}

export const connectPeer = (
  port: number,
  options?: { readonly paused?: boolean; readonly halfOpen?: boolean }
): Promise<Peer> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Uint8Array> = []
    let size = 0
    const waiters: Array<() => void> = []
    // Like most clients, a peer closes when the server closes, unless `halfOpen`.
    const socket = net.connect({ host: "127.0.0.1", port, allowHalfOpen: options?.halfOpen ?? false })
    let resolveClosed!: (v: { hadError: boolean }) => void
    const closed = new Promise<{ hadError: boolean }>((r) => (resolveClosed = r))
    let resolveEnded!: () => void
    const ended = new Promise<void>((r) => (resolveEnded = r))
    let isClosed = false
    socket.on("data", (chunk: Uint8Array) => {
      chunks.push(new Uint8Array(chunk))
      size += chunk.length
      for (const w of waiters.splice(0)) w()
    })
    socket.on("end", () => {
      resolveEnded()
      for (const w of waiters.splice(0)) w()
    })
    socket.on("error", () => {})
    socket.on("close", (hadError) => {
      isClosed = true
      resolveClosed({ hadError })
      for (const w of waiters.splice(0)) w()
    })
    socket.once("connect", () => {
      if (options?.paused) socket.pause()
      resolve({
        socket,
        received: () => Bytes.concat(chunks),
        waitFor: (n, timeoutMs = 10_000) =>
          new Promise((res, rej) => {
            const deadline = setTimeout(
              () => rej(new Error(`timed out waiting for ${n} bytes, have ${size}`)),
              timeoutMs
            )
            const check = () => {
              if (size >= n || isClosed) {
                clearTimeout(deadline)
                res(Bytes.concat(chunks))
              } else waiters.push(check)
            }
            check()
          }),
        closed,
        ended,
        write: (bytes) => {
          socket.write(typeof bytes === "string" ? bytes : Buffer.from(bytes))
        },
        end: () => {
          socket.end()
        },
        destroy: () => {
          socket.destroy()
        }
      })
    })
    socket.once("error", reject)
  })

/** A peer as a scoped resource: destroyed when the scope closes. */
export const peer = (port: number, options?: { readonly paused?: boolean; readonly halfOpen?: boolean }) =>
  Effect.acquireRelease(Effect.promise(() => connectPeer(port, options)), (p) => Effect.sync(() => p.destroy()))
