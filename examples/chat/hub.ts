/**
 * The chat's rooms and names, for one server: who is connected, under which nickname, in which room.
 * A line said in a room goes to the room's other members here, and to a `Bridge` (Redis pub/sub)
 * when the server shares its rooms with others.
 *
 * Slow readers: a broadcast never waits for anyone. Each member's queued bytes are bounded by the
 * session's `maxOutboundBytes`; a member past it (`OutboundOverflow`) is dropped, as Redis drops a
 * subscriber past its client-output-buffer-limit, and the others go on. Memory stays bounded.
 */
import { Effect } from "effect"
import type { Session } from "../../src/index.ts"

/** What the server keeps per connection. */
export interface Member {
  nick: string
  room: string
  /** When the peer last sent a line (ms), for the heartbeat. */
  lastHeard: number
  /** Rate limit: lines the peer may still send now, refilled over time. */
  tokens: number
  refilledAt: number
}

export type ChatSession = Session.Session<string, Member>

/** Where a server publishes what is said in its rooms, so that other servers can tell their members. */
export interface Bridge {
  readonly publish: (room: string, line: string) => Effect.Effect<void>
}

export const nickPattern = /^[A-Za-z0-9_-]{1,24}$/

export class Hub {
  /** Every member here, with what the server keeps of it (also its session's state, once open). */
  private readonly members = new Map<ChatSession, Member>()
  private readonly byNick = new Map<string, ChatSession>()
  private readonly rooms = new Map<string, Set<ChatSession>>()
  bridge: Bridge | undefined = undefined
  /** Members dropped because they did not read (their outbound bytes passed the limit). */
  dropped = 0

  /** A fresh nickname nobody here has. */
  freshNick(): string {
    for (;;) {
      const nick = `guest-${Math.floor(Math.random() * 0x10000).toString(16).padStart(4, "0")}`
      if (!this.byNick.has(nick)) return nick
    }
  }

  /** Adds a member (a new connection), in `member.room`. */
  add(session: ChatSession, member: Member): void {
    this.members.set(session, member)
    this.byNick.set(member.nick, session)
    this.enter(session, member.room)
  }

  /** Whether a session is (still) a member: one that quit or was dropped is not, while it closes. */
  has(session: ChatSession): boolean {
    return this.members.has(session)
  }

  /** Removes a member (a connection that ends); what it was, or undefined if it was not here. */
  remove(session: ChatSession): Member | undefined {
    const member = this.members.get(session)
    if (member === undefined) return undefined
    this.members.delete(session)
    this.exit(session, member.room)
    if (this.byNick.get(member.nick) === session) this.byNick.delete(member.nick)
    return member
  }

  /** Moves a member to another room; the room it left. */
  move(session: ChatSession, room: string): string {
    const member = this.members.get(session)!
    const old = member.room
    this.exit(session, old)
    member.room = room
    this.enter(session, room)
    return old
  }

  /** Renames a member; false when the name is taken. */
  rename(session: ChatSession, nick: string): boolean {
    const member = this.members.get(session)!
    const holder = this.byNick.get(nick)
    if (holder !== undefined && holder !== session) return false
    this.byNick.delete(member.nick)
    member.nick = nick
    this.byNick.set(nick, session)
    return true
  }

  /** Nicknames in a room, here. */
  who(room: string): Array<string> {
    return [...(this.rooms.get(room) ?? [])].map((s) => this.members.get(s)!.nick).sort()
  }

  private enter(session: ChatSession, room: string): void {
    let members = this.rooms.get(room)
    if (members === undefined) this.rooms.set(room, members = new Set())
    members.add(session)
  }

  private exit(session: ChatSession, room: string): void {
    const members = this.rooms.get(room)
    members?.delete(session)
    if (members?.size === 0) this.rooms.delete(room)
  }

  /** Tells a room's members here (but `except`), and the other servers through the bridge. */
  say(room: string, line: string, except?: ChatSession): Effect.Effect<void> {
    const local = this.deliver(room, line, except)
    const bridge = this.bridge
    return bridge === undefined ? local : Effect.andThen(local, bridge.publish(room, line))
  }

  /** Tells a room's members here only (a line from another server). */
  deliver(room: string, line: string, except?: ChatSession): Effect.Effect<void> {
    return Effect.suspend(() => {
      const members = this.rooms.get(room)
      if (members === undefined) return Effect.void
      const laggards: Array<ChatSession> = []
      const sends: Array<Effect.Effect<void>> = []
      for (const member of members) {
        if (member === except) continue
        sends.push(
          member.send(line).pipe(
            Effect.catchTag("OutboundOverflow", () => Effect.sync(() => laggards.push(member))),
            // A member that is already gone is not an error of the sender's.
            Effect.ignore
          )
        )
      }
      return Effect.andThen(Effect.all(sends, { discard: true }), Effect.suspend(() => this.drop(laggards)))
    })
  }

  /** Drops members that do not read: out of the hub, their connections closed, their room told. */
  private drop(laggards: ReadonlyArray<ChatSession>): Effect.Effect<void> {
    return Effect.forEach(laggards, (session) =>
      Effect.suspend(() => {
        const member = this.remove(session)
        if (member === undefined) return Effect.void
        this.dropped++
        return Effect.andThen(session.close, this.say(member.room, `* ${member.nick} left (not reading)`))
      }), { discard: true })
  }
}
