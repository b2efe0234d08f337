/**
 * Pub/sub on a connection of its own, as Redis clients usually do it.
 *
 * - SUBSCRIBE and its kin are sent without waiting for a reply; their confirmations (arrays in
 *   RESP2, `>` pushes in RESP3) and the messages are server pushes (sluice's `isPush`), so they
 *   never take the place of a reply. `subscribe` completes once every channel is confirmed.
 * - Messages go into a bounded queue that `messages` streams out, in order. A consumer that falls
 *   `capacity` messages behind fails the stream with `SubscriberOverflow` rather than letting memory
 *   grow (the client-side twin of the server's limit on a slow subscriber).
 * - The connection's end is noticed at once (the client's `onDisconnect`): the stream fails with
 *   `SubscriberClosed`. Nothing is asked on this connection after the handshake, so anything that
 *   is not a pub/sub message or confirmation is the server answering something else: the stream
 *   fails with `SubscriberClosed` too.
 */
import * as Cause from "effect/Cause"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { connect, type ConnectError, handshake, type Options, type RespError, UnexpectedReply } from "./link.ts"
import { Push, RedisError, text, type Value } from "./values.ts"

/** A message: its channel, its bytes (and their text), and the pattern it matched (PSUBSCRIBE). */
export interface Message {
  readonly channel: string
  readonly message: string
  readonly payload: Uint8Array
  readonly pattern: string | undefined
}

/** The subscriber's connection ended (`cause`: why, as sluice or Redis said it). */
export class SubscriberClosed extends Data.TaggedError("SubscriberClosed")<{
  readonly reason: string
  readonly cause?: unknown
}> {
  override get message(): string {
    const cause = this.cause
    return `subscriber closed: ${this.reason}${cause instanceof Error ? `: ${cause.message}` : ""}`
  }
}

/** The consumer fell `capacity` messages behind. */
export class SubscriberOverflow extends Data.TaggedError("SubscriberOverflow")<{ readonly capacity: number }> {
  override get message(): string {
    return `subscriber overflow: ${this.capacity} messages not yet consumed; raise capacity or consume faster`
  }
}

/** What the messages stream can fail with. */
export type SubscriberError = SubscriberClosed | SubscriberOverflow

/** A subscriber: its subscriptions, and the stream of their messages. */
export interface Subscriber {
  /** Subscribes, and waits for Redis to confirm every channel. */
  subscribe(...channels: ReadonlyArray<string>): Effect.Effect<void, RespError | SubscriberError>
  /** Unsubscribes (from every channel when none is given), and waits for the confirmations. */
  unsubscribe(...channels: ReadonlyArray<string>): Effect.Effect<void, RespError | SubscriberError>
  psubscribe(...patterns: ReadonlyArray<string>): Effect.Effect<void, RespError | SubscriberError>
  punsubscribe(...patterns: ReadonlyArray<string>): Effect.Effect<void, RespError | SubscriberError>
  /** The channels and patterns subscribed to now (as confirmed). */
  readonly channels: ReadonlySet<string>
  readonly patterns: ReadonlySet<string>
  /** Every message, in the order Redis sent them; one consumer at a time. */
  readonly messages: Stream.Stream<Message, SubscriberError>
}

const KINDS = new Set(["subscribe", "unsubscribe", "psubscribe", "punsubscribe", "message", "pmessage"])

/** The items of a pub/sub push: a RESP3 push, or (RESP2) an array that starts with one of its kinds. */
const pushItems = (value: Value): ReadonlyArray<Value> | undefined => {
  const items = value instanceof Push ? value.items : Array.isArray(value) ? value : undefined
  if (items === undefined || items.length < 3) return undefined
  const kind = text(items[0]!)
  return kind !== undefined && KINDS.has(kind) ? items : undefined
}

