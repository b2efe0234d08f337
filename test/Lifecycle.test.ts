/**
 * Session lifecycle behaviours over real sockets on 127.0.0.1, with the runtime's own transport
 * (`Transport.current`): closing after a reply, last replies to frame errors, greetings, failing
 * `onOpen` hooks, last words, typed sessions, `onCron` schedules that end, and the client's
 * correlation and failure reporting. Peers are raw node:net sockets (test/util/peer.ts), independent
 * of the transport under test.
 */
import { describe, expect, it } from "@effect/vitest"
import { Data, Effect, Exit, Fiber, Latch, Result, Schedule, Scope, Stream } from "effect"
import * as net from "node:net"
import { expectTypeOf } from "vitest"
import { Bytes, Client, Errors, Frame, Handler, Packet, Pipeline, Server } from "../src/index.ts"
import type * as Session from "../src/Session.ts"
import { type Peer, peer } from "./util/peer.ts"
import { eventually, flag, within } from "./util/wait.ts"

// --- helpers -------------------------------------------------------------------------------------

const range = (n: number): Array<number> => Array.from({ length: n }, (_, i) => i)

const lines = Frame.lines({ maxLength: 1024 })
const text = (p: Peer): string => Bytes.toString(p.received())

const localPorts = new WeakMap<Peer, number>()

/** A raw peer (see test/util/peer.ts) whose local port is remembered: node:net forgets it on close. */
const connect = (port: number, options?: { readonly paused?: boolean; readonly halfOpen?: boolean }) =>
  Effect.tap(peer(port, options), (p) => Effect.sync(() => localPorts.set(p, p.socket.localPort ?? -1)))

/**
 * Writes `bytes` and waits until node:net has handed them to the OS (or failed to: the server may
 * have closed already), at most 500 ms, then 2 ms more so that each write tends to be its own read.
 */
const writeFlushed = (p: Peer, bytes: string): Effect.Effect<void> =>
  Effect.andThen(
    Effect.callback<void>((resume) => {
      let done = false
      const finish = () => {
        if (done) return
        done = true
        clearTimeout(timer)
        resume(Effect.void)
      }
      const timer = setTimeout(finish, 500)
      try {
        p.socket.write(bytes, () => finish())
      } catch {
        finish()
      }
    }),
    Effect.sleep("2 millis")
  )

/** Writes each part in turn (see `writeFlushed`). */
const writeParts = (p: Peer, parts: ReadonlyArray<string>): Effect.Effect<void> =>
  Effect.forEach(parts, (part) => writeFlushed(p, part), { discard: true })

const tagOf = (u: unknown): string | undefined =>
  typeof u === "object" && u !== null && "_tag" in u ? String((u as { _tag: unknown })._tag) : undefined

/** The error of a `Failed` close reason. */
const failure = (reason: Session.CloseReason): unknown => reason._tag === "Failed" ? reason.error : undefined

interface SessionLike {
  readonly id: string
  readonly remoteAddress: { readonly _tag: string; readonly port?: number }
}

interface HookRecord {
  readonly id: string
  readonly port: number
  readonly errors: Array<unknown>
  readonly closes: Array<Session.CloseReason>
}

/** Records each session's `onError` and `onClose`, by session id; `byPort` finds the session of a peer. */
const recorder = () => {
  const records = new Map<string, HookRecord>()
  const of = (s: SessionLike): HookRecord => {
    let record = records.get(s.id)
    if (record === undefined) {
      const port = s.remoteAddress._tag === "Tcp" ? s.remoteAddress.port ?? -1 : -1
      record = { id: s.id, port, errors: [], closes: [] }
      records.set(s.id, record)
    }
    return record
  }
  return {
    records,
    of,
    byPort: (p: Peer): HookRecord | undefined => {
      for (const record of records.values()) if (record.port === localPorts.get(p)) return record
      return undefined
    },
    onError: (s: SessionLike, error: unknown) =>
      Effect.sync(() => {
        of(s).errors.push(error)
      }),
    onClose: (s: SessionLike, reason: Session.CloseReason) =>
      Effect.sync(() => {
        of(s).closes.push(reason)
      })
  }
}

/**
 * A peer that writes `request` at once, before it is even connected (node:net queues it until the
 * connection is up) and before it reads anything. Resolves with what it received once it has
 * `length` bytes (or the connection ended), and then destroys its socket.
 */
const eagerPeer = (port: number, request: string, length: number): Promise<string> =>
  new Promise((resolve) => {
    const chunks: Array<Uint8Array> = []
    let size = 0
    const socket = net.connect({ host: "127.0.0.1", port })
    const done = () => {
      socket.destroy()
      resolve(Bytes.toString(Bytes.concat(chunks)))
    }
    socket.write(request)
    socket.on("data", (chunk: Uint8Array) => {
      chunks.push(new Uint8Array(chunk))
      size += chunk.length
      if (size >= length) done()
    })
    socket.on("error", () => {})
    socket.on("close", done)
  })

class Boom extends Data.TaggedError("Boom")<{ readonly input: string }> {}
class Refused extends Data.TaggedError("Refused")<{ readonly why: string }> {}

// --- tests ---------------------------------------------------------------------------------------

