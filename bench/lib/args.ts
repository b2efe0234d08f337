/** Command-line options of the bench programs: `--name value` pairs and bare `--flag`s. */
import process from "node:process"

export const argv: ReadonlyArray<string> = process.argv.slice(2)

/** The value after `name`, or `fallback` (by default `undefined`) when `name` is absent or last. */
export function option(name: string): string | undefined
export function option(name: string, fallback: string): string
export function option(name: string, fallback?: string): string | undefined {
  const at = argv.indexOf(name)
  return at === -1 || at + 1 >= argv.length ? fallback : argv[at + 1]
}

/** Whether the bare flag `name` was given. */
export const flag = (name: string): boolean => argv.includes(name)
