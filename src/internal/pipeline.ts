import type * as Pipeline from "../Pipeline.ts"
import type { LastReply, Recover, Spec } from "./engine/index.ts"

/** Where a pipeline keeps its recoveries and its last reply: how it runs, not part of its interface. */
export const RecoveryKey: unique symbol = Symbol.for("sluice/Pipeline/recovery")

export interface Recovery {
  readonly recover: Recover | undefined
  readonly lastReply: LastReply | undefined
}

export const recoveryOf = (pipeline: Pipeline.Pipeline.Any): Recovery =>
  (pipeline as unknown as { readonly [RecoveryKey]: Recovery })[RecoveryKey]

/** What the engine needs of a pipeline. */
export const engineSpec = (pipeline: Pipeline.Pipeline.Any): Spec => ({
  framer: pipeline.framer,
  codec: pipeline.codec,
  handler: pipeline.handler,
  ...recoveryOf(pipeline)
})