describe("a handler that closes after its reply", () => {
  // The peer sends `a`, `quit`, `b`: `a` is answered, `quit` is answered with `bye` and closes, and `b`
  // is never handled, whatever reads the bytes arrive in. A broken close would drop `bye` (closing
  // before the reply is written), handle `b` (closing only once the read is done, or only after the
  // next message), or never send the FIN (the peer would not see EOF within the bounded wait).
  const input = "a\nquit\nb\n"
  const splits: ReadonlyArray<readonly [string, ReadonlyArray<string>]> = [
    ["in one write", [input]],
    ["byte by byte", [...input]],
    ["a line per write", ["a\n", "quit\n", "b\n"]]
  ]

  type Variant = (
    handled: Array<string>
  ) => Pipeline.Pipeline<string, string, unknown, never, Session.Session<string, void>>

  const variants: ReadonlyArray<readonly [string, Variant]> = [
    [
      "Handler.gen with yield* session.close",
      (handled) =>
        Pipeline.make({
          framer: lines,
          codec: Packet.utf8,
          handler: Handler.gen(function* (line: string, session: Session.Session<string, void>) {
            handled.push(line)
            if (line === "quit") {
              yield* session.close
              return "bye"
            }
            return `ok ${line}`
          })
        })
    ],
    [
      "Handler.gen that suspends, then closes in its fiber",
      (handled) =>
        Pipeline.make({
          framer: lines,
          codec: Packet.utf8,
          handler: Handler.gen(function* (line: string, session: Session.Session<string, void>) {
            handled.push(line)
            yield* Effect.sleep("5 millis")
            if (line === "quit") {
              yield* session.close
              return "bye"
            }
            return `ok ${line}`
          })
        })
    ],
    [
      "Handler.gen that closes from a fiber it forked",
      (handled) =>
        Pipeline.make({
          framer: lines,
          codec: Packet.utf8,
          handler: Handler.gen(function* (line: string, session: Session.Session<string, void>) {
            handled.push(line)
            if (line === "quit") {
              const closer = yield* Effect.forkChild(Effect.andThen(Effect.sleep("2 millis"), session.close))
              yield* Fiber.join(closer)
              return "bye"
            }
            return `ok ${line}`
          })
        })
    ],
    [
      "a sync handler with Effect.runSync(session.close)",
      (handled) =>
        Pipeline.make({
          framer: lines,
          codec: Packet.utf8,
          handler: Handler.sync((line: string, session: Session.Session<string, void>) => {
            handled.push(line)
            if (line === "quit") {
              Effect.runSync(session.close)
              return "bye"
            }
            return `ok ${line}`
          })
        })
    ],
    [
      "a recovery (Pipeline.catchTag) that closes after its reply",
      (handled) =>
        Pipeline.make({
          framer: lines,
          codec: Packet.utf8,
          handler: Handler.effect((line: string, _session: Session.Session<string, void>) => {
            handled.push(line)
            return line === "quit" ? Effect.fail(new Boom({ input: line })) : Effect.succeed(`ok ${line}`)
          })
        }).pipe(
          Pipeline.catchTag("Boom", (_error, _request, session) =>
            Effect.gen(function* () {
              yield* session.close
              return "bye"
            }))
        )
    ],
    [
      "a recovery that suspends, then closes in its fiber",
      (handled) =>
        Pipeline.make({
          framer: lines,
          codec: Packet.utf8,
          handler: Handler.effect((line: string, _session: Session.Session<string, void>) => {
            handled.push(line)
            return line === "quit" ? Effect.fail(new Boom({ input: line })) : Effect.succeed(`ok ${line}`)
          })
        }).pipe(
          Pipeline.catchTag("Boom", (_error, _request, session) =>
            Effect.gen(function* () {
              yield* Effect.sleep("5 millis")
              yield* session.close
              return "bye"
            }))
        )
    ]
  ]

  for (const [name, make] of variants) {
    for (const [split, parts] of splits) {
      it.live(`${name}: ok a, bye, then EOF; b is not handled (${split})`, () =>
        Effect.gen(function* () {
          const handled: Array<string> = []
          const rec = recorder()
          const server = yield* Server.serve({ pipeline: make(handled), onClose: rec.onClose })
          const p = yield* connect(server.port)
          yield* writeParts(p, parts)
          yield* within("the server's FIN", () => p.ended)
          expect(text(p)).toBe("ok a\nbye\n")
          expect(handled).toEqual(["a", "quit"])
          yield* within("the peer closed", () => p.closed)
          yield* eventually("onClose", () => rec.byPort(p)?.closes.length === 1)
          expect(rec.byPort(p)!.closes).toEqual([{ _tag: "Closed" }])
          yield* eventually("the session is gone", () => server.sessions.size === 0)
          expect(handled).toEqual(["a", "quit"])
        }))
    }
  }
})

describe("a handler resumed from inside another connection's handler", () => {
  // Connection A's handler waits for something connection B's (synchronous) handler provides, as a
  // handler waits for a client's reply: A's fiber then resumes synchronously inside B's handler.
  // Its send and close are still A's own, in order: "sent", then "bye", then FIN. A broken engine
  // takes them for B's broadcasts: A's close interrupts its own handler (no "bye"), or "sent"
  // goes out as a broadcast.
  it.live("sends and closes in order with its own reply", () =>
    Effect.gen(function* () {
      const waiting: Array<(value: string) => void> = []
      const server = yield* Server.serve({
        pipeline: Pipeline.make({
          framer: lines,
          codec: Packet.utf8,
          handler: Handler.effect((line: string, session: Session.Session<string, void>) => {
            if (line === "release") {
              // B: synchronous, resumes A's fiber on the spot.
              return Effect.sync(() => {
                for (const resume of waiting.splice(0)) resume("released")
                return "done"
              })
            }
            return Effect.gen(function* () {
              const value = yield* Effect.callback<string>((resume) => {
                waiting.push((v) => resume(Effect.succeed(v)))
              })
              yield* session.send(`sent ${value}`)
              yield* session.close
              return "bye"
            })
          })
        })
      })
      const a = yield* connect(server.port)
      const b = yield* connect(server.port)
      a.write("wait\n")
      yield* eventually("A waits", () => waiting.length === 1)
      b.write("release\n")
      yield* within("B's reply", () => b.waitFor("done\n".length))
      yield* within("A closed", () => a.closed)
      expect(text(a)).toBe("sent released\nbye\n")
      expect(text(b)).toBe("done\n")
    }))
})

