/**
 * Inline commands (a line of words, as typed in `nc` or `telnet`), split the way Redis splits them:
 * a port of `sdssplitargs` (sds.c). Words may be quoted: `"..."` with the escapes `\n \r \t \b \a
 * \xhh` and `\<any>`, `'...'` with `\'`; a closing quote must be followed by a blank or the end of
 * the line, or the line has "unbalanced quotes". A quote may also open in the middle of a word
 * (`a"b c"` is the word `ab c`).
 *
 * The framer only records where each word lies; a word that holds a quote is decoded again from its
 * raw bytes (`tokenBytes`) when the command's arguments are read.
 */

/** C's `isspace`: space, \t, \n, \v, \f, \r. */
const isSpace = (c: number): boolean => c === 32 || (c >= 9 && c <= 13)

const isHex = (c: number): boolean => (c >= 48 && c <= 57) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70)

const hexValue = (c: number): number => (c <= 57 ? c - 48 : (c | 0x20) - 87)

/**
 * Scans one quoted (or partly quoted) word starting at `p`, up to `stop` (the end of the line, read
 * as C's terminating NUL). Returns the index just after its closing quote, or -1 when its quotes
 * do not balance. With `out`, collects the word's bytes.
 */
const scanToken = (buf: Uint8Array, p: number, stop: number, out: Array<number> | undefined): number => {
  const at = (i: number): number => (i < stop ? buf[i]! : 0)
  let inDouble = false
  let inSingle = false
  for (;;) {
    const c = at(p)
    let done = false
    if (inDouble) {
      if (c === 92 && at(p + 1) === 120 && isHex(at(p + 2)) && isHex(at(p + 3))) {
        out?.push(hexValue(at(p + 2)) * 16 + hexValue(at(p + 3)))
        p += 3
      } else if (c === 92 && at(p + 1) !== 0) {
        p++
        const e = at(p)
        out?.push(e === 110 ? 10 : e === 114 ? 13 : e === 116 ? 9 : e === 98 ? 8 : e === 97 ? 7 : e)
      } else if (c === 34) {
        if (at(p + 1) !== 0 && !isSpace(at(p + 1))) return -1
        done = true
      } else if (c === 0) {
        return -1
      } else {
        out?.push(c)
      }
    } else if (inSingle) {
      if (c === 92 && at(p + 1) === 39) {
        p++
        out?.push(39)
      } else if (c === 39) {
        if (at(p + 1) !== 0 && !isSpace(at(p + 1))) return -1
        done = true
      } else if (c === 0) {
        return -1
      } else {
        out?.push(c)
      }
    } else if (c === 32 || c === 10 || c === 13 || c === 9 || c === 0) {
      // Only a word that holds a quote is scanned here, and it always ends at its closing quote.
      return p
    } else if (c === 34) {
      inDouble = true
    } else if (c === 39) {
      inSingle = true
    } else {
      out?.push(c)
    }
    if (at(p) !== 0) p++
    if (done) return p
  }
}

/**
 * Splits the line `buf[from, stop)` into words, pushing each word's position relative to `base`:
 * `[start, end)` for a plain word, `[-start - 1, end)` for one that holds quotes (to be decoded by
 * `tokenBytes`). Returns false when the quotes do not balance.
 */
export const splitInline = (
  buf: Uint8Array,
  from: number,
  stop: number,
  base: number,
  positions: Array<number>
): boolean => {
  let p = from
  for (;;) {
    while (p < stop && isSpace(buf[p]!)) p++
    if (p >= stop) return true
    const start = p
    // A plain word ends at a blank; a quote anywhere makes it a quoted one.
    while (p < stop) {
      const c = buf[p]!
      if (c === 32 || c === 10 || c === 13 || c === 9 || c === 34 || c === 39) break
      p++
    }
    if (p < stop && (buf[p] === 34 || buf[p] === 39)) {
      const end = scanToken(buf, start, stop, undefined)
      if (end === -1) return false
      positions.push(-(start - base) - 1, end - base)
      p = end
    } else {
      positions.push(start - base, p - base)
    }
  }
}

/** The bytes of a quoted word (`raw`: from its first byte to just after its closing quote). */
export const tokenBytes = (raw: Uint8Array): Uint8Array => {
  const out: Array<number> = []
  scanToken(raw, 0, raw.length, out)
  return Uint8Array.from(out)
}
