/**
 * RESP (the Redis serialization protocol, versions 2 and 3) as sluice framers that parse as they go.
 *
 * A RESP message is nested: an array of bulk strings (a command), or any tree of values (a reply).
 * Each framer keeps its parse state per connection (`Framer.state`): a frame that spans reads is
 * never parsed again from its start, and a bulk string's length is asked for with `NeedBytes`, so
 * its bytes are not even looked at until they are all there. The parse result (`cursor.value`)
 * holds positions in the frame, not copies: the codec reads the values out of the frame's bytes
 * (which the engine copies when the frame must outlive its read), and nothing is parsed twice.
 *
 * ```text
 * *2\r\n$3\r\nGET\r\n$1\r\nk\r\n      one command, as clients send it: an array of bulk strings
 * └┬┘   └┬┘ └┬┘   └┬┘ └┬┘
 *  │     │   │     │   └ its bytes: NeedBytes until "k" and the two bytes after it are there
 *  │     │   │     └ "$1": a bulk string of 1 byte
 *  │     │   └ "GET"
 *  │     └ "$3"
 *  └ "*2": 2 elements
 * ```
 *
 * The command framer reads exactly as redis-server 7 does (`processMultibulkBuffer` and
 * `processInlineBuffer` in networking.c), down to its protocol errors and their texts: a header
 * line ends at its CR (the byte after it is skipped unread), the two bytes after a bulk string are
 * skipped unread too, a NUL before the line's end hides that end (as C's `strchr` does), and 64 KiB
 * without a line end is "too big". The reply framer (`replies`) lives in reply-framer.ts and is
 * re-exported here.
 */
import type { Frame } from "../../src/index.ts"
import { CR, type Examined, LF, MAX_LINE, protocolError, tooLarge } from "./framing.ts"
import { splitInline, tokenBytes } from "./inline.ts"
import { parseSmall } from "./int64.ts"

export type { Examined } from "./framing.ts"
export { type Node, replies } from "./reply-framer.ts"

/** The most elements one command may have: Redis 7.0 takes any count up to `INT_MAX`. */
const MAX_ELEMENTS = 2147483647
/** The longest bulk string: Redis's `proto-max-bulk-len` default, 512 MiB. */
const MAX_BULK = 512 * 1024 * 1024

/**
 * A command: its arguments, as positions `[start, end)` in the frame, two numbers each. An inline
 * word that holds quotes has its start stored as `-start - 1`: `argumentsOf` decodes it.
 */
export type Command = {
  readonly kind: "multibulk" | "inline"
  readonly positions: ReadonlyArray<number>
}

interface CommandState {
  /** Bytes of the frame already parsed (relative to its start). */
  pos: number
  /** Bytes after `pos` already known to hold no line end (or, once `found`, where it is). */
  scanned: number
  /** Whether the line end at `pos + scanned` has been found. */
  found: boolean
  /** Elements still to come; -1 before the `*` header is read. */
  remaining: number
  /** The current bulk string's length, or -1 while its `$` header is not read. */
  bulkLength: number
  positions: Array<number>
}

const newCommandState = (): CommandState => ({
  pos: 0,
  scanned: 0,
  found: false,
  remaining: -1,
  bulkLength: -1,
  positions: []
})

/**
 * Finds `target` (CR or LF) in the line that starts at `lineStart`, scanning only bytes not scanned
 * before, and stopping at a NUL as C's `strchr` does. Returns its absolute index, or -1. Once
 * found, its place is remembered (`state.found`) until the line is consumed: a line whose CR has
 * come but not the byte after it is not scanned again.
 */
const findInLine = (
  buf: Uint8Array,
  lineStart: number,
  end: number,
  target: number,
  state: { scanned: number; found: boolean },
  examined: Examined | undefined
): number => {
  if (state.found) return lineStart + state.scanned
  let at = lineStart + state.scanned
  const from = at
  for (; at < end; at++) {
    const byte = buf[at]
    if (byte === target) break
    if (byte === 0) {
      // Redis's `strchr` stops here for good: the line never ends, until it is too big.
      if (examined !== undefined) examined.bytes += at - from
      state.scanned = at - lineStart
      return -1
    }
  }
  if (examined !== undefined) examined.bytes += (at < end ? at + 1 : end) - from
  state.scanned = at - lineStart
  if (at === end) return -1
  state.found = true
  return at
}

/**
 * Commands as redis-server reads them: arrays of bulk strings (`*<n>\r\n$<len>\r\n...`), or inline
 * commands (a line of words). The frame's value is the `Command`: the positions of its arguments.
 * An empty command (`*0`, `*-1`, a blank line) is a frame with no arguments: Redis ignores it.
 */