describe("a close under Handler.concurrent(4)", () => {
  // `slow` (50 ms), `quit` (closes), `later` (never finishes). The reply to `slow`, a message before
  // `quit`, must be written although it finishes after `quit` closed; `later`, a message after it, is
  // interrupted and its reply dropped. A broken engine would drop `ok slow` (closing at once, or
  // discarding every message still running), write `later`'s reply, or wait for `later` forever (no
  // EOF within the bounded wait, and its finalizer would not run).
  const make = (
    ordered: boolean,
    quitWaitsForLater: boolean,
    probe: { laterStarted: number; laterInterrupted: number; handled: Array<string> },
    laterRunning: Latch.Latch
  ) =>
    Pipeline.make({
      framer: lines,
      codec: Packet.utf8,
      handler: Handler.effect((line: string, session: Session.Session<string, void>): Effect.Effect<string> => {
        probe.handled.push(line)
        switch (line) {
          case "slow":
            return Effect.as(Effect.sleep("50 millis"), "ok slow")
          case "quit":
            return Effect.gen(function* () {
              if (quitWaitsForLater) yield* laterRunning.await
              yield* session.close
              return "bye"
            })
          case "later":
            return Effect.gen(function* () {
              probe.laterStarted++
              yield* laterRunning.open
              return yield* Effect.never
            }).pipe(Effect.onInterrupt(() => Effect.sync(() => void probe.laterInterrupted++)))
          default:
            return Effect.succeed(`ok ${line}`)
        }
      }).pipe(Handler.concurrent(4, { ordered }))
    })

  for (const ordered of [true, false]) {
    it.live(
      `quit closes while later runs: ok slow and bye, then EOF; later is interrupted (ordered: ${ordered})`,
      () =>
        Effect.gen(function* () {
          const probe = { laterStarted: 0, laterInterrupted: 0, handled: [] as Array<string> }
          const laterRunning = yield* Latch.make(false)
          const server = yield* Server.serve({ pipeline: make(ordered, true, probe, laterRunning) })
          const p = yield* connect(server.port)
          p.write("slow\nquit\nlater\n")
          yield* within("the server's FIN", () => p.ended)
          // In request order when ordered; as they finish when not (bye first, most likely).
          if (ordered) expect(text(p)).toBe("ok slow\nbye\n")
          else expect(text(p).split("\n").sort()).toEqual(["", "bye", "ok slow"])
          expect(probe.laterStarted).toBe(1)
          yield* eventually("later's interruption", () => probe.laterInterrupted === 1)
          yield* eventually("the session is gone", () => server.sessions.size === 0)
          expect(probe.handled).toEqual(["slow", "quit", "later"])
        })
    )
  }

  it.live("quit closes at once: ok slow and bye, then EOF; later is never started", () =>
    Effect.gen(function* () {
      const probe = { laterStarted: 0, laterInterrupted: 0, handled: [] as Array<string> }
      const laterRunning = yield* Latch.make(false)
      const server = yield* Server.serve({ pipeline: make(true, false, probe, laterRunning) })
      const p = yield* connect(server.port)
      p.write("slow\nquit\nlater\n")
      yield* within("the server's FIN", () => p.ended)
      expect(text(p)).toBe("ok slow\nbye\n")
      yield* eventually("the session is gone", () => server.sessions.size === 0)
      // `quit`'s close ran before `later` was read out of the same chunk: it is not handled at all.
      expect(probe.handled).toEqual(["slow", "quit"])
      expect(probe.laterStarted).toBe(0)
    }))
})

describe("Pipeline.onFrameError answers a frame error, then the connection closes", () => {
  // `one\n` then a 40-byte line without its newline, over a line limit of 24: the peer must receive
  // `ok one`, then the last reply, then EOF, and onError must get the FrameTooLarge. A broken
  // implementation would drop the last reply (closing first), write it before `ok one` (not waiting
  // for a handler still running), never close (waiting for a newline that never comes), or report
  // something other than the frame error.
  // (The limit is 24 rather than 16: `error: line too long` is 20 bytes, and the framer refuses to
  // encode a reply longer than its limit too.)
  const small = Frame.lines({ maxLength: 24 })
  const long = "x".repeat(40)
  const handlers = {
    "a sync handler": Handler.sync((line: string) => `ok ${line}`),
    "a suspending handler": Handler.effect((line: string) => Effect.as(Effect.sleep("20 millis"), `ok ${line}`)),
    "a suspending handler under concurrent(4)": Handler.effect((line: string) =>
      Effect.as(Effect.sleep("20 millis"), `ok ${line}`)
    ).pipe(Handler.concurrent(4)),
    "a sync handler under concurrent(4)": Handler.sync((line: string) => `ok ${line}`).pipe(Handler.concurrent(4))
  }
  const lastReplies = {
    "an immediate last reply": () => Effect.succeed("error: line too long"),
    "a suspending last reply": () => Effect.as(Effect.sleep("20 millis"), "error: line too long")
  }
  const splits: ReadonlyArray<readonly [string, ReadonlyArray<string>]> = [
    ["in one write", [`one\n${long}`]],
    ["in two writes", ["one\n", long]]
  ]
  for (const [handlerName, handler] of Object.entries(handlers)) {
    for (const [replyName, lastReply] of Object.entries(lastReplies)) {
      for (const [split, parts] of splits) {
        it.live(`${handlerName}, ${replyName} (${split})`, () =>
          Effect.gen(function* () {
            const rec = recorder()
            const pipeline = Pipeline.make({ framer: small, codec: Packet.utf8, handler }).pipe(
              Pipeline.onFrameError(lastReply)
            )
            const server = yield* Server.serve({ pipeline, onError: rec.onError, onClose: rec.onClose })
            const p = yield* connect(server.port)
            yield* writeParts(p, parts)
            yield* within("the server's FIN", () => p.ended)
            expect(text(p)).toBe("ok one\nerror: line too long\n")
            yield* eventually("onClose", () => rec.byPort(p)?.closes.length === 1)
            const record = rec.byPort(p)!
            expect(record.errors.map(tagOf)).toEqual(["FrameTooLarge"])
            expect(record.errors[0]).toBeInstanceOf(Errors.FrameTooLarge)
            expect((record.errors[0] as Errors.FrameTooLarge).limit).toBe(24)
            expect(record.closes[0]!._tag).toBe("Failed")
            expect(failure(record.closes[0]!)).toBe(record.errors[0])
          }))
      }
    }
  }
})

