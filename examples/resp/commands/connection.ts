/**
 * Connection commands, as networking.c and server.c have them: PING, ECHO, QUIT, RESET, HELLO
 * (protocol 2 or 3, AUTH, SETNAME), AUTH, and CLIENT SETNAME / GETNAME / ID / SETINFO / INFO /
 * LIST / HELP.
 *
 * There are no passwords: as in a default redis-server, the `default` user has `nopass`, so
 * `AUTH default <anything>` succeeds and any other user fails with WRONGPASS.
 */
import * as Effect from "effect/Effect"
import { Transport } from "../../../src/index.ts"
import type { Args } from "../args.ts"
import { binary, error, ErrorReply, OK, PONG, RESP2, RESP3, Status, SYNTAX } from "../reply.ts"
import { command, type Conn, container, cString, sanitize, type Shared, type Spec } from "./spec.ts"

/** What HELLO says the server is (redis-server says "redis" and its version). */
export const SERVER_NAME = "sluice"
export const SERVER_VERSION = "0.1.0"

const WRONGPASS = new ErrorReply("WRONGPASS invalid username-password pair or user is disabled.")
const BAD_NAME = error("Client names cannot contain spaces, newlines or special characters.")

/** Redis's `validateClientAttr`: printable ASCII without spaces. */
const validName = (name: Uint8Array): boolean => {
  for (const c of name) if (c < 33 || c > 126) return false
  return true
}

const ping = command("ping", (args, conn) => {
  if (args.length > 2) return error("wrong number of arguments for 'ping' command")
  // In RESP2's subscribed mode PING answers as a message would: ["pong", message].
  if (conn.proto.version === 2 && conn.channels.size + conn.patterns.size > 0) {
    return ["pong", args.length === 1 ? "" : args.bytes(1)]
  }
  return args.length === 1 ? PONG : args.bytes(1)
}, { pubsub: true })

const echo = command("echo", (args) => args.bytes(1))

const quit = command("quit", (_args, conn) => {
  Effect.runSync(conn.session.close)
  return OK
}, { pubsub: true })

/** Redis's `clearClientConnectionState`: db 0, RESP2, no subscriptions, no name. */
const reset = command("reset", (_args, conn, shared) => {
  conn.db = 0
  conn.proto = RESP2
  for (const channel of [...conn.channels]) shared.pubsub.unsubscribe(conn, channel)
  for (const pattern of [...conn.patterns]) shared.pubsub.punsubscribe(conn, pattern)
  conn.name = ""
  return new Status("RESET")
}, { pubsub: true })

/** Whether the user `args[at]` authenticates: only `default`, which needs no password. */
const authenticates = (args: Args, at: number): boolean => args.key(at) === "default"

const hello = command("hello", (args, conn) => {
  let version = 0
  let next = 1
  if (args.length >= 2) {
    const parsed = args.int64(next++)
    if (parsed === undefined) return error("Protocol version is not an integer or out of range")
    if (parsed < 2n || parsed > 3n) return error("-NOPROTO unsupported protocol version")
    version = Number(parsed)
  }
  let name: Uint8Array | undefined
  for (let j = next; j < args.length; j++) {
    const more = args.length - 1 - j
    if (args.is(j, "auth") && more >= 2) {
      if (!authenticates(args, j + 1)) return WRONGPASS
      j += 2
    } else if (args.is(j, "setname") && more >= 1) {
      name = args.bytes(++j)
      if (!validName(name)) return BAD_NAME
      // As Redis, the name is set even if a later option fails.
      conn.name = binary(name)
    } else {
      return error(sanitize(`Syntax error in HELLO option '${cString(args.bytes(j))}'`))
    }
  }
  if (version !== 0) conn.proto = version === 3 ? RESP3 : RESP2
  return conn.proto.map([
    "server",
    SERVER_NAME,
    "version",
    SERVER_VERSION,
    "proto",
    conn.proto.version,
    "id",
    conn.id,
    "mode",
    "standalone",
    "role",
    "master",
    "modules",
    []
  ])
})

