/**
 * Pub/sub, as pubsub.c has it: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, PUBLISH.
 *
 * A message goes to each subscriber with `session.send`: a broadcast, written between that
 * connection's replies, in its own protocol (an array in RESP2, a `>` push in RESP3).
 *
 * A slow subscriber is bounded by the server's `maxOutboundBytes`: once that many bytes wait for it,
 * `send` fails with `OutboundOverflow`, and the subscriber is dropped at once, as Redis's
 * `client-output-buffer-limit pubsub` drops it: its subscriptions go, a warning says why, and its
 * connection is closed. A subscriber that stops reading altogether is also closed by the session's
 * `writeTimeout` (no progress for that long).
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { Errors } from "../../../src/index.ts"
import { stringMatch } from "../glob.ts"
import type { Args } from "../args.ts"
import { bytesOf, Many, Raw, type Reply } from "../reply.ts"
import { command, type Conn, type PubSubRegistry, type Shared, type Spec } from "./spec.ts"

const bulk = (text: string): Raw => new Raw(bytesOf(`$${text.length}\r\n${text}\r\n`))
const MESSAGE = bulk("message")
const PMESSAGE = bulk("pmessage")
const SUBSCRIBE = bulk("subscribe")
const UNSUBSCRIBE = bulk("unsubscribe")
const PSUBSCRIBE = bulk("psubscribe")
const PUNSUBSCRIBE = bulk("punsubscribe")

/** Channels + patterns: what (un)subscribe replies count (Redis's `clientSubscriptionsCount`). */
const countOf = (conn: Conn): number => conn.channels.size + conn.patterns.size

/** Who listens to what, across the server's connections. */
export class PubSub implements PubSubRegistry {
  private readonly channels = new Map<string, Set<Conn>>()
  private readonly patterns = new Map<string, Set<Conn>>()

  get channelCount(): number {
    return this.channels.size
  }

  get patternCount(): number {
    return this.patterns.size
  }

  subscribe(conn: Conn, channel: string): boolean {
    return add(this.channels, conn.channels, conn, channel)
  }

  unsubscribe(conn: Conn, channel: string): boolean {
    return remove(this.channels, conn.channels, conn, channel)
  }

  psubscribe(conn: Conn, pattern: string): boolean {
    return add(this.patterns, conn.patterns, conn, pattern)
  }

  punsubscribe(conn: Conn, pattern: string): boolean {
    return remove(this.patterns, conn.patterns, conn, pattern)
  }

  /** Forgets every subscription of a connection (it closed, or was dropped). */
  removeAll(conn: Conn): void {
    for (const channel of [...conn.channels]) this.unsubscribe(conn, channel)
    for (const pattern of [...conn.patterns]) this.punsubscribe(conn, pattern)
  }

  /**
   * Sends a message to the channel's subscribers, then to those of matching patterns; returns how
   * many it was sent to (Redis counts each subscriber a message was queued for).
   */
  publish(channel: string, message: Uint8Array): number {
    let receivers = 0
    const subscribers = this.channels.get(channel)
    if (subscribers !== undefined) {
      const name = bytesOf(channel)
      for (const conn of subscribers) {
        this.deliver(conn, conn.proto.push([MESSAGE, name, message]))
        receivers++
      }
    }
    if (this.patterns.size > 0) {
      for (const [pattern, conns] of this.patterns) {
        if (!stringMatch(pattern, channel)) continue
        const name = bytesOf(channel)
        const patternBytes = bytesOf(pattern)
        for (const conn of conns) {
          this.deliver(conn, conn.proto.push([PMESSAGE, patternBytes, name, message]))
          receivers++
        }
      }
    }
    return receivers
  }

  private deliver(conn: Conn, reply: Reply): void {
    const exit = Effect.runSyncExit(conn.session.send(reply))
    if (Exit.isSuccess(exit)) return
    const error = Cause.findErrorOption(exit.cause)
    if (error._tag === "Some" && error.value instanceof Errors.OutboundOverflow) this.drop(conn, error.value)
  }

  /** Redis's `client-output-buffer-limit pubsub`: the subscriber is dropped, with a warning that says why. */
  private drop(conn: Conn, overflow: Errors.OutboundOverflow): void {
    this.removeAll(conn)
    Effect.runFork(
      Effect.andThen(
        Effect.logWarning(
          `subscriber id=${conn.id} closed for overcoming its output buffer limit: ${overflow.queuedBytes} bytes ` +
            `queued, maxOutboundBytes is ${overflow.limit}`
        ),
        conn.session.close
      )
    )
  }
}

const add = (registry: Map<string, Set<Conn>>, own: Set<string>, conn: Conn, name: string): boolean => {
  if (own.has(name)) return false
  own.add(name)
  let conns = registry.get(name)
  if (conns === undefined) registry.set(name, conns = new Set())
  conns.add(conn)
  return true
}

const remove = (registry: Map<string, Set<Conn>>, own: Set<string>, conn: Conn, name: string): boolean => {
  if (!own.delete(name)) return false
  const conns = registry.get(name)
  if (conns !== undefined) {
    conns.delete(conn)
    if (conns.size === 0) registry.delete(name)
  }
  return true
}

const subscribe = command("subscribe", (args, conn, shared) => {
  const replies: Array<Reply> = []
  for (let j = 1; j < args.length; j++) {
    shared.pubsub.subscribe(conn, args.key(j))
    replies.push(conn.proto.push([SUBSCRIBE, args.bytes(j), countOf(conn)]))
  }
  return new Many(replies)
}, { pubsub: true })

const psubscribe = command("psubscribe", (args, conn, shared) => {
  const replies: Array<Reply> = []
  for (let j = 1; j < args.length; j++) {
    shared.pubsub.psubscribe(conn, args.key(j))
    replies.push(conn.proto.push([PSUBSCRIBE, args.bytes(j), countOf(conn)]))
  }
  return new Many(replies)
}, { pubsub: true })

/** UNSUBSCRIBE and PUNSUBSCRIBE: the names given, or all; with none to leave, one reply with a null name. */
const leave = (kind: "channels" | "patterns") => (args: Args, conn: Conn, shared: Shared): Reply => {
  const header = kind === "channels" ? UNSUBSCRIBE : PUNSUBSCRIBE
  const replies: Array<Reply> = []
  const names = args.length > 1 ? Array.from({ length: args.length - 1 }, (_, j) => args.key(j + 1)) : [...conn[kind]]
  for (const name of names) {
    if (kind === "channels") shared.pubsub.unsubscribe(conn, name)
    else shared.pubsub.punsubscribe(conn, name)
    replies.push(conn.proto.push([header, bytesOf(name), countOf(conn)]))
  }
  if (replies.length === 0) replies.push(conn.proto.push([header, conn.proto.nil, countOf(conn)]))
  return new Many(replies)
}

const publish = command("publish", (args, _conn, shared) => shared.pubsub.publish(args.key(1), args.bytes(2)))

const unsubscribe = command("unsubscribe", leave("channels"), { pubsub: true })
const punsubscribe = command("punsubscribe", leave("patterns"), { pubsub: true })

export const pubsub: ReadonlyArray<Spec> = [subscribe, unsubscribe, psubscribe, punsubscribe, publish]