describe("greetings", () => {
  // onOpen sends `hello`; the peer writes `ping` at once, before it is even connected, and before it
  // reads anything. It must receive `hello` first, then `ok ping`. A broken implementation would
  // handle `ping` before onOpen is done (its reply first, or a handler without its state), or queue
  // the greeting behind the reply (a greeting written on a later tick than the reply).
  type State = { readonly greeted: true }
  const pipeline = Pipeline.make({
    framer: lines,
    codec: Packet.utf8,
    handler: Handler.sync((line: string, session: Session.Session<string, State>) =>
      session.state.greeted ? `ok ${line}` : `no state for ${line}`
    )
  })
  const onOpens = {
    "onOpen sends at once": (s: Session.Session<string, State | undefined>) =>
      Effect.as(s.send("hello"), { greeted: true } as const),
    "onOpen suspends, then sends": (s: Session.Session<string, State | undefined>) =>
      Effect.andThen(Effect.sleep("5 millis"), Effect.as(s.send("hello"), { greeted: true } as const)),
    "onOpen sends, then suspends": (s: Session.Session<string, State | undefined>) =>
      Effect.andThen(s.send("hello"), Effect.as(Effect.sleep("5 millis"), { greeted: true } as const)),
    "onOpen sends with sendWait": (s: Session.Session<string, State | undefined>) =>
      Effect.as(s.sendWait("hello"), { greeted: true } as const)
  }
  const expected = "hello\nok ping\n"
  for (const [name, onOpen] of Object.entries(onOpens)) {
    it.live(`${name}: an eager peer receives hello, then its reply (20 connections)`, () =>
      Effect.gen(function* () {
        const server = yield* Server.serve({ pipeline, onOpen })
        const seen: Array<string> = []
        for (let i = 0; i < 20; i++) {
          seen.push(yield* within(`connection ${i}`, () => eagerPeer(server.port, "ping\n", expected.length)))
          yield* eventually(`session ${i} gone`, () => server.sessions.size === 0)
        }
        expect(seen).toEqual(range(20).map(() => expected))
      }))
  }
})

describe("a failing onOpen ends its session at once", () => {
  // With closeTimeout at 30 s, a session whose onOpen fails (or throws) must close its connection at
  // once: the peer sees it closed within 5 s, and the server no longer lists the session. A broken
  // implementation would leave the connection open (paused, waiting for the close timeout, or forever),
  // keep the session in `server.sessions`, or take the whole server down (the other session unserved).
  type State = { readonly ok: true }
  const onOpens: Record<string, () => Effect.Effect<State, Refused>> = {
    "fails": () => Effect.fail(new Refused({ why: "not today" })),
    "throws": () => {
      throw new Error("onOpen bug")
    },
    "fails after suspending": () =>
      Effect.andThen(Effect.sleep("10 millis"), Effect.fail(new Refused({ why: "later" })))
  }
  for (const [name, badOpen] of Object.entries(onOpens)) {
    it.live(`an onOpen that ${name}`, () =>
      Effect.gen(function* () {
        const rec = recorder()
        let refuse = false
        const opened: Array<Session.Session<string, State | undefined>> = []
        const server = yield* Server.serve({
          pipeline: Pipeline.make({
            framer: lines,
            codec: Packet.utf8,
            handler: Handler.sync((line: string) => `ok ${line}`)
          }),
          closeTimeout: "30 seconds",
          onOpen: (s: Session.Session<string, State | undefined>): Effect.Effect<State, Refused> => {
            opened.push(s)
            return refuse ? badOpen() : Effect.succeed({ ok: true })
          },
          onError: rec.onError,
          onClose: rec.onClose
        })
        const good = yield* connect(server.port)
        good.write("one\n")
        yield* within("good's first reply", () => good.waitFor("ok one\n".length))

        refuse = true
        const bad = yield* connect(server.port)
        yield* within("the refused connection closed", () => bad.closed, 5_000)
        expect(bad.received().length).toBe(0)
        expect(opened.length).toBe(2)
        const badSession = opened[1]!
        yield* eventually("the refused session is gone", () => !server.sessions.has(badSession), 5_000)
        expect([...server.sessions]).toEqual([opened[0]])
        yield* eventually("onClose", () => rec.byPort(bad)?.closes.length === 1, 5_000)
        const record = rec.byPort(bad)!
        const reason = record.closes[0]!
        if (name === "throws") {
          // A bug, not a declared error: onError is not told, the reason carries it.
          expect(reason._tag).toBe("Defect")
          expect(reason._tag === "Defect" && (reason.defect as Error).message).toBe("onOpen bug")
          expect(record.errors.length).toBe(0)
        } else {
          expect(reason._tag).toBe("Failed")
          expect(record.errors.length).toBe(1)
          expect(record.errors[0]).toBeInstanceOf(Refused)
        }

        // The other session is unaffected.
        good.write("two\n")
        yield* within("good's second reply", () => good.waitFor("ok one\nok two\n".length))
        expect(text(good)).toBe("ok one\nok two\n")
        expect(flag(good.ended).done).toBe(false)
        expect(rec.byPort(good)).toBeUndefined()
      }))
  }
})

