/**
 * What tools ask a server about itself: INFO (with `loading:0`, which ioredis's ready check reads),
 * COMMAND (COUNT, DOCS, INFO, LIST, HELP: redis-cli 7 builds its help and hints from COMMAND DOCS)
 * and CONFIG GET (redis-benchmark asks for `save` and `appendonly`), from this server's own table.
 */
import { stringMatch } from "../glob.ts"
import { type Reply, Status, SYNTAX } from "../reply.ts"
import { DATABASES } from "../store.ts"
import { SERVER_NAME, SERVER_VERSION } from "./connection.ts"
import { command, type Conn, container, type DocArgument, type Shared, type Spec } from "./spec.ts"

// --- INFO ------------------------------------------------------------------------------------------

const sections: Record<string, (shared: Shared) => Array<string>> = {
  server: (shared) => [
    "redis_version:7.0.15",
    `${SERVER_NAME}_version:${SERVER_VERSION}`,
    "redis_mode:standalone",
    "arch_bits:64",
    `tcp_port:${shared.port()}`,
    `uptime_in_seconds:${Math.floor((shared.store.now() - shared.startedAt) / 1000)}`,
    `uptime_in_days:${Math.floor((shared.store.now() - shared.startedAt) / 86_400_000)}`
  ],
  clients: (shared) => {
    let pubsub = 0
    for (const conn of shared.conns.values()) if (conn.channels.size + conn.patterns.size > 0) pubsub++
    return [`connected_clients:${shared.conns.size}`, `pubsub_clients:${pubsub}`, "blocked_clients:0"]
  },
  persistence: () => ["loading:0", "async_loading:0", "rdb_changes_since_last_save:0", "aof_enabled:0"],
  stats: (shared) => [
    `total_connections_received:${shared.stats.connections}`,
    `total_commands_processed:${shared.stats.commands}`,
    `rejected_connections:${shared.rejected()}`,
    `expired_keys:${shared.store.expiredKeys}`,
    `pubsub_channels:${shared.pubsub.channelCount}`,
    `pubsub_patterns:${shared.pubsub.patternCount}`
  ],
  replication: () => ["role:master", "connected_slaves:0"],
  keyspace: (shared) => {
    const lines: Array<string> = []
    shared.store.dbs.forEach((db, i) => {
      if (db.keys.size > 0) lines.push(`db${i}:keys=${db.keys.size},expires=${db.expires.size},avg_ttl=0`)
    })
    return lines
  }
}

const titles: Record<string, string> = {
  server: "Server",
  clients: "Clients",
  persistence: "Persistence",
  stats: "Stats",
  replication: "Replication",
  keyspace: "Keyspace"
}

const info = command("info", (args, conn, shared) => {
  const wanted = new Set(Array.from({ length: args.length - 1 }, (_, j) => args.lowerName(j + 1)))
  const all = wanted.size === 0 || wanted.has("all") || wanted.has("everything") || wanted.has("default")
  const text = Object.keys(sections)
    .filter((name) => all || wanted.has(name))
    .map((name) => `# ${titles[name]}\r\n${sections[name]!(shared).map((line) => `${line}\r\n`).join("")}`)
    .join("\r\n")
  return conn.proto.verbatim(text)
})

// --- COMMAND ---------------------------------------------------------------------------------------

const statuses = (conn: Conn, names: ReadonlyArray<string>): Reply => conn.proto.set(names.map((n) => new Status(n)))

/** COMMAND INFO's 10 fields: name, arity, flags, first key, last key, step, categories, tips, key specs, subcommands. */
const infoOf = (spec: Spec, conn: Conn): Reply => {
  const doc = spec.doc
  return [
    spec.name,
    doc.arity,
    statuses(conn, doc.flags),
    doc.keys[0]!,
    doc.keys[1]!,
    doc.keys[2]!,
    statuses(conn, doc.acl),
    conn.proto.set([]),
    conn.proto.set([]),
    spec.subcommands === undefined ? conn.proto.set([]) : [...spec.subcommands.values()].map((s) => infoOf(s, conn))
  ]
}

const argumentsOf = (args: ReadonlyArray<DocArgument>, conn: Conn): Reply =>
  args.map((arg) => {
    const items: Array<Reply> = ["name", arg.name, "type", arg.type]
    if (arg.token !== undefined) items.push("token", arg.token)
    if (arg.flags !== undefined) items.push("flags", statuses(conn, arg.flags))
    if (arg.arguments !== undefined) items.push("arguments", argumentsOf(arg.arguments, conn))
    return conn.proto.map(items)
  })

