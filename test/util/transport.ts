// Helpers for the runtime-specific transport tests (test/transport-*.test.ts): a recording
// connection handler, a listener whose accepted connections are destroyed with its scope, and
// patterned bytes to check that what arrives is what was sent.
import { Deferred, Effect, Exit } from "effect"
import * as Bytes from "../../src/Bytes.ts"
import type { TransportError } from "../../src/Errors.ts"
import type { Connection, ConnectionHandler, Listener, ListenOptions, Transport } from "../../src/Transport.ts"

export const WAIT = "10 seconds"

/** Records what a connection reports: the bytes (copied), the events, drains, and deferreds for end and close. */
export class Recorder implements ConnectionHandler {
  readonly events: Array<string> = []
  readonly chunks: Array<Uint8Array> = []
  length = 0
  drains = 0
  readonly ended: Deferred.Deferred<void> = Deferred.makeUnsafe<void>()
  readonly closed: Deferred.Deferred<TransportError | undefined> = Deferred.makeUnsafe<TransportError | undefined>()
  constructor(
    readonly hooks: {
      readonly data?: (chunk: Uint8Array) => void
      readonly drain?: () => void
      readonly end?: () => void
    } = {}
  ) {}
  onData = (chunk: Uint8Array): void => {
    this.chunks.push(chunk.slice())
    this.length += chunk.length
    this.hooks.data?.(chunk)
  }
  onDrain = (): void => {
    this.drains++
    this.events.push("drain")
    this.hooks.drain?.()
  }
  onEnd = (): void => {
    this.events.push("end")
    Deferred.doneUnsafe(this.ended, Exit.void)
    this.hooks.end?.()
  }
  onClose = (error: TransportError | undefined): void => {
    this.events.push(error === undefined ? "close" : `close:${error.operation}`)
    Deferred.doneUnsafe(this.closed, Exit.succeed(error))
  }
  bytes(): Uint8Array {
    return Bytes.concat(this.chunks)
  }
  text(): string {
    return new TextDecoder().decode(this.bytes())
  }
}

export const portOf = (listener: Listener): number => listener.address._tag === "Tcp" ? listener.address.port : -1

/** Listens until the scope closes; every accepted connection is destroyed then, too. */
export const serve = (transport: Transport, options: ListenOptions, onConnection: (connection: Connection) => void) =>
  Effect.gen(function* () {
    const accepted: Array<Connection> = []
    yield* Effect.addFinalizer(() => Effect.sync(() => accepted.forEach((c) => c.destroy())))
    return yield* transport.listen(options, (connection) => {
      accepted.push(connection)
      onConnection(connection)
    })
  })

/** Connects until the scope closes. */
export const dial = (transport: Transport, options: Parameters<Transport["connect"]>[0]) =>
  Effect.acquireRelease(transport.connect(options), (c) => Effect.sync(() => c.destroy()))

export const wait = <A>(deferred: Deferred.Deferred<A>) => Deferred.await(deferred).pipe(Effect.timeout(WAIT))

/** Waits until `recorder` has received `length` bytes in all. */
export const receivedAll = (recorder: Recorder, length: number) =>
  Effect.gen(function* () {
    while (recorder.length < length) yield* Effect.sleep("1 millis")
  }).pipe(Effect.timeout(WAIT))

const pattern = (i: number): number => (Math.imul(i, 0x9e3779b1) >>> 24) ^ (i >>> 12) & 0xff

/** `length` bytes of a pattern that does not repeat within 4 KiB, from position `from` of it. */
export const patterned = (from: number, length: number): Uint8Array =>
  Uint8Array.from({ length }, (_, i) => pattern(from + i))

/** The first index where `a` and `b` differ, -1 when they are equal. */
export const firstDifference = (a: Uint8Array, b: Uint8Array): number => {
  const length = Math.min(a.length, b.length)
  for (let i = 0; i < length; i++) if (a[i] !== b[i]) return i
  return a.length === b.length ? -1 : length
}