describe("the types of sessions", () => {
  // Where a session can be seen before onOpen is done (server.sessions, onError, onClose), its state
  // is `S | undefined`; a handler (and onCron) sees `S`. A wrong typing fails the typecheck of this
  // file (tsc -p tsconfig.json): a state typed `S` where it may be undefined, or handlers forced to
  // narrow a state that onOpen has set.
  type State = { count: number }

  it.live("server.sessions, onError and onClose see S | undefined; handlers and onCron see S", () =>
    Effect.gen(function* () {
      const pipeline = Pipeline.make({
        framer: lines,
        codec: Packet.utf8,
        handler: Handler.sync((line: string, session: Session.Session<string, State>) => {
          expectTypeOf(session.state).toEqualTypeOf<State>()
          return `${++session.state.count} ${line}`
        })
      })
      let errorState: State | undefined
      const server = yield* Server.serve({
        pipeline,
        readIdleTimeout: "300 millis",
        onOpen: (session) => {
          expectTypeOf(session).toEqualTypeOf<Session.Session<string, State | undefined>>()
          return Effect.succeed({ count: 0 })
        },
        onError: (session, _error) => {
          expectTypeOf(session).toEqualTypeOf<Session.Session<string, State | undefined>>()
          expectTypeOf(session.state).toEqualTypeOf<State | undefined>()
          // @ts-expect-error the state may be undefined here
          const count: number = session.state.count
          void count
          return Effect.sync(() => {
            errorState = session.state
          })
        },
        onClose: (session) => {
          expectTypeOf(session).toEqualTypeOf<Session.Session<string, State | undefined>>()
          return Effect.void
        },
        onCron: {
          schedule: Schedule.spaced("1 hour"),
          run: (session) => {
            expectTypeOf(session).toEqualTypeOf<Session.Session<string, State>>()
            return Effect.void
          }
        }
      })
      expectTypeOf(server.sessions).toEqualTypeOf<ReadonlySet<Session.Session<string, State | undefined>>>()
      expectTypeOf<Parameters<typeof server.sessions.forEach>[0]>().parameter(0).toEqualTypeOf<
        Session.Session<string, State | undefined>
      >()

      // A server whose onOpen gives another state than its handlers need is refused.
      const refused = () =>
        Server.serve({
          pipeline,
          // @ts-expect-error the handlers need { count: number }
          onOpen: () => Effect.succeed({ other: "state" })
        })
      void refused

      // At run time: the state is there for the handler, and the idle session's onError sees it too.
      const p = yield* connect(server.port)
      p.write("a\nb\n")
      yield* within("replies", () => p.waitFor("1 a\n2 b\n".length))
      expect(text(p)).toBe("1 a\n2 b\n")
      yield* within("idle close", () => p.closed)
      yield* eventually("onError", () => errorState !== undefined)
      expect(errorState).toEqual({ count: 2 })
    }))
})

