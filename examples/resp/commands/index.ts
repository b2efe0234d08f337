/**
 * The command table and the dispatcher: what `processCommand` (server.c) does before a command
 * runs, in its order: an empty command is ignored; an unknown command or subcommand, a wrong arity,
 * and a command outside RESP2's subscribed-mode allow list are answered with Redis's errors, and
 * the connection goes on.
 */
import * as Effect from "effect/Effect"
import { error, NONE, type Reply } from "../reply.ts"
import { connection } from "./connection.ts"
import { introspection } from "./introspection.ts"
import { keyspace } from "./keyspace.ts"
import { lists } from "./lists.ts"
import { pubsub } from "./pubsub.ts"
import { type Args, nameHash } from "../args.ts"
import { cString, type RespSession, sanitize, type Shared, type Spec } from "./spec.ts"
import { strings } from "./strings.ts"

/** Every command, by name. */
export const table = (): Map<string, Spec> =>
  new Map([...connection, ...strings, ...keyspace, ...lists, ...pubsub, ...introspection].map((s) => [s.name, s]))

/** C's `toupper` over a binary string: a-z only. */
const upper = (text: string): string => text.replace(/[a-z]/g, (c) => c.toUpperCase())

/** `commandCheckExistence`'s error for an unknown command. */
const unknownCommand = (args: Args): Reply => {
  let list = ""
  for (let i = 1; i < args.length && list.length < 128; i++) list += `'${cString(args.bytes(i), 128 - list.length)}' `
  return error(sanitize(`unknown command '${cString(args.bytes(0), 128)}', with args beginning with: ${list}`))
}

/** Whether a connection is in RESP2's subscribed mode, where only a few commands are allowed. */
const subscribedMode = (session: RespSession): boolean => {
  const conn = session.state
  return conn.proto.version === 2 && conn.channels.size + conn.patterns.size > 0
}

/** The table by `nameHash`, so that finding a command makes no string. */
const byHash = (table: ReadonlyMap<string, Spec>): Map<number, Spec> => {
  const index = new Map<number, Spec>()
  for (const spec of table.values()) {
    const hash = nameHash(spec.name)
    if (index.has(hash)) throw new Error(`"${spec.name}" and "${index.get(hash)!.name}" have the same hash`)
    index.set(hash, spec)
  }
  return index
}

/** The handler: one command in, its reply out. */
export const dispatch = (shared: Shared) => {
  const index = byHash(shared.table)
  return (args: Args, session: RespSession): Reply => {
    if (args.length === 0) return NONE
    const found = index.get(args.nameHash(0))
    return found !== undefined && args.isName(0, found.name)
      ? run(shared, found, args, session)
      : unknown(shared, args, session)
  }
}

/** A command that is not in the table (or, for a container, a subcommand that is not). */
const unknown = (shared: Shared, args: Args, session: RespSession): Reply => {
  const name = args.lowerName(0)
  const spec = shared.table.get(name)
  if (spec === undefined) {
    if (name === "host:" || name === "post") {
      // Redis's `securityWarningCommand`: a cross-protocol attack (an HTTP request) is dropped unanswered.
      Effect.runFork(Effect.logWarning(`possible security attack: "${name}" from ${session.id}; connection closed`))
      Effect.runSync(session.close)
      return NONE
    }
    return unknownCommand(args)
  }
  return run(shared, spec, args, session)
}

/** Runs a command found in the table: its subcommand, its arity, subscribed mode, then the command. */
const run = (shared: Shared, found: Spec, args: Args, session: RespSession): Reply => {
  let spec = found
  if (spec.subcommands !== undefined && args.length > 1) {
    const sub = spec.subcommands.get(args.lowerName(1))
    if (sub === undefined) {
      return error(
        sanitize(`unknown subcommand '${cString(args.bytes(1), 128)}'. Try ${upper(cString(args.bytes(0)))} HELP.`)
      )
    }
    spec = sub
  }
  const arity = spec.doc.arity
  if ((arity > 0 && arity !== args.length) || args.length < -arity) {
    return error(`wrong number of arguments for '${spec.name}' command`)
  }
  if (!spec.pubsub && subscribedMode(session)) {
    return error(
      `Can't execute '${spec.name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in ` +
        "this context"
    )
  }
  const conn = session.state
  conn.lastCommand = spec.name
  shared.stats.commands++
  return spec.run(args, conn, shared)
}
