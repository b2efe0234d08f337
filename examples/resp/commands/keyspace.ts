/**
 * Keyspace commands, as db.c and expire.c have them: DEL, EXISTS, TYPE, KEYS, DBSIZE, FLUSHALL,
 * SELECT, EXPIRE / PEXPIRE (NX, XX, GT, LT), TTL / PTTL, PERSIST.
 */
import { stringMatch } from "../glob.ts"
import type { Args } from "../args.ts"
import { INT64_MAX } from "../int64.ts"
import { bytesOf, error, NOT_INTEGER, OK, type Reply, Status, SYNTAX } from "../reply.ts"
import { DATABASES } from "../store.ts"
import { command, type Conn, cString, dbOf, sanitize, type Shared, type Spec } from "./spec.ts"

const del = command("del", (args, conn, shared) => {
  const db = dbOf(conn, shared)
  let deleted = 0
  for (let j = 1; j < args.length; j++) {
    const key = args.key(j)
    // An expired key is not counted as deleted (Redis's `expireIfNeeded` first).
    if (shared.store.lookup(db, key) !== undefined && shared.store.delete(db, key)) deleted++
  }
  return deleted
})

const exists = command("exists", (args, conn, shared) => {
  const db = dbOf(conn, shared)
  let count = 0
  for (let j = 1; j < args.length; j++) if (shared.store.lookup(db, args.key(j)) !== undefined) count++
  return count
})

const type = command("type", (args, conn, shared) => {
  const value = shared.store.lookup(dbOf(conn, shared), args.key(1))
  return new Status(value === undefined ? "none" : value instanceof Uint8Array ? "string" : "list")
})

const keys = command("keys", (args, conn, shared) => {
  const db = dbOf(conn, shared)
  const pattern = args.key(1)
  const all = pattern === "*"
  const found: Array<Reply> = []
  for (const key of db.keys.keys()) {
    if ((all || stringMatch(pattern, key)) && shared.store.isLive(db, key)) found.push(bytesOf(key))
  }
  return found
})

const dbsize = command("dbsize", (_args, conn, shared) => dbOf(conn, shared).keys.size)

const flushall = command("flushall", (args, _conn, shared) => {
  if (args.length > 2 || (args.length === 2 && !args.is(1, "sync") && !args.is(1, "async"))) return SYNTAX
  shared.store.flushAll()
  return OK
})

const select = command("select", (args, conn) => {
  const id = args.int64(1)
  if (id === undefined) return NOT_INTEGER
  if (id < -2147483648n || id > 2147483647n) {
    return error("value is out of range, value must between -2147483648 and 2147483647")
  }
  if (id < 0n || id >= BigInt(DATABASES)) return error("DB index is out of range")
  conn.db = Number(id)
  return OK
})

const NXF = 1
const XXF = 2
const GTF = 4
const LTF = 8

/** `expireGenericCommand`: `basetime` is now, `unit` 1000 for seconds. */
const expireGeneric = (name: string, unit: number) => (args: Args, conn: Conn, shared: Shared): Reply => {
  let flags = 0
  for (let j = 3; j < args.length; j++) {
    if (args.is(j, "nx")) flags |= NXF
    else if (args.is(j, "xx")) flags |= XXF
    else if (args.is(j, "gt")) flags |= GTF
    else if (args.is(j, "lt")) flags |= LTF
    else return error(sanitize(`Unsupported option ${cString(args.bytes(j))}`))
  }
  if (flags & NXF && flags & (XXF | GTF | LTF)) {
    return error("NX and XX, GT or LT options at the same time are not compatible")
  }
  if (flags & GTF && flags & LTF) return error("GT and LT options at the same time are not compatible")
  let when = args.int64(2)
  if (when === undefined) return NOT_INTEGER
  const invalid = error(`invalid expire time in '${name}' command`)
  if (unit === 1000) {
    if (when > INT64_MAX / 1000n || when < -INT64_MAX / 1000n) return invalid
    when *= 1000n
  }
  const store = shared.store
  const now = BigInt(store.now())
  if (when > INT64_MAX - now) return invalid
  when += now
  const db = dbOf(conn, shared)
  const key = args.key(1)
  if (store.lookup(db, key) === undefined) return 0
  if (flags !== 0) {
    const current = BigInt(store.expireTime(db, key))
    if (flags & NXF && current !== -1n) return 0
    if (flags & XXF && current === -1n) return 0
    if (flags & GTF && (when <= current || current === -1n)) return 0
    if (flags & LTF && current !== -1n && when >= current) return 0
  }
  if (when <= now) {
    store.delete(db, key)
    return 1
  }
  store.setExpire(db, key, Number(when))
  return 1
}

const expire = command("expire", expireGeneric("expire", 1000))
const pexpire = command("pexpire", expireGeneric("pexpire", 1))

/** `ttlGenericCommand`. */
const ttlGeneric = (ms: boolean) => (args: Args, conn: Conn, shared: Shared): Reply => {
  const db = dbOf(conn, shared)
  const key = args.key(1)
  if (shared.store.lookup(db, key) === undefined) return -2
  const when = shared.store.expireTime(db, key)
  if (when === -1) return -1
  const ttl = Math.max(when - shared.store.now(), 0)
  return ms ? ttl : Math.floor((ttl + 500) / 1000)
}

const ttl = command("ttl", ttlGeneric(false))
const pttl = command("pttl", ttlGeneric(true))

const persist = command("persist", (args, conn, shared) => {
  const db = dbOf(conn, shared)
  const key = args.key(1)
  if (shared.store.lookup(db, key) === undefined) return 0
  return shared.store.persist(db, key) ? 1 : 0
})

export const keyspace: ReadonlyArray<Spec> = [
  del,
  exists,
  type,
  keys,
  dbsize,
  flushall,
  select,
  expire,
  pexpire,
  ttl,
  pttl,
  persist
]
