/**
 * Glob-style patterns as KEYS, PSUBSCRIBE and CONFIG GET match them: a port of Redis's
 * `stringmatchlen` (util.c), over binary strings (one char per byte).
 *
 * - `*` any run of bytes, `?` one byte, `[abc]` / `[^abc]` / `[a-z]` a class (a range may be given
 *   backwards; bytes compare as C's signed `char`), `\x` the byte x.
 * - An unclosed `[` ends its class at the end of the pattern, as in Redis.
 * - Like Redis, it stops trying longer matches for an earlier `*` once the rest of the pattern has
 *   failed from every later position (`skipLongerMatches`), so `a*a*a*a*...b` stays linear.
 */

/** A byte as C's signed `char`, for range comparisons. */
const signed = (c: number): number => (c > 127 ? c - 256 : c)

const lower = (c: number): number => (c >= 65 && c <= 90 ? c + 32 : c)

export const stringMatch = (pattern: string, text: string, nocase = false): boolean =>
  matchFrom(pattern, 0, text, 0, nocase, { skip: false })

const matchFrom = (
  pattern: string,
  p: number,
  text: string,
  s: number,
  nocase: boolean,
  state: { skip: boolean }
): boolean => {
  const plen = pattern.length
  const slen = text.length
  // C reads the pattern's terminating NUL past its end.
  const pat = (i: number): number => (i < plen ? pattern.charCodeAt(i) : 0)
  while (p < plen && s < slen) {
    switch (pat(p)) {
      case 42: { // *
        while (p < plen && pat(p + 1) === 42) p++
        if (plen - p === 1) return true
        while (s < slen) {
          if (matchFrom(pattern, p + 1, text, s, nocase, state)) return true
          if (state.skip) return false
          s++
        }
        state.skip = true
        return false
      }
      case 63: // ?
        s++
        break
      case 91: { // [
        p++
        const not = pat(p) === 94
        if (not) p++
        let match = false
        const c = text.charCodeAt(s)
        for (;;) {
          if (pat(p) === 92 && plen - p >= 2) {
            p++
            if (pat(p) === c) match = true
          } else if (pat(p) === 93) {
            break
          } else if (p >= plen) {
            p--
            break
          } else if (plen - p >= 3 && pat(p + 1) === 45) {
            let start = signed(pat(p))
            let end = signed(pat(p + 2))
            let x = signed(c)
            if (start > end) [start, end] = [end, start]
            if (nocase) {
              start = lower(start)
              end = lower(end)
              x = lower(x)
            }
            p += 2
            if (x >= start && x <= end) match = true
          } else if (nocase ? lower(pat(p)) === lower(c) : pat(p) === c) {
            match = true
          }
          p++
        }
        if (not) match = !match
        if (!match) return false
        s++
        break
      }
      default: {
        // `\x` is the byte x.
        if (pat(p) === 92 && plen - p >= 2) p++
        const c = text.charCodeAt(s)
        if (nocase ? lower(pat(p)) !== lower(c) : pat(p) !== c) return false
        s++
        break
      }
    }
    p++
    if (s === slen) {
      while (pat(p) === 42) p++
      break
    }
  }
  return p >= plen && s === slen
}
