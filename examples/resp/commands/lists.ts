/**
 * A minimal list type (LPUSH, RPUSH, LRANGE, LLEN, as t_list.c has them): enough for a key of
 * another type than string to exist, so that WRONGTYPE is what it is in Redis.
 */
import type { Args } from "../args.ts"
import { EMPTY_ARRAY, NOT_INTEGER, type Reply, WRONGTYPE } from "../reply.ts"
import { command, type Conn, dbOf, type Shared, type Spec } from "./spec.ts"

const push = (head: boolean) => (args: Args, conn: Conn, shared: Shared): Reply => {
  const db = dbOf(conn, shared)
  const key = args.key(1)
  let list = shared.store.lookup(db, key)
  if (list instanceof Uint8Array) return WRONGTYPE
  if (list === undefined) {
    list = []
    shared.store.set(db, key, list)
  }
  for (let j = 2; j < args.length; j++) {
    if (head) list.unshift(args.copy(j))
    else list.push(args.copy(j))
  }
  return list.length
}

const lpush = command("lpush", push(true))
const rpush = command("rpush", push(false))

const llen = command("llen", (args, conn, shared) => {
  const list = shared.store.lookup(dbOf(conn, shared), args.key(1))
  if (list === undefined) return 0
  return list instanceof Uint8Array ? WRONGTYPE : list.length
})

const lrange = command("lrange", (args, conn, shared) => {
  const from = args.integer(2)
  const to = args.integer(3)
  if (from === undefined || to === undefined) return NOT_INTEGER
  const list = shared.store.lookup(dbOf(conn, shared), args.key(1))
  if (list === undefined) return EMPTY_ARRAY
  if (list instanceof Uint8Array) return WRONGTYPE
  // `addListRangeReply`: negative indexes count from the end; the range is clamped.
  const length = list.length
  let start = Number(from)
  let end = Number(to)
  if (start < 0) start = length + start
  if (end < 0) end = length + end
  if (start < 0) start = 0
  if (start > end || start >= length) return EMPTY_ARRAY
  if (end >= length) end = length - 1
  return list.slice(start, end + 1)
})

export const lists: ReadonlyArray<Spec> = [lpush, rpush, llen, lrange]