/** COMMAND DOCS's map of one command. */
const docsOf = (spec: Spec, conn: Conn): Reply => {
  const doc = spec.doc
  const items: Array<Reply> = ["summary", doc.summary, "since", doc.since, "group", doc.group]
  if (doc.complexity !== undefined) items.push("complexity", doc.complexity)
  if (doc.arguments !== undefined) items.push("arguments", argumentsOf(doc.arguments, conn))
  if (spec.subcommands !== undefined) {
    items.push("subcommands", conn.proto.map([...spec.subcommands.values()].flatMap((s) => [s.name, docsOf(s, conn)])))
  }
  return conn.proto.map(items)
}

/** Redis's `lookupCommandBySds`: `get`, or `client|setname` (in lower case). */
const lookup = (shared: Shared, fullName: string): Spec | undefined => {
  const [name, sub, ...rest] = fullName.split("|")
  const spec = shared.table.get(name!)
  if (sub === undefined || rest.length > 0) return sub === undefined ? spec : undefined
  return spec?.subcommands?.get(sub)
}

const commandSpec = container("command", [
  command("command|count", (_args, _conn, shared) => shared.table.size),
  command("command|docs", (args, conn, shared) => {
    const specs = args.length === 2
      ? [...shared.table.values()]
      : Array.from({ length: args.length - 2 }, (_, j) => lookup(shared, args.lowerName(j + 2)))
        .filter((s): s is Spec => s !== undefined)
    return conn.proto.map(specs.flatMap((spec) => [spec.name, docsOf(spec, conn)]))
  }),
  command("command|info", (args, conn, shared) => {
    if (args.length === 2) return [...shared.table.values()].map((spec) => infoOf(spec, conn))
    return Array.from({ length: args.length - 2 }, (_, j) => {
      const spec = lookup(shared, args.lowerName(j + 2))
      return spec === undefined ? conn.proto.nil : infoOf(spec, conn)
    })
  }),
  command("command|list", (args, _conn, shared) => {
    const names = [...shared.table.values()].flatMap((spec) =>
      spec.subcommands === undefined ? [spec.name] : [spec.name, ...[...spec.subcommands.values()].map((s) => s.name)]
    )
    if (args.length === 2) return names
    if (args.length !== 5 || !args.is(2, "filterby")) return SYNTAX
    const value = args.key(4)
    if (args.is(3, "pattern")) return names.filter((name) => stringMatch(value, name, true))
    if (args.is(3, "aclcat")) return names.filter((name) => lookup(shared, name)!.doc.acl.includes(`@${value}`))
    if (args.is(3, "module")) return []
    return SYNTAX
  }),
  command("command|help", () =>
    [
      "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
      "(no subcommand)",
      "    Return details about all Redis commands.",
      "COUNT",
      "    Return the total number of commands in this Redis server.",
      "LIST",
      "    Return a list of all commands in this Redis server.",
      "INFO [<command-name> ...]",
      "    Return details about multiple Redis commands.",
      "DOCS [<command-name> ...]",
      "    Return documentation details about multiple Redis commands.",
      "HELP",
      "    Print this help."
    ].map((line) => new Status(line)))
], (_args, conn, shared) => [...shared.table.values()].map((spec) => infoOf(spec, conn)))

// --- CONFIG GET ------------------------------------------------------------------------------------

/** The configuration this server reports: Redis's names, this server's values. */
const configuration = (shared: Shared): Array<[string, string]> => [
  ["save", ""],
  ["appendonly", "no"],
  ["databases", String(DATABASES)],
  ["port", String(shared.port())],
  ["timeout", "0"],
  ["maxmemory", "0"],
  ["proto-max-bulk-len", String(512 * 1024 * 1024)]
]

const config = container("config", [
  command("config|get", (args, conn, shared) => {
    const found = new Map<string, string>()
    const all = configuration(shared)
    for (let j = 2; j < args.length; j++) {
      const pattern = args.key(j)
      for (const [name, value] of all) if (stringMatch(pattern, name, true)) found.set(name, value)
    }
    return conn.proto.map([...found].flat())
  }),
  command("config|help", () =>
    [
      "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
      "GET <pattern>",
      "    Return parameters matching the glob-like <pattern> and their values.",
      "HELP",
      "    Print this help."
    ].map((line) => new Status(line)))
])

export const introspection: ReadonlyArray<Spec> = [info, commandSpec, config]
