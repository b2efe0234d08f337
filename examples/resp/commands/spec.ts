/**
 * What every command implementation sees: the connection's state (`Conn`, the session's typed
 * state), the server's shared state (`Shared`), and the command table's entries (`Spec`), whose
 * arity, flags and documentation come from Redis 7's own command descriptions (docs.json, generated
 * from redis 7.0.15's src/commands/*.json, BSD-3-Clause; CLIENT SETINFO from 7.2.0).
 */
import type { Session } from "../../../src/index.ts"
import type { Args } from "../args.ts"
import type { Protocol, Reply } from "../reply.ts"
import type { Db, Store } from "../store.ts"
import docs from "./docs.json" with { type: "json" }

/** One connection's state: what `onOpen` returns and every handler finds in `session.state`. */
export interface Conn {
  /** Redis's client id, from 1. */
  readonly id: number
  readonly session: RespSession
  /** RESP2 until `HELLO 3`. */
  proto: Protocol
  /** The selected database (`SELECT`). */
  db: number
  /** `CLIENT SETNAME` / `HELLO ... SETNAME`; "" when none. */
  name: string
  /** `CLIENT SETINFO LIB-NAME` / `LIB-VER`. */
  libName: string
  libVer: string
  /** Channels and patterns subscribed to: in RESP2, a connection with any is in subscribed mode. */
  readonly channels: Set<string>
  readonly patterns: Set<string>
  /** When it connected, and its last command (CLIENT INFO). */
  readonly createdAt: number
  lastCommand: string
}

/** A session of this server. */
export type RespSession = Session.Session<Reply, Conn>

/** The pub/sub registry, as the commands use it (commands/pubsub.ts). */
export interface PubSubRegistry {
  subscribe(conn: Conn, channel: string): boolean
  unsubscribe(conn: Conn, channel: string): boolean
  psubscribe(conn: Conn, pattern: string): boolean
  punsubscribe(conn: Conn, pattern: string): boolean
  publish(channel: string, message: Uint8Array): number
  readonly channelCount: number
  readonly patternCount: number
}

/** What every connection of one server shares. */
export interface Shared {
  readonly store: Store
  readonly pubsub: PubSubRegistry
  /** Open connections, by id. */
  readonly conns: Map<number, Conn>
  readonly startedAt: number
  readonly port: () => number
  /** Connections refused because `maxConnections` were open. */
  readonly rejected: () => number
  readonly stats: { connections: number; commands: number }
  /** The command table (filled once the commands are defined). */
  readonly table: Map<string, Spec>
}

/** The database a connection has selected. */
export const dbOf = (conn: Conn, shared: Shared): Db => shared.store.dbs[conn.db]!

/** A command's implementation. Its arguments are read in place, in the request's frame (see args.ts). */
export type Run = (args: Args, conn: Conn, shared: Shared) => Reply

/** A command's documentation and metadata, as COMMAND DOCS and COMMAND INFO give them. */
export interface Doc {
  readonly summary: string
  readonly since: string
  readonly group: string
  readonly complexity?: string
  readonly arity: number
  readonly flags: ReadonlyArray<string>
  readonly acl: ReadonlyArray<string>
  readonly keys: ReadonlyArray<number>
  readonly arguments?: ReadonlyArray<DocArgument>
}

/** One argument of a command, as COMMAND DOCS describes it. */
export interface DocArgument {
  readonly name: string
  readonly type: string
  readonly token?: string
  readonly flags?: ReadonlyArray<string>
  readonly arguments?: ReadonlyArray<DocArgument>
}

/** An entry of the command table. */
export interface Spec {
  /** Its full name, lower case: `get`, `client|setname`. */
  readonly name: string
  readonly doc: Doc
  readonly run: Run
  readonly subcommands: ReadonlyMap<string, Spec> | undefined
  /** Allowed in RESP2's subscribed mode (PING, QUIT, RESET and the (un)subscribe commands). */
  readonly pubsub: boolean
}

const docOf = (name: string): Doc => {
  const doc = (docs as Record<string, Doc>)[name]
  if (doc === undefined) throw new Error(`no documentation for the command "${name}" in docs.json`)
  return doc
}

/** A command (or a subcommand: `"client|setname"`). */
export const command = (name: string, run: Run, options?: { readonly pubsub?: boolean }): Spec => ({
  name,
  doc: docOf(name),
  run,
  subcommands: undefined,
  pubsub: options?.pubsub ?? false
})

/** A container command (CLIENT, COMMAND, CONFIG), run by its subcommands; alone it is run by `run`. */
export const container = (name: string, subcommands: ReadonlyArray<Spec>, run?: Run): Spec => ({
  name,
  doc: docOf(name),
  run: run ?? (() => {
    throw new Error(`${name} has no implementation of its own`)
  }),
  subcommands: new Map(subcommands.map((spec) => [spec.name.slice(name.length + 1), spec])),
  pubsub: false
})

// --- arguments -------------------------------------------------------------------------------------

/** An argument as C sees it with `%s`: up to its first NUL (and at most `max` bytes), as a binary string. */
export const cString = (arg: Uint8Array, max = Infinity): string => {
  const nul = arg.indexOf(0)
  const length = Math.min(nul === -1 ? arg.length : nul, max)
  let text = ""
  for (let i = 0; i < length; i++) text += String.fromCharCode(arg[i]!)
  return text
}

/** Redis's `addReplyErrorFormat`: an `ERR` error whose text has its CR and LF made spaces. */
export const sanitize = (text: string): string => text.replace(/[\r\n]/g, " ")
