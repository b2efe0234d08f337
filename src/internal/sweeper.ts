import * as Clock from "effect/Clock"
import type * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Session from "../Session.ts"

/** The defaults of `Session.Options`. */
export const defaults = {
  readIdleTimeout: Duration.minutes(5),
  writeTimeout: Duration.seconds(30),
  handlerTimeout: Duration.seconds(30),
  frameTimeout: Duration.seconds(30),
  highWaterMark: 1024 * 1024,
  lowWaterMark: 256 * 1024,
  maxOutboundBytes: 16 * 1024 * 1024,
  closeTimeout: Duration.seconds(5)
}

const millisOf = (input: Duration.Input | undefined, fallback: Duration.Duration): number => {
  const duration = input === undefined ? fallback : Duration.fromInputUnsafe(input)
  return Duration.isFinite(duration) ? Duration.toMillis(duration) : Infinity
}

/** A session's limits and time-outs, in bytes and milliseconds (`Infinity`: none). */
export interface Limits {
  readonly readIdleMillis: number
  readonly writeMillis: number
  readonly handlerMillis: number
  readonly frameMillis: number
  readonly highWaterMark: number
  readonly lowWaterMark: number
  readonly maxOutboundBytes: number
  readonly closeMillis: number
}

export const limitsOf = (options: Session.Options): Limits => {
  const highWaterMark = options.highWaterMark ?? defaults.highWaterMark
  return {
    readIdleMillis: millisOf(options.readIdleTimeout, defaults.readIdleTimeout),
    writeMillis: millisOf(options.writeTimeout, defaults.writeTimeout),
    handlerMillis: millisOf(options.handlerTimeout, defaults.handlerTimeout),
    frameMillis: millisOf(options.frameTimeout, defaults.frameTimeout),
    highWaterMark,
    lowWaterMark: Math.min(options.lowWaterMark ?? defaults.lowWaterMark, highWaterMark),
    maxOutboundBytes: Math.max(options.maxOutboundBytes ?? defaults.maxOutboundBytes, highWaterMark),
    closeMillis: millisOf(options.closeTimeout, defaults.closeTimeout)
  }
}

/** What the sweeper visits: a session, which checks its own deadlines. */
export interface Swept {
  readonly limits: Limits
  /** Checks the deadlines at `now`, and adds what happened since the last visit to the metrics of `context`. */
  sweep(now: number, context: Context.Context<never>): void
}

/** A quarter of the shortest time-out, between 5 ms and 1 s. */
const intervalFor = ({ frameMillis, handlerMillis, readIdleMillis, writeMillis }: Limits): number =>
  Math.min(Math.max(Math.min(readIdleMillis, writeMillis, handlerMillis, frameMillis) / 4, 5), 1000)

/**
 * One fiber checks the deadlines of every session of a server or client (getty's timer wheel), so
 * that no read and no message pays for a timer. It reads the time from Effect's `Clock`, so
 * `TestClock` drives it.
 */
export class Sweeper {
  readonly sessions = new Set<Swept>()
  private intervalMillis: number

  /** `limits`: those of the sessions it will check, so that its first tick already fits them. */
  constructor(limits: Limits) {
    this.intervalMillis = intervalFor(limits)
  }

  track(session: Swept): void {
    const interval = intervalFor(session.limits)
    if (interval < this.intervalMillis) this.intervalMillis = interval
    this.sessions.add(session)
  }

  untrack(session: Swept): void {
    this.sessions.delete(session)
  }

  get run(): Effect.Effect<never> {
    const tick = Effect.flatMap(
      Clock.currentTimeMillis,
      (now) =>
        Effect.contextWith((context: Context.Context<never>) => {
          for (const session of this.sessions) session.sweep(now, context)
          return Effect.void
        })
    )
    return Effect.flatMap(Effect.suspend(() => Effect.sleep(this.intervalMillis)), () => tick).pipe(Effect.forever)
  }
}

/**
 * A session's deadlines, as the sweeper's visits see them: each visit compares what changed since
 * the last one (bytes read, frames decoded, queued bytes, drains) and says which deadline passed, if
 * any. No read, frame or write pays for a timer.
 */
export class Deadlines {
  private bytesIn = -1
  private readAt = 0
  private frames = -1
  private frameAt = 0
  private queued = 0
  private drains = -1
  private writeAt = 0

  check(
    session: {
      readonly limits: Limits
      readonly bytesIn: number
      readonly drains: number
      readonly readingPaused: boolean
    },
    now: number,
    decoder: { readonly buffered: number; readonly frames: number; readonly error: unknown },
    queued: number
  ): "idle" | "frame" | "write" | undefined {
    const limits = session.limits
    // Read idle: no byte from the peer, while reading (a paused session is not idle).
    if (session.bytesIn !== this.bytesIn || session.readingPaused) {
      this.bytesIn = session.bytesIn
      this.readAt = now
    } else if (now - this.readAt >= limits.readIdleMillis) {
      return "idle"
    }
    // The frame deadline: from a frame's first byte to its last, while the peer may send.
    if (decoder.buffered > 0 && !session.readingPaused && decoder.error === undefined) {
      if (decoder.frames !== this.frames) {
        this.frames = decoder.frames
        this.frameAt = now
      } else if (now - this.frameAt >= limits.frameMillis) {
        return "frame"
      }
    } else {
      this.frames = -1
    }
    // Write: queued bytes that neither shrink nor drain (a peer that does not read).
    if (queued === 0 || queued < this.queued || session.drains !== this.drains) {
      this.queued = queued
      this.drains = session.drains
      this.writeAt = now
    } else if (now - this.writeAt >= limits.writeMillis) {
      return "write"
    } else {
      this.queued = queued
    }
    return undefined
  }
}
