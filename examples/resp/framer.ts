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
 *  │     │   │     │   └ its bytes: NeedBytes until "k\r\n" is there, then one check of the "\r\n"
 *  │     │   │     └ "$1": a bulk string of 1 byte
 *  │     │   └ "GET"
 *  │     └ "$3"
 *  └ "*2": 2 elements; a count over the limits fails on this header, before anything is buffered
 * ```
 */
import { Bytes, Errors, type Frame } from "../../src/index.ts"

const CR = 13
const LF = 10

/** The most a header line (`*<count>`, `$<length>`, a simple string) or an inline command may take. */
const MAX_LINE = 64 * 1024
/** The most elements one command may have (Redis: 1 048 576 by default, like its `proto-max-multibulk-len`). */
const MAX_ELEMENTS = 1024 * 1024
/** The deepest a reply may nest. */
const MAX_DEPTH = 64

/** Counts the bytes a framer examines, for tests that check that nothing is parsed twice. */
export interface Examined {
  bytes: number
}

/** A command: its arguments, as positions `[start, end)` in the frame, two numbers each. */
export type Command = {
  readonly kind: "multibulk" | "inline"
  readonly positions: ReadonlyArray<number>
}

const protocolError = (cursor: Frame.Cursor, framer: string, detail: string): 3 => {
  cursor.error = new Errors.MalformedFrame({
    framer,
    reason: "Protocol",
    offset: cursor.offset,
    detail: `Protocol error: ${detail}`
  })
  return 3
}

const tooLarge = (cursor: Frame.Cursor, framer: string, length: number, limit: number): 3 => {
  cursor.error = new Errors.FrameTooLarge({ framer, length, limit, offset: cursor.offset })
  return 3
}

/** Parses a signed decimal integer in `buf[from, to)`; `undefined` when it is not one. */
const parseInteger = (buf: Uint8Array, from: number, to: number): number | undefined => {
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

interface CommandState {
  /** Bytes of the frame already parsed (relative to its start). */
  pos: number
  /** Bytes after `pos` already known to hold no LF. */
  scanned: number
  /** Elements still to come; -1 before the `*` header is read. */
  remaining: number
  /** The current bulk string: its data's start, or -1 while its `$` header is not read. */
  bulkStart: number
  bulkLength: number
  positions: Array<number>
}

const newCommandState = (): CommandState => ({
  pos: 0,
  scanned: 0,
  remaining: -1,
  bulkStart: -1,
  bulkLength: 0,
  positions: []
})

/**
 * Finds the LF that ends the line starting at `from` (relative offsets in state), scanning only bytes
 * not scanned before. Returns the LF's absolute index, or -1.
 */
const findLineEnd = (
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

/**
 * Commands as a Redis server reads them: arrays of bulk strings (`*<n>\r\n$<len>\r\n...`), or inline
 * commands (a line of words, as typed in `nc` or `telnet`). The frame's value is the `Command`: the
 * positions of its arguments.
 */
export const commands = (options?: {
  readonly maxFrameLength?: number | undefined
  readonly examined?: Examined | undefined
}): Frame.Framer<Command> => {
  const max = options?.maxFrameLength ?? 512 * 1024 * 1024
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
    state.remaining = -1
    state.bulkStart = -1
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
        // The first line: `*<count>`, or an inline command.
        const lineEnd = findLineEnd(buf, start, end, state, examined)
        if (lineEnd === -1) {
          if (end - start > MAX_LINE) {
            return buf[start] === 42
              ? protocolError(cursor, name, "too big mbulk count string")
              : protocolError(cursor, name, "too big inline request")
          }
          return 0
        }
        if (buf[start] !== 42) return inline(buf, start, lineEnd, cursor, state, name, finish)
        const count = parseInteger(buf, start + 1, buf[lineEnd - 1] === CR ? lineEnd - 1 : lineEnd)
        if (count === undefined || count > MAX_ELEMENTS) return protocolError(cursor, name, "invalid multibulk length")
        state.pos = lineEnd + 1 - start
        if (count <= 0) return finish(cursor, state, start, lineEnd + 1, "multibulk")
        state.remaining = count
      }
      for (;;) {
        if (state.bulkStart === -1) {
          // A `$<length>` header.
          const lineStart = start + state.pos
          if (lineStart >= end) return 0
          if (buf[lineStart] !== 36) {
            return protocolError(cursor, name, `expected '$', got '${String.fromCharCode(buf[lineStart]!)}'`)
          }
          const lineEnd = findLineEnd(buf, lineStart, end, state, examined)
          if (lineEnd === -1) {
            if (end - lineStart > MAX_LINE) return protocolError(cursor, name, "too big bulk count string")
            return 0
          }
          const length = parseInteger(buf, lineStart + 1, buf[lineEnd - 1] === CR ? lineEnd - 1 : lineEnd)
          if (length === undefined || length < 0) return protocolError(cursor, name, "invalid bulk length")
          const total = lineEnd + 1 - start + length + 2
          if (total > max) return tooLarge(cursor, name, total, max)
          state.bulkStart = lineEnd + 1 - start
          state.bulkLength = length
        }
        // The bulk string's bytes and its CRLF: asked for, never scanned.
        const dataStart = start + state.bulkStart
        const dataEnd = dataStart + state.bulkLength
        if (dataEnd + 2 > end) {
          cursor.need = dataEnd + 2 - start
          return 1
        }
        if (examined !== undefined) examined.bytes += 2
        if (buf[dataEnd] !== CR || buf[dataEnd + 1] !== LF) {
          return protocolError(cursor, name, "expected CRLF after a bulk string")
        }
        state.positions.push(state.bulkStart, state.bulkStart + state.bulkLength)
        state.pos = dataEnd + 2 - start
        state.bulkStart = -1
        if (--state.remaining === 0) return finish(cursor, state, start, dataEnd + 2, "multibulk")
      }
    },
    begin: (writer) => writer.length,
    end: () => {}
  }
}

/** An inline command: the line's words, split as Redis splits them (double and single quotes). */
const inline = (
  buf: Uint8Array,
  start: number,
  lineEnd: number,
  cursor: Frame.Cursor,
  state: CommandState,
  name: string,
  finish: (cursor: Frame.Cursor, state: CommandState, start: number, next: number, kind: Command["kind"]) => 2
): 2 | 3 => {
  const stop = buf[lineEnd - 1] === CR ? lineEnd - 1 : lineEnd
  let at = start
  while (at < stop) {
    while (at < stop && (buf[at] === 32 || buf[at] === 9)) at++
    if (at >= stop) break
    const quote = buf[at] === 34 || buf[at] === 39 ? buf[at]! : 0
    if (quote !== 0) {
      // Quoted words keep their bytes here; the codec unescapes them.
      let close = at + 1
      while (close < stop && buf[close] !== quote) close += buf[close] === 92 && quote === 34 ? 2 : 1
      if (close >= stop) return protocolError(cursor, name, "unbalanced quotes in request")
      if (close + 1 < stop && buf[close + 1] !== 32 && buf[close + 1] !== 9) {
        return protocolError(cursor, name, "unbalanced quotes in request")
      }
      state.positions.push(-(at - start) - 1, close + 1 - start)
      at = close + 1
    } else {
      const word = at
      while (at < stop && buf[at] !== 32 && buf[at] !== 9) at++
      state.positions.push(word - start, at - start)
    }
  }
  return finish(cursor, state, start, lineEnd + 1, "inline")
}

/** The arguments of a command, out of its frame's bytes. */
export const argumentsOf = (frame: Uint8Array, command: Command): Array<Uint8Array> => {
  const positions = command.positions
  const args: Array<Uint8Array> = []
  for (let i = 0; i < positions.length; i += 2) {
    const from = positions[i]!
    const to = positions[i + 1]!
    args.push(from < 0 ? unquote(frame.subarray(-from - 1, to)) : frame.subarray(from, to))
  }
  return args
}

/** A quoted inline word without its quotes, its escapes resolved (`\n`, `\t`, `\xhh`, ...). */
const unquote = (quoted: Uint8Array): Uint8Array => {
  const quote = quoted[0]!
  const body = quoted.subarray(1, quoted.length - 1)
  if (quote === 39 || body.indexOf(92) === -1) return body
  const out: Array<number> = []
  for (let i = 0; i < body.length; i++) {
    const byte = body[i]!
    if (byte !== 92 || i + 1 >= body.length) {
      out.push(byte)
      continue
    }
    const next = body[++i]!
    const hex = (c: number) => (c >= 48 && c <= 57) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70)
    if (next === 120 && i + 2 < body.length && hex(body[i + 1]!) && hex(body[i + 2]!)) {
      out.push(parseInt(String.fromCharCode(body[i + 1]!, body[i + 2]!), 16))
      i += 2
    } else {
      out.push(next === 110 ? 10 : next === 114 ? 13 : next === 116 ? 9 : next === 98 ? 8 : next === 97 ? 7 : next)
    }
  }
  return Uint8Array.from(out)
}

// -----------------------------------------------------------------------------------------------
// Replies: any RESP2 or RESP3 value
// -----------------------------------------------------------------------------------------------

/** A RESP value as the reply framer parses it: strings are positions in the frame. */
export type Node =
  | {
    readonly type: "simple" | "error" | "bulk" | "verbatim" | "blobError" | "bigNumber"
    readonly from: number
    readonly to: number
  }
  | { readonly type: "integer"; readonly value: number }
  | { readonly type: "double"; readonly value: number }
  | { readonly type: "boolean"; readonly value: boolean }
  | { readonly type: "null" }
  | { readonly type: "array" | "set" | "push"; readonly items: Array<Node> }
  | { readonly type: "map" | "attribute"; readonly items: Array<Node> }

interface Open {
  readonly type: "array" | "set" | "push" | "map" | "attribute"
  readonly items: Array<Node>
  remaining: number
}

interface ReplyState {
  pos: number
  scanned: number
  stack: Array<Open>
  root: Node | undefined
  /** A bulk-like value whose header is read: its type, data start, length. */
  bulkType: "bulk" | "verbatim" | "blobError" | undefined
  bulkStart: number
  bulkLength: number
}

const newReplyState = (): ReplyState => ({
  pos: 0,
  scanned: 0,
  stack: [],
  root: undefined,
  bulkType: undefined,
  bulkStart: 0,
  bulkLength: 0
})

/**
 * Replies as a Redis client reads them: any RESP2 or RESP3 value, nested. The frame's value is the
 * reply's `Node` tree.
 */
export const replies = (options?: {
  readonly maxFrameLength?: number | undefined
  readonly examined?: Examined | undefined
}): Frame.Framer<Node> => {
  const max = options?.maxFrameLength ?? 512 * 1024 * 1024
  const examined = options?.examined
  const name = "resp-reply"
  return {
    name,
    maxFrameLength: max,
    state: newReplyState,
    read(buf, start, end, cursor) {
      const state = cursor.state as ReplyState
      for (;;) {
        let node: Node
        if (state.bulkType !== undefined) {
          const dataStart = start + state.bulkStart
          const dataEnd = dataStart + state.bulkLength
          if (dataEnd + 2 > end) {
            cursor.need = dataEnd + 2 - start
            return 1
          }
          if (examined !== undefined) examined.bytes += 2
          if (buf[dataEnd] !== CR || buf[dataEnd + 1] !== LF) {
            return protocolError(cursor, name, "expected CRLF after a bulk string")
          }
          node = { type: state.bulkType, from: state.bulkStart, to: state.bulkStart + state.bulkLength }
          state.bulkType = undefined
          state.pos = dataEnd + 2 - start
        } else {
          const lineStart = start + state.pos
          if (lineStart >= end) return 0
          const lineEnd = findLineEnd(buf, lineStart, end, state, examined)
          if (lineEnd === -1) {
            if (end - lineStart > MAX_LINE) return protocolError(cursor, name, "too big line")
            return 0
          }
          const textEnd = buf[lineEnd - 1] === CR ? lineEnd - 1 : lineEnd
          const from = lineStart + 1 - start
          const to = textEnd - start
          state.pos = lineEnd + 1 - start
          const type = buf[lineStart]!
          switch (type) {
            case 43: // +
              node = { type: "simple", from, to }
              break
            case 45: // -
              node = { type: "error", from, to }
              break
            case 40: // (
              node = { type: "bigNumber", from, to }
              break
            case 58: { // :
              const value = parseInteger(buf, lineStart + 1, textEnd)
              if (value === undefined) return protocolError(cursor, name, "invalid integer")
              node = { type: "integer", value }
              break
            }
            case 44: { // ,
              const text = Bytes.toString(buf.subarray(lineStart + 1, textEnd))
              const value = text === "inf"
                ? Infinity
                : text === "-inf"
                ? -Infinity
                : text === "nan"
                ? NaN
                : Number(text)
              node = { type: "double", value }
              break
            }
            case 35: // #
              node = { type: "boolean", value: buf[lineStart + 1] === 116 }
              break
            case 95: // _
              node = { type: "null" }
              break
            case 36: // $
            case 61: // =
            case 33: { // !
              const length = parseInteger(buf, lineStart + 1, textEnd)
              if (length === undefined || length < -1) return protocolError(cursor, name, "invalid bulk length")
              if (length === -1) {
                node = { type: "null" }
                break
              }
              const total = state.pos + length + 2
              if (total > max) return tooLarge(cursor, name, total, max)
              state.bulkType = type === 36 ? "bulk" : type === 61 ? "verbatim" : "blobError"
              state.bulkStart = state.pos
              state.bulkLength = length
              continue
            }
            case 42: // *
            case 126: // ~
            case 62: // >
            case 37: // %
            case 124: { // |
              const count = parseInteger(buf, lineStart + 1, textEnd)
              if (count === undefined || count < -1) return protocolError(cursor, name, "invalid multibulk length")
              if (count === -1) {
                node = { type: "null" }
                break
              }
              const pairs = type === 37 || type === 124
              const containerType = type === 42
                ? "array"
                : type === 126
                ? "set"
                : type === 62
                ? "push"
                : type === 37
                ? "map"
                : "attribute"
              const open: Open = { type: containerType, items: [], remaining: pairs ? count * 2 : count }
              if (open.remaining > 0) {
                if (state.stack.length >= MAX_DEPTH) return protocolError(cursor, name, "reply nested too deep")
                state.stack.push(open)
                continue
              }
              node = { type: containerType, items: open.items } as Node
              break
            }
            default:
              return protocolError(cursor, name, `unknown reply type '${String.fromCharCode(type)}'`)
          }
        }
        // A value is complete: into its container, or the reply is done.
        for (;;) {
          const parent = state.stack[state.stack.length - 1]
          if (parent === undefined) {
            cursor.frameStart = start
            cursor.frameEnd = start + state.pos
            cursor.next = start + state.pos
            cursor.value = node
            state.pos = 0
            state.scanned = 0
            state.stack = []
            return 2
          }
          parent.items.push(node)
          if (--parent.remaining > 0) break
          state.stack.pop()
          node = { type: parent.type, items: parent.items } as Node
        }
      }
    },
    begin: (writer) => writer.length,
    end: () => {}
  }
}
