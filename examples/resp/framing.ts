/**
 * What the two RESP framers share: the limits of a line, the error reasons, and the line scanner
 * that remembers how far it has looked.
 */
import { Errors, type Frame } from "../../src/index.ts"

export const CR = 13
export const LF = 10

/** The most a header line (`*<count>`, `$<length>`, a simple string) or an inline command may take. */
export const MAX_LINE = 64 * 1024

/** Counts the bytes a framer examines, for tests that check that nothing is parsed twice. */
export interface Examined {
  bytes: number
}

export const protocolError = (cursor: Frame.Cursor, framer: string, detail: string): 3 => {
  cursor.error = new Errors.MalformedFrame({
    framer,
    reason: "Protocol",
    offset: cursor.offset,
    detail: `Protocol error: ${detail}`
  })
  return 3
}

export const tooLarge = (cursor: Frame.Cursor, framer: string, length: number, limit: number): 3 => {
  cursor.error = new Errors.FrameTooLarge({ framer, length, limit, offset: cursor.offset })
  return 3
}

/** Parses a signed decimal integer in `buf[from, to)`; `undefined` when it is not one. */
export const parseInteger = (buf: Uint8Array, from: number, to: number): number | undefined => {
  if (from >= to || to - from > 20) return undefined
  let at = from
  let negative = false
  if (buf[at] === 45) {
    negative = true
    at++
    if (at === to) return undefined
  }
  let value = 0
  for (; at < to; at++) {
    const digit = buf[at]! - 48
    if (digit < 0 || digit > 9) return undefined
    value = value * 10 + digit
  }
  return negative ? -value : value
}

/**
 * Finds the LF that ends the line starting at `lineStart`, scanning only bytes not scanned before.
 * Returns the LF's absolute index, or -1.
 */
export const findLineEnd = (
  buf: Uint8Array,
  lineStart: number,
  end: number,
  state: { scanned: number },
  examined: Examined | undefined
): number => {
  const from = lineStart + state.scanned
  const at = buf.subarray(0, end).indexOf(LF, from)
  if (examined !== undefined) examined.bytes += (at === -1 ? end : at + 1) - from
  if (at === -1) state.scanned = end - lineStart
  else state.scanned = 0
  return at
}