const auth = command("auth", (args) => {
  if (args.length > 3) return SYNTAX
  if (args.length === 2) {
    return error(
      "AUTH <password> called without any password configured for the default user. " +
        "Are you sure your configuration is correct?"
    )
  }
  return authenticates(args, 1) ? OK : WRONGPASS
})

/** One line of CLIENT LIST / CLIENT INFO (the fields Redis's `catClientInfoString` starts with). */
const clientInfo = (conn: Conn, shared: Shared): string => {
  const session = conn.session
  const address = (a: Transport.Address) => a._tag === "Tcp" ? `${a.host}:${a.port}` : `${a.path}:0`
  const age = Math.floor((shared.store.now() - conn.createdAt) / 1000)
  const flags = conn.channels.size + conn.patterns.size > 0 ? "P" : "N"
  return `id=${conn.id} addr=${address(session.remoteAddress)} laddr=${address(session.localAddress)} ` +
    `fd=-1 name=${conn.name} age=${age} idle=0 flags=${flags} db=${conn.db} sub=${conn.channels.size} ` +
    `psub=${conn.patterns.size} ssub=0 multi=-1 obl=0 omem=${session.queuedBytes} cmd=${conn.lastCommand} ` +
    `user=default redir=-1 resp=${conn.proto.version} lib-name=${conn.libName} lib-ver=${conn.libVer}\n`
}

const client = container("client", [
  command("client|setname", (args, conn) => {
    const name = args.bytes(2)
    if (!validName(name)) return BAD_NAME
    conn.name = binary(name)
    return OK
  }),
  command("client|getname", (_args, conn) => conn.name === "" ? conn.proto.nil : conn.name),
  command("client|id", (_args, conn) => conn.id),
  command("client|setinfo", (args, conn) => {
    const attr = args.bytes(2)
    const value = args.bytes(3)
    const lib = args.is(2, "lib-name") ? "libName" : args.is(2, "lib-ver") ? "libVer" : undefined
    if (lib === undefined) return error(sanitize(`Unrecognized option '${cString(attr)}'`))
    if (!validName(value.subarray(0, value.indexOf(0) === -1 ? value.length : value.indexOf(0)))) {
      return error(sanitize(`${cString(attr)} cannot contain spaces, newlines or special characters.`))
    }
    conn[lib] = binary(value)
    return OK
  }),
  command("client|info", (_args, conn, shared) => conn.proto.verbatim(clientInfo(conn, shared))),
  command("client|list", (args, conn, shared) => {
    let conns = [...shared.conns.values()]
    if (args.length === 4 && args.is(2, "type")) {
      const type = args.lowerName(3)
      if (type === "pubsub") conns = conns.filter((c) => c.channels.size + c.patterns.size > 0)
      else if (type === "normal") conns = conns.filter((c) => c.channels.size + c.patterns.size === 0)
      else if (type === "master" || type === "replica" || type === "slave") conns = []
      else return error(sanitize(`Unknown client type '${cString(args.bytes(3))}'`))
    } else if (args.length > 3 && args.is(2, "id")) {
      const ids = new Set<number>()
      for (let j = 3; j < args.length; j++) {
        const id = args.int64(j)
        if (id === undefined || id < 1n) return error("Invalid client ID")
        ids.add(Number(id))
      }
      conns = conns.filter((c) => ids.has(c.id))
    } else if (args.length !== 2) {
      return SYNTAX
    }
    return conn.proto.verbatim(conns.map((c) => clientInfo(c, shared)).join(""))
  }),
  command("client|help", () =>
    [
      "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
      "GETNAME",
      "    Return the name of the current connection.",
      "ID",
      "    Return the ID of the current connection.",
      "INFO",
      "    Return information about the current client connection.",
      "LIST [options ...]",
      "    Return information about client connections. Options:",
      "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
      "      Return clients of specified type.",
      "SETINFO <option> <value>",
      "    Set client meta attr. Options are:",
      "    * LIB-NAME: the client lib name.",
      "    * LIB-VER: the client lib version.",
      "SETNAME <name>",
      "    Assign the name <name> to the current connection.",
      "HELP",
      "    Print this help."
    ].map((line) => new Status(line)))
])

export const connection: ReadonlyArray<Spec> = [ping, echo, quit, reset, hello, auth, client]
