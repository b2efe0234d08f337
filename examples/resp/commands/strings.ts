/**
 * String commands, as t_string.c has them: GET, SET (NX, XX, GET, EX, PX, EXAT, PXAT, KEEPTTL),
 * APPEND, STRLEN, INCR, INCRBY, DECR, DECRBY, MGET, MSET. Counters are signed 64-bit, with Redis's
 * errors for a value that is not an integer and for an overflow.
 */
import type { Args } from "../args.ts"
import { error, NOT_INTEGER, OK, type Reply, SYNTAX, WRONGTYPE } from "../reply.ts"
import { INT64_MAX, INT64_MIN, integerOf } from "../int64.ts"
import { command, type Conn, dbOf, type Shared, type Spec } from "./spec.ts"

/** Redis's `proto-max-bulk-len`: the longest string APPEND may make. */
const MAX_STRING = 512 * 1024 * 1024

const expireTimeError = (name: string): Reply => error(`invalid expire time in '${name}' command`)

const NX = 1
const XX = 2
const GET = 4
const KEEPTTL = 8
const EX = 16
const PX = 32
const EXAT = 64
const PXAT = 128

/** SET's options, as `parseExtendedStringArgumentsOrReply` reads them (the same repeats pass). */
const setOptions = (args: Args): { flags: number; expire: number } | undefined => {
  let flags = 0
  let expire = -1
  const timed = EX | PX | EXAT | PXAT
  for (let j = 3; j < args.length; j++) {
    const hasNext = j < args.length - 1
    if (args.is(j, "nx") && !(flags & XX)) flags |= NX
    else if (args.is(j, "xx") && !(flags & NX)) flags |= XX
    else if (args.is(j, "get")) flags |= GET
    else if (args.is(j, "keepttl") && !(flags & timed)) flags |= KEEPTTL
    else if (args.is(j, "ex") && !(flags & (KEEPTTL | EXAT | PX | PXAT)) && hasNext) {
      flags |= EX
      expire = ++j
    } else if (args.is(j, "px") && !(flags & (KEEPTTL | EX | EXAT | PXAT)) && hasNext) {
      flags |= PX
      expire = ++j
    } else if (args.is(j, "exat") && !(flags & (KEEPTTL | EX | PX | PXAT)) && hasNext) {
      flags |= EXAT
      expire = ++j
    } else if (args.is(j, "pxat") && !(flags & (KEEPTTL | EX | EXAT | PX)) && hasNext) {
      flags |= PXAT
      expire = ++j
    } else return undefined
  }
  return { flags, expire }
}

/** The absolute expiry time in ms of SET's EX/PX/EXAT/PXAT argument (`args[at]`), or the error to answer. */
const expireAt = (args: Args, at: number, flags: number, now: number): number | Reply => {
  const value = args.int64(at)
  if (value === undefined) return NOT_INTEGER
  const seconds = (flags & (EX | EXAT)) !== 0
  if (value <= 0n || (seconds && value > INT64_MAX / 1000n)) return expireTimeError("set")
  let ms = seconds ? value * 1000n : value
  if (flags & (EX | PX)) ms += BigInt(now)
  // Past LLONG_MAX, C's addition wraps to a negative number: Redis's "overflow detected".
  if (ms > INT64_MAX) return expireTimeError("set")
  return Number(ms)
}

const set = command("set", (args, conn, shared) => {
  const options = setOptions(args)
  if (options === undefined) return SYNTAX
  const { flags, expire } = options
  const store = shared.store
  let when = -1
  if (expire !== -1) {
    const at = expireAt(args, expire, flags, store.now())
    if (typeof at !== "number") return at
    when = at
  }
  const db = dbOf(conn, shared)
  const key = args.key(1)
  const old = store.lookup(db, key)
  let reply: Reply = OK
  if (flags & GET) {
    if (old === undefined) reply = conn.proto.nil
    else if (!(old instanceof Uint8Array)) return WRONGTYPE
    else reply = old
  }
  if ((flags & NX && old !== undefined) || (flags & XX && old === undefined)) {
    return flags & GET ? reply : conn.proto.nil
  }
  store.set(db, key, args.copy(2), (flags & KEEPTTL) !== 0)
  if (when !== -1) store.setExpire(db, key, when)
  return reply
})

