/**
 * Redis's integers: `string2ll` (util.c), the strict parser behind every "value is not an integer or
 * out of range" and every RESP length, and the signed 64-bit range its counters live in.
 */

/** The largest signed 64-bit integer, Redis's `LLONG_MAX`. */
export const INT64_MAX = 9223372036854775807n
/** The smallest signed 64-bit integer, Redis's `LLONG_MIN`. */
export const INT64_MIN = -9223372036854775808n

/**
 * `string2ll` over `buf[from, to)` as a number: `undefined` when the bytes are not a canonical
 * integer ("-0", "01", "+1", " 1" and 21 bytes or more are not), `Infinity` (with its sign) when
 * they are one outside the safe integers, for callers that only compare with small limits.
 */
export const parseSmall = (buf: Uint8Array, from: number, to: number): number | undefined => {
  const length = to - from
  if (length === 0 || length >= 21) return undefined
  if (length === 1 && buf[from] === 48) return 0
  let at = from
  const negative = buf[at] === 45
  if (negative && ++at === to) return undefined
  const first = buf[at]! - 48
  if (first < 1 || first > 9) return undefined
  let value = first
  for (at++; at < to; at++) {
    const digit = buf[at]! - 48
    if (digit < 0 || digit > 9) return undefined
    value = value * 10 + digit
  }
  if (value > Number.MAX_SAFE_INTEGER) {
    // Still within string2ll's range? Decided exactly, on the bigint.
    if (parseInt64(buf, from, to) === undefined) return undefined
    return negative ? -Infinity : Infinity
  }
  return negative ? -value : value
}

/** `string2ll` over `buf[from, to)`, exact: the signed 64-bit value, or `undefined`. */
export const parseInt64 = (buf: Uint8Array, from: number, to: number): bigint | undefined => {
  const length = to - from
  if (length === 0 || length >= 21) return undefined
  if (length === 1 && buf[from] === 48) return 0n
  let at = from
  const negative = buf[at] === 45
  if (negative && ++at === to) return undefined
  if (buf[at]! < 49 || buf[at]! > 57) return undefined
  for (let i = at; i < to; i++) if (buf[i]! < 48 || buf[i]! > 57) return undefined
  let text = ""
  for (let i = at; i < to; i++) text += String.fromCharCode(buf[i]!)
  const value = negative ? -BigInt(text) : BigInt(text)
  return value > INT64_MAX || value < INT64_MIN ? undefined : value
}

/** `parseInt64` of a whole argument. */
export const int64Of = (bytes: Uint8Array): bigint | undefined => parseInt64(bytes, 0, bytes.length)

/** The argument as a safe integer when it is one (the common case), else its exact int64, else `undefined`. */
export const integerOf = (bytes: Uint8Array): number | bigint | undefined => {
  const small = parseSmall(bytes, 0, bytes.length)
  if (small === undefined) return undefined
  return Number.isFinite(small) ? small : parseInt64(bytes, 0, bytes.length)
}