describe("last words", () => {
  // When a time-out or an error ends a session, onError runs before the socket closes and may still
  // send. A broken implementation would close first (the peer sees EOF without the last words) or
  // refuse the send (the session already counted as closed: the send fails with ConnectionClosed,
  // which `sent` records).

  /** Sends `message`, recording `sent` or the tag of the send's failure. */
  const sendRecorded = <S>(
    session: Session.Session<string, S>,
    message: string,
    sent: Array<string | undefined>
  ): Effect.Effect<void> =>
    Effect.flatMap(
      Effect.result(session.send(message)),
      (result) => Effect.sync(() => void sent.push(Result.isSuccess(result) ? "sent" : tagOf(result.failure)))
    )

  it.live("an idle session's onError says `idle, bye`, then EOF", () =>
    Effect.gen(function* () {
      const rec = recorder()
      const sent: Array<string | undefined> = []
      const server = yield* Server.serve({
        pipeline: Pipeline.make({ framer: lines, codec: Packet.utf8, handler: Handler.sync((l: string) => `ok ${l}`) }),
        readIdleTimeout: "200 millis",
        onError: (session, error) =>
          Effect.andThen(
            rec.onError(session, error),
            tagOf(error) === "IdleTimeout" ? sendRecorded(session, "idle, bye", sent) : Effect.void
          ),
        onClose: rec.onClose
      })
      const p = yield* connect(server.port)
      yield* within("the server's FIN", () => p.ended)
      yield* eventually("onClose", () => rec.byPort(p)?.closes.length === 1)
      expect(rec.byPort(p)!.errors.map(tagOf)).toEqual(["IdleTimeout"])
      expect(sent).toEqual(["sent"])
      expect(text(p)).toBe("idle, bye\n")
    }))

  it.live("an onError that suspends before its last words still gets them out", () =>
    Effect.gen(function* () {
      const sent: Array<string | undefined> = []
      const server = yield* Server.serve({
        pipeline: Pipeline.make({ framer: lines, codec: Packet.utf8, handler: Handler.sync((l: string) => `ok ${l}`) }),
        readIdleTimeout: "200 millis",
        onError: (session) => Effect.andThen(Effect.sleep("30 millis"), sendRecorded(session, "idle, bye", sent))
      })
      const p = yield* connect(server.port)
      p.write("hi\n")
      yield* within("the server's FIN", () => p.ended)
      yield* eventually("onError's send", () => sent.length === 1)
      expect(sent).toEqual(["sent"])
      expect(text(p)).toBe("ok hi\nidle, bye\n")
    }))

  const failing = {
    "a handler that fails at once": Handler.effect((line: string) =>
      line === "fail" ? Effect.fail(new Boom({ input: line })) : Effect.succeed(`ok ${line}`)
    ),
    "a handler that fails after suspending": Handler.effect((line: string) =>
      line === "fail"
        ? Effect.andThen(Effect.sleep("10 millis"), Effect.fail(new Boom({ input: line })))
        : Effect.succeed(`ok ${line}`)
    ),
    "a sync handler that throws": Handler.sync((line: string) => {
      if (line === "fail") throw new Error("thrown")
      return `ok ${line}`
    }),
    "a failing handler under concurrent(4)": Handler.effect((line: string) =>
      line === "fail"
        ? Effect.andThen(Effect.sleep("10 millis"), Effect.fail(new Boom({ input: line })))
        : Effect.succeed(`ok ${line}`)
    ).pipe(Handler.concurrent(4))
  }
  for (const [name, handler] of Object.entries(failing)) {
    it.live(`${name}: onError's \`error: ...\` is written after the replies before it, then EOF`, () =>
      Effect.gen(function* () {
        const rec = recorder()
        const sent: Array<string | undefined> = []
        const server = yield* Server.serve({
          pipeline: Pipeline.make({ framer: lines, codec: Packet.utf8, handler }),
          onError: (session, error) =>
            Effect.andThen(rec.onError(session, error), sendRecorded(session, `error: ${tagOf(error)}`, sent)),
          onClose: rec.onClose
        })
        const p = yield* connect(server.port)
        p.write("hi\nfail\nnever\n")
        yield* within("the server's FIN", () => p.ended)
        const tag = name === "a sync handler that throws" ? "HandlerError" : "Boom"
        yield* eventually("onClose", () => rec.byPort(p)?.closes.length === 1)
        expect(rec.byPort(p)!.errors.map(tagOf)).toEqual([tag])
        expect(sent).toEqual(["sent"])
        expect(text(p)).toBe(`ok hi\nerror: ${tag}\n`)
      }))
  }
})

describe("a typed session in handlers", () => {
  // A handler typed with `Session.Session<string, { count: number }>` sees the state onOpen made and
  // the connection's remote address. A broken implementation would give every handler the same
  // state (counts shared between peers), a fresh one per message (counts stuck at 1), or no session
  // at all (a crash).
  it.live("session.state counts per connection and session.remoteAddress is the peer", () =>
    Effect.gen(function* () {
      const server = yield* Server.serve({
        pipeline: Pipeline.make({
          framer: lines,
          codec: Packet.utf8,
          handler: Handler.sync((line: string, session: Session.Session<string, { count: number }>) => {
            const address = session.remoteAddress
            const from = address._tag === "Tcp" ? `${address.host}:${address.port}` : "?"
            return `${++session.state.count} ${line} from ${from}`
          })
        }),
        onOpen: () => Effect.succeed({ count: 0 })
      })
      const a = yield* connect(server.port)
      const b = yield* connect(server.port)
      const portA = localPorts.get(a)!
      const portB = localPorts.get(b)!
      a.write("x\ny\n")
      b.write("z\n")
      a.write("w\n")
      const expectedA = `1 x from 127.0.0.1:${portA}\n2 y from 127.0.0.1:${portA}\n3 w from 127.0.0.1:${portA}\n`
      const expectedB = `1 z from 127.0.0.1:${portB}\n`
      yield* within("a's replies", () => a.waitFor(expectedA.length))
      yield* within("b's replies", () => b.waitFor(expectedB.length))
      expect(text(a)).toBe(expectedA)
      expect(text(b)).toBe(expectedB)
    }))

  it.effect("under Pipeline.transform a Handler.Context handler sees id `stream` and the state option", () =>
    Effect.gen(function* () {
      const pipeline = Pipeline.make({
        framer: lines,
        codec: Packet.utf8,
        handler: Handler.sync((line: string, context: Handler.Context<string, { n: number }>) =>
          `${context.id} ${context.state.n++} ${line}`
        )
      })
      const out = yield* Stream.make(Bytes.fromString("a\nb\n"), Bytes.fromString("c\n")).pipe(
        Pipeline.transform(pipeline, { state: { n: 10 } }),
        Stream.runCollect
      )
      expect(Bytes.toString(Bytes.concat(out))).toBe("stream 10 a\nstream 11 b\nstream 12 c\n")

      // A pipeline whose handler needs a Session (its addresses) cannot run where there is none.
      const needsSession = Pipeline.make({
        framer: lines,
        codec: Packet.utf8,
        handler: Handler.sync((line: string, session: Session.Session<string, undefined>) =>
          `${session.remoteAddress._tag} ${line}`
        )
      })
      // Built, never run.
      // @ts-expect-error a Session is more than a StreamContext
      const refused = Stream.make(Bytes.fromString("a\n")).pipe(Pipeline.transform(needsSession))
      void refused
    }))
})

