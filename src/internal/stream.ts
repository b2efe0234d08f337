import type * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import * as Bytes from "../Bytes.ts"
import type * as Pipeline from "../Pipeline.ts"
import { type EngineCore, type Host, makeEngine } from "./engine/index.ts"
import { engineSpec } from "./pipeline.ts"

/** Options of a stream's engine. */
export interface StreamOptions<E, S> {
  readonly state?: S | undefined
  readonly onReply?: ((bytes: Uint8Array) => void) | undefined
  readonly onStop?: ((error: E | undefined) => void) | undefined
}

/** An engine whose host is a stream (no socket), with its context. */
export const streamEngine = <In, Out, E, R, S>(
  pipeline: Pipeline.Pipeline<In, Out, E, R, Pipeline.StreamContext<Out, S>>,
  context: Context.Context<unknown>,
  options: StreamOptions<E, S>,
  outbound: { readonly queuedBytes: () => number; readonly lowWater: Effect.Effect<void> }
): EngineCore => {
  let stopped = false
  const handlerContext = {
    id: "stream",
    state: options.state as S,
    send: (message: Out) => engine.send(message, false),
    sendWait: (message: Out) => engine.send(message, true),
    get close() {
      return engine.close
    }
  }
  const clock = Context.get(context as Context.Context<never>, Clock.Clock)
  const host: Host = {
    handlerContext,
    context,
    write: (writer) => {
      if (options.onReply === undefined) writer.reset()
      else options.onReply(writer.takeCopy())
    },
    resumed: () => {},
    stopped: () => {
      if (stopped) return
      stopped = true
      options.onStop?.(engine.error as E | undefined)
    },
    closeRequested: () => {
      if (engine.stopped === undefined) engine.stopped = "closed"
      host.stopped()
    },
    outboundBytes: outbound.queuedBytes,
    lowWater: outbound.lowWater,
    highWaterMark: 1024 * 1024,
    maxOutboundBytes: 16 * 1024 * 1024,
    canWrite: () => !stopped,
    sessionId: "stream",
    remote: "stream",
    now: () => clock.currentTimeMillisUnsafe(),
    pool: undefined
  }
  const engine = makeEngine(engineSpec(pipeline), host)
  return engine
}

/** `Pipeline.transform`: the pipeline over a stream of byte chunks, with a bounded output. */
export const transform = <E1, R1, In, Out, E, R, S>(
  input: Stream.Stream<Uint8Array, E1, R1>,
  pipeline: Pipeline.Pipeline<In, Out, E, R, Pipeline.StreamContext<Out, S>>,
  options?: Pipeline.TransformOptions<S>
): Stream.Stream<Uint8Array, E | E1, R | R1> =>
  Stream.unwrap(Effect.gen(function* () {
    // Bounded: the input is read no further ahead than a few batches of replies.
    const mailbox = yield* Queue.make<Uint8Array, E | E1 | Cause.Done>({ capacity: 16 })
    // Replies written outside the producer (after a handler suspended, sends) wait here, in order,
    // when the mailbox is full, until the producer moves them; `sendWait` waits for them.
    const overflow: Array<Uint8Array> = []
    let overflowBytes = 0
    let drained: Array<() => void> = []
    const flushOverflow: Effect.Effect<void> = Effect.suspend(() => {
      if (overflow.length === 0) return Effect.void
      const batch = overflow.splice(0)
      overflowBytes = 0
      return Effect.map(Queue.offerAll(mailbox, batch), () => {
        for (const resume of drained.splice(0)) resume()
      })
    })
    /** Set when the engine stopped by itself (a close, or an error met outside a push). */
    let finished = false
    const context = yield* Effect.context<R>()
    const engine = streamEngine(pipeline, context as Context.Context<unknown>, {
      state: options?.state,
      onReply: (bytes) => {
        if (overflow.length > 0 || !Queue.offerUnsafe(mailbox, bytes)) {
          overflow.push(bytes)
          overflowBytes += bytes.length
        }
      },
      onStop: () => {
        finished = true
      }
    }, {
      queuedBytes: () => overflowBytes,
      lowWater: Effect.callback<void>((resume) => {
        if (overflowBytes === 0) return resume(Effect.void)
        drained.push(() => resume(Effect.void))
      })
    })
    yield* Effect.addFinalizer(() => {
      drained = []
      return engine.interrupt()
    })
    const handlerMillis = options?.handlerTimeout === undefined ? undefined : toMillis(options.handlerTimeout)
    if (handlerMillis !== undefined) {
      // The sweeper of this one stream: no timer per message.
      const interval = Math.min(Math.max(handlerMillis / 4, 5), 1000)
      yield* Effect.forkScoped(
        Effect.forever(
          Effect.andThen(
            Effect.sleep(interval),
            Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.sync(() => engine.sweep(now, handlerMillis)))
          )
        )
      )
    }
    const check = (bytes: Uint8Array): Effect.Effect<boolean, E> =>
      Effect.andThen(
        flushOverflow,
        Effect.suspend(() => {
          const sent = bytes.length > 0 ? Effect.asVoid(Queue.offer(mailbox, Bytes.copy(bytes))) : Effect.void
          if (engine.defect !== undefined) return Effect.andThen(sent, Effect.die(engine.defect))
          const error = engine.error as E | undefined
          if (error !== undefined) return Effect.andThen(sent, Effect.fail(error))
          return Effect.as(sent, engine.stopped !== undefined)
        })
      )
    const step = (result: Uint8Array | Effect.Effect<Uint8Array>): Effect.Effect<boolean, E> =>
      result instanceof Uint8Array ? check(result) : Effect.flatMap(result, check)
    const producer = input.pipe(
      Stream.takeUntilEffect((chunk) => finished ? Effect.succeed(true) : step(engine.push(chunk))),
      Stream.runDrain,
      Effect.andThen(Effect.suspend(() => engine.stopped !== undefined ? Effect.void : step(engine.end()))),
      Effect.andThen(flushOverflow),
      Effect.andThen(Effect.suspend(() => {
        if (engine.defect !== undefined) return Effect.die(engine.defect)
        const error = engine.error as E | undefined
        return error === undefined ? Effect.void : Effect.fail(error)
      })),
      Effect.exit,
      Effect.flatMap((exit) => Exit.isSuccess(exit) ? Queue.end(mailbox) : Queue.failCause(mailbox, exit.cause))
    )
    yield* Effect.forkScoped(producer)
    return Stream.fromQueue(mailbox)
  }))

const toMillis = (input: Duration.Input): number => Duration.toMillis(Duration.fromInputUnsafe(input))