export const commands = (options?: {
  readonly maxFrameLength?: number | undefined
  readonly examined?: Examined | undefined
}): Frame.Framer<Command> => {
  const max = options?.maxFrameLength ?? 1024 * 1024 * 1024
  const examined = options?.examined
  const name = "resp"
  const finish = (cursor: Frame.Cursor, state: CommandState, start: number, next: number, kind: Command["kind"]) => {
    cursor.frameStart = start
    cursor.frameEnd = next
    cursor.next = next
    cursor.value = { kind, positions: state.positions }
    // What belongs to this frame is reset for the next one.
    state.pos = 0
    state.scanned = 0
    state.found = false
    state.remaining = -1
    state.bulkLength = -1
    state.positions = []
    return 2 as const
  }
  return {
    name,
    maxFrameLength: max,
    state: newCommandState,
    read(buf, start, end, cursor) {
      const state = cursor.state as CommandState
      if (state.remaining === -1) {
        if (buf[start] !== 42) {
          // An inline command: a line, up to its LF.
          const lineEnd = findInLine(buf, start, end, LF, state, examined)
          if (lineEnd === -1) {
            return end - start > MAX_LINE ? protocolError(cursor, name, "too big inline request") : 0
          }
          const stop = lineEnd > start && buf[lineEnd - 1] === CR ? lineEnd - 1 : lineEnd
          if (!splitInline(buf, start, stop, start, state.positions)) {
            state.positions = []
            return protocolError(cursor, name, "unbalanced quotes in request")
          }
          return finish(cursor, state, start, lineEnd + 1, "inline")
        }
        // `*<count>`, ended by its CR; the byte after the CR must be there, and is skipped.
        const cr = findInLine(buf, start, end, CR, state, examined)
        if (cr === -1) {
          return end - start > MAX_LINE ? protocolError(cursor, name, "too big mbulk count string") : 0
        }
        if (cr + 2 > end) return 0
        const count = parseSmall(buf, start + 1, cr)
        if (count === undefined || count > MAX_ELEMENTS) return protocolError(cursor, name, "invalid multibulk length")
        state.pos = cr + 2 - start
        state.scanned = 0
        state.found = false
        if (count <= 0) return finish(cursor, state, start, cr + 2, "multibulk")
        state.remaining = count
      }
      for (;;) {
        if (state.bulkLength === -1) {
          // `$<length>`, ended by its CR.
          const lineStart = start + state.pos
          if (lineStart >= end) return 0
          const cr = findInLine(buf, lineStart, end, CR, state, examined)
          if (cr === -1) {
            return end - lineStart > MAX_LINE ? protocolError(cursor, name, "too big bulk count string") : 0
          }
          if (cr + 2 > end) return 0
          if (buf[lineStart] !== 36) {
            return protocolError(cursor, name, `expected '$', got '${String.fromCharCode(buf[lineStart]!)}'`)
          }
          const length = parseSmall(buf, lineStart + 1, cr)
          if (length === undefined || length < 0 || length > MAX_BULK) {
            return protocolError(cursor, name, "invalid bulk length")
          }
          const total = cr + 2 - start + length + 2
          if (total > max) return tooLarge(cursor, name, total, max)
          state.pos = cr + 2 - start
          state.scanned = 0
          state.found = false
          state.bulkLength = length
        }
        // The bulk string's bytes and the two after them: asked for, never scanned.
        const dataStart = start + state.pos
        const dataEnd = dataStart + state.bulkLength
        if (dataEnd + 2 > end) {
          cursor.need = dataEnd + 2 - start
          return 1
        }
        state.positions.push(state.pos, state.pos + state.bulkLength)
        state.pos = dataEnd + 2 - start
        state.bulkLength = -1
        if (--state.remaining === 0) return finish(cursor, state, start, dataEnd + 2, "multibulk")
      }
    },
    begin: (writer) => writer.length,
    end: () => {}
  }
}

/** The arguments of a command, out of its frame's bytes (views of it, but for quoted inline words). */
export const argumentsOf = (frame: Uint8Array, command: Command): Array<Uint8Array> => {
  const positions = command.positions
  const args: Array<Uint8Array> = new Array(positions.length >> 1)
  for (let i = 0; i < positions.length; i += 2) {
    const from = positions[i]!
    const to = positions[i + 1]!
    args[i >> 1] = from < 0 ? tokenBytes(frame.subarray(-from - 1, to)) : frame.subarray(from, to)
  }
  return args
}