const get = command("get", (args, conn, shared) => {
  const value = shared.store.lookup(dbOf(conn, shared), args.key(1))
  if (value === undefined) return conn.proto.nil
  return value instanceof Uint8Array ? value : WRONGTYPE
})

const append = command("append", (args, conn, shared) => {
  const db = dbOf(conn, shared)
  const key = args.key(1)
  const old = shared.store.lookup(db, key)
  if (old === undefined) {
    shared.store.set(db, key, args.copy(2))
    return args.size(2)
  }
  const tail = args.bytes(2)
  if (!(old instanceof Uint8Array)) return WRONGTYPE
  if (old.length + tail.length > MAX_STRING) return error("string exceeds maximum allowed size (proto-max-bulk-len)")
  const value = new Uint8Array(old.length + tail.length)
  value.set(old)
  value.set(tail, old.length)
  // APPEND keeps the key's time to live.
  shared.store.set(db, key, value, true)
  return value.length
})

const strlen = command("strlen", (args, conn, shared) => {
  const value = shared.store.lookup(dbOf(conn, shared), args.key(1))
  if (value === undefined) return 0
  return value instanceof Uint8Array ? value.length : WRONGTYPE
})

const encoder = new TextEncoder()

/** `incrDecrCommand`: adds `by` to the key's integer, keeping its time to live. */
const incrBy = (args: Args, conn: Conn, shared: Shared, by: number | bigint): Reply => {
  const db = dbOf(conn, shared)
  const key = args.key(1)
  const old = shared.store.lookup(db, key)
  let current: number | bigint = 0
  if (old !== undefined) {
    if (!(old instanceof Uint8Array)) return WRONGTYPE
    const parsed = integerOf(old)
    if (parsed === undefined) return NOT_INTEGER
    current = parsed
  }
  let next: number | bigint
  if (typeof current === "number" && typeof by === "number" && Number.isSafeInteger(current + by)) {
    next = current + by
  } else {
    const a = BigInt(current)
    const b = BigInt(by)
    if ((b < 0n && a < 0n && b < INT64_MIN - a) || (b > 0n && a > 0n && b > INT64_MAX - a)) {
      return error("increment or decrement would overflow")
    }
    next = a + b
  }
  shared.store.set(db, key, encoder.encode(String(next)), true)
  return next
}

const incr = command("incr", (args, conn, shared) => incrBy(args, conn, shared, 1))
const decr = command("decr", (args, conn, shared) => incrBy(args, conn, shared, -1))

const incrby = command("incrby", (args, conn, shared) => {
  const by = args.integer(2)
  return by === undefined ? NOT_INTEGER : incrBy(args, conn, shared, by)
})

const decrby = command("decrby", (args, conn, shared) => {
  const by = args.integer(2)
  if (by === undefined) return NOT_INTEGER
  // Negating LLONG_MIN overflows.
  if (by === INT64_MIN) return error("decrement would overflow")
  return incrBy(args, conn, shared, typeof by === "number" ? -by : -by)
})

const mget = command("mget", (args, conn, shared) => {
  const db = dbOf(conn, shared)
  const replies: Array<Reply> = new Array(args.length - 1)
  for (let j = 1; j < args.length; j++) {
    const value = shared.store.lookup(db, args.key(j))
    replies[j - 1] = value instanceof Uint8Array ? value : conn.proto.nil
  }
  return replies
})

const mset = command("mset", (args, conn, shared) => {
  if (args.length % 2 === 0) return error("wrong number of arguments for 'mset' command")
  const db = dbOf(conn, shared)
  for (let j = 1; j < args.length; j += 2) shared.store.set(db, args.key(j), args.copy(j + 1))
  return OK
})

export const strings: ReadonlyArray<Spec> = [get, set, append, strlen, incr, decr, incrby, decrby, mget, mset]