describe("onCron", () => {
  // `Schedule.max` recurs while both schedules do: every 20 ms, twice. A broken onCron would ignore
  // the schedule's end (restarting it, or repeating forever: far more than 2 runs in 500 ms), or run
  // once more than the schedule allows (`Effect.repeat` runs once before consulting it: 3).
  it.live("ends when its Schedule ends: Schedule.recurs(2) with a spacing runs exactly twice", () =>
    Effect.gen(function* () {
      let runs = 0
      const server = yield* Server.serve({
        pipeline: Pipeline.make({ framer: lines, codec: Packet.utf8, handler: Handler.sync((l: string) => `ok ${l}`) }),
        onCron: {
          schedule: Schedule.max([Schedule.spaced("20 millis"), Schedule.recurs(2)]),
          run: () => Effect.sync(() => void runs++)
        }
      })
      const p = yield* connect(server.port)
      yield* eventually("the session", () => server.sessions.size === 1)
      yield* Effect.sleep("500 millis")
      expect(runs).toBe(2)
      // The schedule's end does not end the session.
      p.write("still\n")
      yield* within("reply", () => p.waitFor("ok still\n".length))
      expect(text(p)).toBe("ok still\n")
      expect(server.sessions.size).toBe(1)
    }))
})

describe("Client", () => {
  it.live("FIFO with isPush: pushes go to onPush and every request gets its own reply", () =>
    // The server sends `push:<n>` before each reply. Without `isPush`, a FIFO client takes each push
    // for the reply to its oldest call: every call would get the message before its own (the
    // second client below shows it). With `isPush`, each call gets its reply and every push reaches
    // onPush. A broken isPush would mismatch the replies, or lose the pushes.
    Effect.gen(function* () {
      const server = yield* Server.serve({
        pipeline: Pipeline.make({
          framer: lines,
          codec: Packet.utf8,
          handler: Handler.gen(function* (line: string, session: Session.Session<string, void>) {
            yield* session.send(`push:${line}`)
            return `reply:${line}`
          })
        })
      })
      const pushes: Array<string> = []
      const client = yield* Client.make({
        port: server.port,
        framer: lines,
        codec: Packet.utf8,
        isPush: (m) => m.startsWith("push:"),
        onPush: (m) => Effect.sync(() => void pushes.push(m))
      })
      expect(yield* client.request("r0")).toBe("reply:r0")
      const replies = yield* Effect.forEach(range(10), (i) => client.request(`r${i + 1}`), {
        concurrency: "unbounded"
      })
      expect(replies).toEqual(range(10).map((i) => `reply:r${i + 1}`))
      yield* eventually("every push", () => pushes.length === 11)
      expect([...pushes].sort()).toEqual(range(11).map((i) => `push:r${i}`).sort())
      expect(client.inFlight).toBe(0)

      // The premise: without isPush, the push is taken for the reply.
      const naive = yield* Client.make({ port: server.port, framer: lines, codec: Packet.utf8 })
      expect(yield* naive.request("x")).toBe("push:x")
    }))

  it.live("by id: a second request with an id in flight fails with DuplicateRequestId; the first gets its reply", () =>
    // A broken client would send the duplicate (its reply, written first by this server, would then
    // complete the first call with the wrong message), replace the first call (which would never
    // complete), or make the duplicate wait (no failure within the bounded wait).
    Effect.gen(function* () {
      const release = yield* Latch.make(false)
      const handled: Array<string> = []
      const server = yield* Server.serve({
        pipeline: Pipeline.make({
          framer: lines,
          codec: Packet.utf8,
          handler: Handler.effect((line: string) => {
            handled.push(line)
            const [id, body] = line.split(":") as [string, string]
            return body === "slow"
              ? Effect.as(release.await, `${id}:done ${body}`)
              : Effect.succeed(`${id}:echo ${body}`)
          }).pipe(Handler.concurrent(16, { ordered: false }))
        })
      })
      const client = yield* Client.make({
        port: server.port,
        framer: lines,
        codec: Packet.utf8,
        correlate: { request: (m) => m.split(":")[0], response: (m) => m.split(":")[0] }
      })
      const first = yield* Effect.forkChild(Effect.result(client.request("1:slow")))
      yield* eventually("the first call reached the server", () => handled.length === 1)
      const second = yield* Effect.result(client.request("1:other")).pipe(
        Effect.timeoutOrElse({ duration: 5_000, orElse: () => Effect.die(new Error("the duplicate waited")) })
      )
      expect(Result.isFailure(second) && second.failure).toBeInstanceOf(Errors.DuplicateRequestId)
      expect(Result.isFailure(second) && (second.failure as Errors.DuplicateRequestId).id).toBe("1")
      expect(client.inFlight).toBe(1)
      // Another id goes through meanwhile.
      expect(yield* client.request("2:hi")).toBe("2:echo hi")
      yield* release.open
      expect(yield* Fiber.join(first)).toEqual(Result.succeed("1:done slow"))
      expect(handled).toEqual(["1:slow", "2:hi"])
      expect(client.inFlight).toBe(0)
    }))

  it.live("calls in flight fail with ConnectionClosed whose cause is the FrameTooLarge that ended the connection", () =>
    // The server answers `big` with a line longer than the client's maxLength. A broken client would
    // fail the calls without saying why (no cause), with the wrong error, or leave them waiting.
    Effect.gen(function* () {
      const release = yield* Latch.make(false)
      const handled: Array<string> = []
      const server = yield* Server.serve({
        pipeline: Pipeline.make({
          framer: lines,
          codec: Packet.utf8,
          handler: Handler.effect((line: string) => {
            handled.push(line)
            return line === "big" ? Effect.as(release.await, "x".repeat(64)) : Effect.succeed(`ok ${line}`)
          })
        })
      })
      const client = yield* Client.make({
        port: server.port,
        framer: Frame.lines({ maxLength: 16 }),
        codec: Packet.utf8
      })
      expect(yield* client.request("hi")).toBe("ok hi")
      const calls = yield* Effect.forEach(
        ["big", "next"],
        (m) => Effect.forkChild(Effect.result(client.request(m))),
        { discard: false }
      )
      yield* eventually("both calls in flight", () => client.inFlight === 2 && handled.includes("big"))
      yield* release.open
      for (const call of calls) {
        const result = yield* Fiber.join(call).pipe(
          Effect.timeoutOrElse({ duration: 10_000, orElse: () => Effect.die(new Error("a call never ended")) })
        )
        expect(Result.isFailure(result)).toBe(true)
        const error = (result as Result.Failure<string, Client.RequestError>).failure
        expect(error).toBeInstanceOf(Errors.ConnectionClosed)
        const closed = error as Errors.ConnectionClosed
        expect(closed.cause).toBeInstanceOf(Errors.FrameTooLarge)
        expect((closed.cause as Errors.FrameTooLarge).limit).toBe(16)
      }
      expect(client.inFlight).toBe(0)
    }))

  it.live("calls in flight fail with ConnectionClosed `the server closed the connection` and no cause when the server closes", () =>
    // The server closes the session from outside any handler. A broken client would report another
    // reason (the client's own close, a failure), attach a cause where there was no error, or leave
    // the calls waiting.
    Effect.gen(function* () {
      let hanging = 0
      const server = yield* Server.serve({
        pipeline: Pipeline.make({
          framer: lines,
          codec: Packet.utf8,
          handler: Handler.effect((line: string) => {
            const [id, body] = line.split(":") as [string, string]
            return body === "hang"
              ? Effect.andThen(Effect.sync(() => hanging++), Effect.never)
              : Effect.succeed(`${id}:echo ${body}`)
          }).pipe(Handler.concurrent(16, { ordered: false }))
        })
      })
      const client = yield* Client.make({
        port: server.port,
        framer: lines,
        codec: Packet.utf8,
        correlate: { request: (m) => m.split(":")[0], response: (m) => m.split(":")[0] }
      })
      expect(yield* client.request("1:hi")).toBe("1:echo hi")
      const calls = yield* Effect.forEach(
        range(3),
        (i) => Effect.forkChild(Effect.result(client.request(`${i + 2}:hang`)))
      )
      yield* eventually("3 handlers hanging", () => hanging === 3)
      for (const s of [...server.sessions]) yield* s.close
      for (const call of calls) {
        const result = yield* Fiber.join(call).pipe(
          Effect.timeoutOrElse({ duration: 10_000, orElse: () => Effect.die(new Error("a call never ended")) })
        )
        expect(Result.isFailure(result)).toBe(true)
        const error = (result as Result.Failure<string, Client.RequestError>).failure
        expect(error).toBeInstanceOf(Errors.ConnectionClosed)
        const closed = error as Errors.ConnectionClosed
        expect(closed.reason).toBe("the server closed the connection")
        expect(closed.cause).toBeUndefined()
      }
      expect(client.inFlight).toBe(0)
    }))

  it.live("onDisconnect: once per connection that drops, with the error its calls got, before the reconnect; not when the client stops", () =>
    // The server drops every connection once. A client without the hook (or one that called it from
    // the wrong place) would report nothing, report twice, report an error other than its calls',
    // or report its own stop as a disconnection.
    Effect.gen(function* () {
      const server = yield* Server.serve({
        pipeline: Pipeline.make({
          framer: lines,
          codec: Packet.utf8,
          handler: Handler.effect((line: string) => line === "hang" ? Effect.never : Effect.succeed(`echo ${line}`))
        })
      })
      const reports: Array<{ readonly error: Errors.ConnectionClosed; readonly connected: boolean }> = []
      const clientScope = yield* Scope.make()
      const client = yield* Client.make({
        port: server.port,
        framer: lines,
        codec: Packet.utf8,
        reconnect: Schedule.spaced("20 millis"),
        onDisconnect: (error) => Effect.sync(() => void reports.push({ error, connected: client.connected }))
      }).pipe(Scope.provide(clientScope))
      for (const round of [1, 2]) {
        expect(yield* client.request(`a${round}`)).toBe(`echo a${round}`)
        const hanging = yield* Effect.forkChild(Effect.flip(client.request("hang")))
        yield* eventually("the call is in flight", () => client.inFlight === 1)
        for (const s of [...server.sessions]) yield* s.close
        const callError = yield* Fiber.join(hanging)
        yield* eventually(`report ${round}`, () => reports.length === round)
        expect(reports[round - 1]!.error).toBe(callError)
        expect(reports[round - 1]!.error.reason).toBe("the server closed the connection")
        // Reported before the next connection is up.
        expect(reports[round - 1]!.connected).toBe(false)
        yield* eventually("reconnected", () => client.connected)
      }
      yield* Scope.close(clientScope, Exit.void)
      yield* eventually("the server has no session left", () => server.sessions.size === 0)
      yield* Effect.sleep("50 millis")
      expect(reports.length).toBe(2)
    }))
})
