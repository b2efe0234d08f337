/**
 * The keyspace: 16 databases of strings and lists, with expiry as Redis does it.
 *
 * - Each database keeps its keys in one `Map` and the expiry times of those that have one in
 *   another (Redis's `db->dict` and `db->expires`).
 * - Lazy expiry: a key whose time has passed is deleted when a command looks it up (Redis's
 *   `expireIfNeeded`). A key that expires at T is gone once the time is past T (`now > T`).
 * - Active expiry: one fiber for the whole store (never a timer per key) wakes every
 *   `sweepInterval` and checks at most `sweepBudget` keys that have an expiry time, going on from
 *   where it stopped last time, so that keys nobody reads are deleted too, at a bounded cost per
 *   tick (Redis's `activeExpireCycle`, which samples instead).
 * - Time comes from Effect's `Clock`: `TestClock` drives expiry in tests.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"

/** A string, or a list. */
export type Value = Uint8Array | Array<Uint8Array>

/** One database (`SELECT n`). */
export class Db {
  readonly keys = new Map<string, Value>()
  /** Unix time in milliseconds at which each key with an expiry expires. */
  readonly expires = new Map<string, number>()
  /** Where active expiry goes on in `expires`. */
  cursor: Iterator<[string, number]> | undefined = undefined
}

/** The number of databases, as Redis's `databases` default. */
export const DATABASES = 16

export class Store {
  dbs: Array<Db> = Array.from({ length: DATABASES }, () => new Db())
  /** Keys deleted because they expired (INFO's `expired_keys`). */
  expiredKeys = 0

  constructor(readonly now: () => number) {}

  /** The key's value, unless it does not exist or has expired (then it is deleted). */
  lookup(db: Db, key: string): Value | undefined {
    const value = db.keys.get(key)
    if (value === undefined || db.expires.size === 0) return value
    const when = db.expires.get(key)
    if (when === undefined || this.now() <= when) return value
    this.expire(db, key)
    return undefined
  }

  /** Whether the key exists and has not expired, without deleting it (KEYS). */
  isLive(db: Db, key: string): boolean {
    const when = db.expires.get(key)
    return when === undefined || this.now() <= when
  }

  /** Sets the key; its expiry time goes unless `keepTtl` (Redis's `setKey`). */
  set(db: Db, key: string, value: Value, keepTtl = false): void {
    db.keys.set(key, value)
    if (!keepTtl && db.expires.size > 0) db.expires.delete(key)
  }

  /** Deletes the key; whether it existed. */
  delete(db: Db, key: string): boolean {
    if (!db.keys.delete(key)) return false
    db.expires.delete(key)
    return true
  }

  /** The key's expiry time, or -1 (Redis's `getExpire`). */
  expireTime(db: Db, key: string): number {
    return db.expires.get(key) ?? -1
  }

  setExpire(db: Db, key: string, when: number): void {
    db.expires.set(key, when)
  }

  /** Removes the key's expiry time; whether it had one. */
  persist(db: Db, key: string): boolean {
    return db.expires.delete(key)
  }

  flushAll(): void {
    this.dbs = Array.from({ length: DATABASES }, () => new Db())
  }

  private expire(db: Db, key: string): void {
    db.keys.delete(key)
    db.expires.delete(key)
    this.expiredKeys++
  }

  /**
   * Active expiry: checks at most `budget` keys with an expiry time, across the databases, going on
   * from where the last sweep stopped, and deletes those whose time has passed. Returns how many it
   * deleted.
   */
  sweep(budget: number): number {
    const now = this.now()
    let deleted = 0
    for (const db of this.dbs) {
      if (db.expires.size === 0) {
        db.cursor = undefined
        continue
      }
      // A database checked to its end starts again from its beginning at the next sweep.
      const cursor = db.cursor ?? db.expires.entries()
      for (; budget > 0; budget--) {
        const next = cursor.next()
        if (next.done === true) {
          db.cursor = undefined
          break
        }
        db.cursor = cursor
        const [key, when] = next.value
        if (now > when) {
          this.expire(db, key)
          deleted++
        }
      }
      if (budget === 0) break
    }
    return deleted
  }
}

/** Options of `make`. */
export interface StoreOptions {
  /** How often active expiry runs. Default 100 ms (Redis's `hz 10`). */
  readonly sweepInterval?: Duration.Input | undefined
  /** The most keys one sweep checks. Default 20 000. */
  readonly sweepBudget?: number | undefined
}

/** A store whose clock is Effect's `Clock`, with its one active-expiry fiber running in the scope. */
export const make = (options: StoreOptions = {}): Effect.Effect<Store, never, Scope.Scope> =>
  Clock.clockWith((clock) =>
    Effect.gen(function* () {
      const store = new Store(() => clock.currentTimeMillisUnsafe())
      const interval = Duration.fromInputUnsafe(options.sweepInterval ?? Duration.millis(100))
      const budget = options.sweepBudget ?? 20_000
      yield* Effect.forkScoped(
        Effect.forever(Effect.andThen(Effect.sleep(interval), Effect.sync(() => store.sweep(budget))))
      )
      return store
    })
  )
