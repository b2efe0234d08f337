/**
 * Which runtime this program runs on: the one place that looks at `globalThis.Bun` and
 * `globalThis.Deno`.
 */

/** The runtimes sluice has a native transport for. */
export type RuntimeName = "bun" | "deno" | "node"

/** `globalThis.Bun`, else `globalThis.Deno`, else Node. */
export const runtime: RuntimeName = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined"
  ? "bun"
  : typeof (globalThis as { Deno?: unknown }).Deno !== "undefined"
  ? "deno"
  : "node"

/** Bun's global object, where the program runs on Bun. */
export const bunGlobal = <A>(): A | undefined => (globalThis as unknown as { Bun?: A }).Bun

/** Deno's global object, where the program runs on Deno. */
export const denoGlobal = <A>(): A | undefined => (globalThis as unknown as { Deno?: A }).Deno
