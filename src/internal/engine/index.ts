import { ConcurrentEngine } from "./concurrent.ts"
import type { EngineCore, Host, Spec } from "./core.ts"
import { SequentialEngine } from "./sequential.ts"

export {
  CurrentSlot,
  EngineCore,
  type Host,
  type LastReply,
  type Recover,
  type Spec,
  type Step,
  SUSPENDED
} from "./core.ts"

/** The engine of a pipeline for one connection: sequential, or concurrent as its handler says. */
export const makeEngine = (spec: Spec, host: Host): EngineCore => {
  const concurrency = spec.handler.concurrency
  return concurrency._tag === "Concurrent"
    ? new ConcurrentEngine(spec, host, concurrency.limit, concurrency.ordered)
    : new SequentialEngine(spec, host)
}
