/**
 * A command's arguments as the handler reads them: positions in the request's frame, read in place.
 *
 * Making a `Uint8Array` view per argument costs more than the rest of a GET (the framer already
 * knows where each argument lies), so a key is read straight out of the frame into a string, a
 * value is copied once into what the store keeps, and a number is parsed where it lies. An inline
 * word that holds quotes (its start stored as `-start - 1`) is decoded first.
 *
 * Valid while the handler runs: the frame may be a view of the read buffer.
 */
import { Bytes } from "../../src/index.ts"
import { tokenBytes } from "./inline.ts"
import { parseInt64, parseSmall } from "./int64.ts"

/** Reused by `key`: `String.fromCharCode.apply` over a plain array is the fastest lossless way on V8 and JSC. */
const codes: Array<number> = []

export class Args {
  /** How many arguments, the command's name included. */
  readonly length: number

  constructor(readonly frame: Uint8Array, readonly positions: ReadonlyArray<number>) {
    this.length = positions.length >> 1
  }

  /** The bytes of a quoted inline word, decoded. */
  private token(i: number): Uint8Array {
    return tokenBytes(this.frame.subarray(-this.positions[2 * i]! - 1, this.positions[2 * i + 1]))
  }

  /** Argument `i` as bytes: a view of the frame. */
  bytes(i: number): Uint8Array {
    const from = this.positions[2 * i]!
    return from < 0 ? this.token(i) : this.frame.subarray(from, this.positions[2 * i + 1])
  }

  /** Arguments `from` to the end, as bytes. */
  rest(from: number): Array<Uint8Array> {
    const out: Array<Uint8Array> = []
    for (let i = from; i < this.length; i++) out.push(this.bytes(i))
    return out
  }

  /** Argument `i` as a binary string (one char per byte, lossless): a key, a channel name. */
  key(i: number): string {
    const from = this.positions[2 * i]!
    if (from < 0) {
      const token = this.token(i)
      return binaryOf(token, 0, token.length)
    }
    return binaryOf(this.frame, from, this.positions[2 * i + 1]!)
  }

  /**
   * A copy of argument `i`, for the store to keep (`Bytes.copy`: small values share a slab, where
   * an array of their own would cost about 1 µs each on Deno).
   */
  copy(i: number): Uint8Array {
    const from = this.positions[2 * i]!
    if (from < 0) return this.token(i)
    return Bytes.copy(this.frame.subarray(from, this.positions[2 * i + 1]!))
  }

  /** Argument `i`'s length in bytes. */
  size(i: number): number {
    const from = this.positions[2 * i]!
    return from < 0 ? this.token(i).length : this.positions[2 * i + 1]! - from
  }

  /**
   * Whether argument `i` is `word` (lower case), compared as C's `strcasecmp` compares Redis's
   * arguments: up to a NUL byte.
   */
  is(i: number, word: string): boolean {
    let from = this.positions[2 * i]!
    let to = this.positions[2 * i + 1]!
    let frame = this.frame
    if (from < 0) {
      frame = this.token(i)
      from = 0
      to = frame.length
    }
    let length = 0
    while (from + length < to && frame[from + length] !== 0) length++
    if (length !== word.length) return false
    for (let j = 0; j < length; j++) {
      const c = frame[from + j]!
      if ((c >= 65 && c <= 90 ? c + 32 : c) !== word.charCodeAt(j)) return false
    }
    return true
  }

  /** Argument `i` as Redis's `string2ll` reads it: a safe integer, `±Infinity` past 2^53, or `undefined`. */
  small(i: number): number | undefined {
    const from = this.positions[2 * i]!
    if (from < 0) {
      const token = this.token(i)
      return parseSmall(token, 0, token.length)
    }
    return parseSmall(this.frame, from, this.positions[2 * i + 1]!)
  }

  /** Argument `i` as an exact 64-bit integer, or `undefined`. */
  int64(i: number): bigint | undefined {
    const from = this.positions[2 * i]!
    if (from < 0) {
      const token = this.token(i)
      return parseInt64(token, 0, token.length)
    }
    return parseInt64(this.frame, from, this.positions[2 * i + 1]!)
  }

  /** Argument `i` as an integer: a `number` when safe, else its exact `bigint`, else `undefined`. */
  integer(i: number): number | bigint | undefined {
    const small = this.small(i)
    if (small === undefined) return undefined
    return Number.isFinite(small) ? small : this.int64(i)
  }

  /**
   * FNV-1a of argument `i`'s bytes, lower-cased: finds a command in the table without making its
   * name a string (`nameHash` of the name); `isName` then confirms it.
   */
  nameHash(i: number): number {
    let from = this.positions[2 * i]!
    let to = this.positions[2 * i + 1]!
    let frame = this.frame
    if (from < 0) {
      frame = this.token(i)
      from = 0
      to = frame.length
    }
    let hash = 0x811c9dc5
    for (let j = from; j < to; j++) {
      const c = frame[j]!
      hash = Math.imul(hash ^ (c >= 65 && c <= 90 ? c + 32 : c), 0x01000193)
    }
    return hash >>> 0
  }

  /** Whether argument `i`, lower-cased, is exactly `name` (a command's name). */
  isName(i: number, name: string): boolean {
    const from = this.positions[2 * i]!
    if (from < 0) return this.lowerName(i) === name
    const to = this.positions[2 * i + 1]!
    if (to - from !== name.length) return false
    const frame = this.frame
    for (let j = from; j < to; j++) {
      const c = frame[j]!
      if ((c >= 65 && c <= 90 ? c + 32 : c) !== name.charCodeAt(j - from)) return false
    }
    return true
  }

  /** The command's name in lower case: the key of the command table. */
  lowerName(i: number): string {
    let from = this.positions[2 * i]!
    let to = this.positions[2 * i + 1]!
    let frame = this.frame
    if (from < 0) {
      frame = this.token(i)
      from = 0
      to = frame.length
    }
    codes.length = to - from
    for (let j = from; j < to; j++) {
      const c = frame[j]!
      codes[j - from] = c >= 65 && c <= 90 ? c + 32 : c
    }
    return String.fromCharCode.apply(null, codes)
  }
}

/** `Args.nameHash` of a command's name (lower case). */
export const nameHash = (name: string): number => {
  let hash = 0x811c9dc5
  for (let j = 0; j < name.length; j++) hash = Math.imul(hash ^ name.charCodeAt(j), 0x01000193)
  return hash >>> 0
}

/** `buf[from, to)` as a binary string. */
export const binaryOf = (buf: Uint8Array, from: number, to: number): string => {
  const length = to - from
  if (length > 8192) {
    let text = ""
    for (let at = from; at < to; at += 8192) text += binaryOf(buf, at, Math.min(at + 8192, to))
    return text
  }
  codes.length = length
  for (let j = 0; j < length; j++) codes[j] = buf[from + j]!
  return String.fromCharCode.apply(null, codes)
}