/** A subscriber on a connection of its own, closed with the scope. */
export const make = (
  options: Options & { readonly capacity?: number | undefined }
): Effect.Effect<Subscriber, ConnectError, Scope.Scope> =>
  Effect.gen(function* () {
    const capacity = options.capacity ?? 10_000
    const queue = yield* Queue.bounded<Message, SubscriberError | Cause.Done>(capacity)
    const channels = new Set<string>()
    const patterns = new Set<string>()
    /** Who waits for which confirmation (`"subscribe:news"`), oldest first. */
    const waiting = new Map<string, Array<() => void>>()
    const closed = Deferred.makeUnsafe<never, SubscriberError>()

    const end = (error: SubscriberError): void => {
      Queue.failCauseUnsafe(queue, Cause.fail(error))
      Deferred.doneUnsafe(closed, Exit.fail(error))
    }

    const onPush = (items: ReadonlyArray<Value>): void => {
      const kind = text(items[0]!)!
      if (kind === "message" || kind === "pmessage") {
        const [pattern, channel, payload] = kind === "message" ? [undefined, items[1], items[2]] : items.slice(1)
        const bytes = payload instanceof Uint8Array ? payload : new TextEncoder().encode(text(payload!) ?? "")
        const message: Message = {
          channel: text(channel!) ?? "",
          message: text(bytes)!,
          payload: bytes,
          pattern: pattern === undefined ? undefined : text(pattern)
        }
        if (!Queue.offerUnsafe(queue, message)) end(new SubscriberOverflow({ capacity }))
        return
      }
      const name = items[1] === null ? undefined : text(items[1]!)
      if (name !== undefined) {
        const own = kind.startsWith("p") ? patterns : channels
        if (kind.endsWith("unsubscribe")) own.delete(name)
        else own.add(name)
        waiting.get(`${kind}:${name}`)?.shift()?.()
      }
    }

    const client = yield* connect(options, {
      isPush: (value) => value instanceof Push || pushItems(value) !== undefined,
      onPush: (value) =>
        Effect.sync(() => {
          const items = pushItems(value)
          if (items !== undefined) return onPush(items)
          end(
            new SubscriberClosed({
              reason: "the server answered something else than a pub/sub message",
              cause: value instanceof RedisError
                ? value
                : new UnexpectedReply({ command: "SUBSCRIBE", expected: "a pub/sub push", reply: value })
            })
          )
        }),
      onDisconnect: (error) =>
        Effect.sync(() => end(new SubscriberClosed({ reason: "the connection to the server ended", cause: error })))
    })
    yield* handshake(client, options)
    yield* Effect.addFinalizer(() => Effect.sync(() => Queue.endUnsafe(queue)))

    /** Sends `command names...` and waits for one confirmation per name. */
    const request = (command: string, names: ReadonlyArray<string>) =>
      Effect.gen(function* () {
        if (names.length === 0) return
        const kind = command.toLowerCase()
        const confirmations = names.map((name) => {
          const done = Deferred.makeUnsafe<void>()
          const key = `${kind}:${name}`
          const list = waiting.get(key) ?? []
          list.push(() => Deferred.doneUnsafe(done, Effect.void))
          waiting.set(key, list)
          return Deferred.await(done)
        })
        yield* client.send([command, ...names])
        yield* Effect.raceFirst(Effect.all(confirmations, { discard: true }), Deferred.await(closed))
      })

    return {
      subscribe: (...names) => request("SUBSCRIBE", names),
      unsubscribe: (...names) => request("UNSUBSCRIBE", names.length > 0 ? names : [...channels]),
      psubscribe: (...names) => request("PSUBSCRIBE", names),
      punsubscribe: (...names) => request("PUNSUBSCRIBE", names.length > 0 ? names : [...patterns]),
      channels,
      patterns,
      messages: Stream.fromQueue(queue)
    }
  })

/** The messages of some channels or patterns, on a connection opened while the stream runs. */
export const stream = (
  options: Options,
  subscriptions: { readonly channels?: ReadonlyArray<string>; readonly patterns?: ReadonlyArray<string> }
): Stream.Stream<Message, SubscriberError | ConnectError> =>
  Stream.unwrap(
    Effect.gen(function* () {
      const subscriber = yield* make(options)
      if (subscriptions.channels !== undefined) yield* subscriber.subscribe(...subscriptions.channels)
      if (subscriptions.patterns !== undefined) yield* subscriber.psubscribe(...subscriptions.patterns)
      return subscriber.messages
    })
  )
