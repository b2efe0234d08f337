/**
 * The chat's line protocol, usable from `nc`: one UTF-8 line per message, LF or CRLF.
 *
 * ```text
 * -> (connect)
 * <- * welcome to sluice chat: you are guest-3f9a, in room lobby (/help for commands)
 * -> hello
 *    (everyone else in lobby gets "guest-3f9a: hello")
 * -> /nick ada
 * <- * you are now ada
 * -> /join rust
 * <- * you are in rust, with 2 others
 * -> /who
 * <- * in rust: ada, bob, cy
 * -> /quit
 * <- * bye, ada
 *    (closed)
 * ```
 *
 * Lines from the server that are not someone's words start with `* ` (news) or `! ` (refusals).
 * Limits: a line over `maxLineBytes` is refused with a last line, then the connection closes; a line
 * that is not valid UTF-8 is refused and the connection kept; more than `rate` lines per second
 * (with a burst of twice that) are refused; a peer silent for `silence` is told why and dropped by
 * the heartbeat; a peer that does not read what it is sent is dropped (see hub.ts).
 */
import { Clock, Duration, Effect, Schedule } from "effect"
import { Frame, Handler, Packet, Pipeline, type Session } from "../../src/index.ts"
import { type ChatSession, type Hub, type Member, nickPattern } from "./hub.ts"

export interface Config {
  /** The longest line a peer may send, in bytes. Default 1024. */
  readonly maxLineBytes?: number | undefined
  /** Lines per second a peer may send (bursts of twice that). Default 10. */
  readonly rate?: number | undefined
  /** How often the heartbeat looks. Default 10 s. */
  readonly heartbeat?: Duration.Input | undefined
  /** Silence after which the heartbeat drops a peer. Default 5 minutes. */
  readonly silence?: Duration.Input | undefined
  /** Queued outbound bytes past which a peer that does not read is dropped. Default 256 KiB. */
  readonly maxOutboundBytes?: number | undefined
}

const help = "* commands: /nick NAME, /join ROOM, /who, /quit; anything else is said to your room"

/** Refills the peer's rate-limit bucket; whether it may send one more line now. */
const admit = (member: Member, now: number, rate: number): boolean => {
  const burst = rate * 2
  member.tokens = Math.min(burst, member.tokens + ((now - member.refilledAt) / 1000) * rate)
  member.refilledAt = now
  if (member.tokens < 1) return false
  member.tokens -= 1
  return true
}

/** The server options of a chat on `hub`: pipeline, hooks and limits. */
export const chat = (hub: Hub, config: Config = {}) => {
  const maxLineBytes = config.maxLineBytes ?? 1024
  const rate = config.rate ?? 10
  const silenceMillis = Duration.toMillis(Duration.fromInputUnsafe(config.silence ?? "5 minutes"))

  const command = (line: string, session: ChatSession): Effect.Effect<Array<string>> =>
    Effect.gen(function* () {
      const member = session.state
      const [verb, ...rest] = line.split(" ")
      const argument = rest.join(" ").trim()
      switch (verb) {
        case "/nick": {
          if (!nickPattern.test(argument)) return ["! a nickname is 1 to 24 letters, digits, '-' or '_'"]
          const old = member.nick
          if (old === argument) return [`* you are already ${old}`]
          if (!hub.rename(session, argument)) return [`! nickname ${argument} is taken`]
          yield* hub.say(member.room, `* ${old} is now ${argument}`, session)
          return [`* you are now ${argument}`]
        }
        case "/join": {
          if (!nickPattern.test(argument)) return ["! a room name is 1 to 24 letters, digits, '-' or '_'"]
          if (argument === member.room) return [`* you are already in ${argument}`]
          const old = hub.move(session, argument)
          yield* hub.say(old, `* ${member.nick} left for ${argument}`)
          yield* hub.say(argument, `* ${member.nick} joined`, session)
          const others = hub.who(argument).length - 1
          return [`* you are in ${argument}, with ${others} other${others === 1 ? "" : "s"}`]
        }
        case "/who":
          return [`* in ${member.room}: ${hub.who(member.room).join(", ")}`]
        case "/quit":
          // The room hears it now, not when the peer has closed its side too (onClose waits for that).
          hub.remove(session)
          yield* hub.say(member.room, `* ${member.nick} left`)
          // The goodbye is this message's reply: `close` from a handler takes effect after it.
          yield* session.close
          return [`* bye, ${member.nick}`]
        case "/help":
          return [help]
        default:
          return [`! unknown command ${verb} (/help for commands)`]
      }
    })

  const handler = Handler.effectMany((line: string, session: ChatSession) =>
    Effect.gen(function* () {
      const member = session.state
      const now = yield* Clock.currentTimeMillis
      member.lastHeard = now
      // Lines that were already read when the peer quit or was dropped are not said.
      if (line.length === 0 || !hub.has(session)) return []
      if (!admit(member, now, rate)) return [`! slow down: at most ${rate} lines a second; line dropped`]
      if (line.startsWith("/")) return yield* command(line, session)
      yield* hub.say(member.room, `${member.nick}: ${line}`, session)
      return []
    })
  )

  const pipeline = Pipeline.make({
    framer: Frame.lines({ maxLength: maxLineBytes }),
    codec: Packet.utf8,
    handler
  }).pipe(
    // Not UTF-8: the line is refused, the connection kept.
    Pipeline.catchTag("PacketDecodeError", () => Effect.succeed("! not UTF-8: line refused")),
    // Too long (or too slow): one last line, then the connection closes.
    Pipeline.onFrameError((error) =>
      Effect.succeed(
        error._tag === "FrameTooLarge"
          ? `! line too long: at most ${maxLineBytes} bytes; bye`
          : `! ${error._tag === "FrameTimeout" ? "line too slow" : "bad input"}; bye`
      )
    )
  )

  return {
    pipeline,
    maxOutboundBytes: config.maxOutboundBytes ?? 256 * 1024,
    onOpen: (session: Session.Session<string, Member | undefined>) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const member: Member = {
          nick: hub.freshNick(),
          room: "lobby",
          lastHeard: now,
          tokens: rate * 2,
          refilledAt: now
        }
        // The member becomes the session's state when onOpen returns; the hub knows it from now on.
        hub.add(session as ChatSession, member)
        yield* Effect.ignore(
          session.send(`* welcome to sluice chat: you are ${member.nick}, in room lobby (/help for commands)`)
        )
        yield* hub.say(member.room, `* ${member.nick} joined`, session as ChatSession)
        return member
      }),
    onClose: (session: Session.Session<string, Member | undefined>) =>
      Effect.suspend(() => {
        const member = hub.remove(session as ChatSession)
        return member === undefined ? Effect.void : hub.say(member.room, `* ${member.nick} left`)
      }),
    onCron: {
      schedule: Schedule.spaced(config.heartbeat ?? "10 seconds"),
      run: (session: ChatSession) =>
        Effect.gen(function* () {
          const now = yield* Clock.currentTimeMillis
          if (now - session.state.lastHeard < silenceMillis) return
          const member = hub.remove(session)
          if (member !== undefined) yield* hub.say(member.room, `* ${member.nick} left (silent)`)
          yield* Effect.ignore(session.send(`! no word from you in ${Math.round(silenceMillis / 1000)} s; bye`))
          yield* session.close
        })
    }
  }
}
