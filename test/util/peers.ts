/**
 * System programs the interop suite talks to (redis-server, curl, wrk, ...). A missing one fails
 * with the Debian package to install: the interop suite never skips silently.
 */
import * as childProcess from "node:child_process"

/** Program -> the Debian package that ships it. */
export const packages = {
  "redis-server": "redis-server",
  "redis-cli": "redis-tools",
  "redis-benchmark": "redis-tools",
  curl: "curl",
  wrk: "wrk",
  nc: "netcat-openbsd",
  promtool: "prometheus"
} as const

export type Program = keyof typeof packages

const found = new Map<string, string | undefined>()

/** The absolute path of `program`, or undefined. */
export const which = (program: string): string | undefined => {
  if (!found.has(program)) {
    const result = childProcess.spawnSync("sh", ["-c", `command -v ${program}`], { encoding: "utf8" })
    found.set(program, result.status === 0 ? result.stdout.trim() : undefined)
  }
  return found.get(program)
}

/** The path of `program`; throws naming its Debian package when it is not installed. */
export const require = (program: Program): string => {
  const where = which(program)
  if (where === undefined) {
    throw new Error(
      `${program} is not installed: the interop suite needs it (Debian package "${packages[program]}": ` +
        `apt-get install -y ${packages[program]}; .ci/run installs it)`
    )
  }
  return where
}
