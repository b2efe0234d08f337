/**
 * The reply framer: any RESP2 or RESP3 value, nested, as a Redis client reads it, parsed as it comes
 * (a reply that spans reads is not parsed again from its start; a bulk string's bytes are asked for
 * with `NeedBytes`, never scanned). The frame's value is the reply's `Node` tree, whose strings are
 * positions in the frame.
 */
import { Bytes, type Frame } from "../../src/index.ts"
import { CR, type Examined, findLineEnd, LF, MAX_LINE, parseInteger, protocolError, tooLarge } from "./framing.ts"

/** The deepest a reply may nest. */
const MAX_DEPTH = 64

/** A RESP value as the reply framer parses it: strings are positions in the frame. */
export type Node =
  | {
    readonly type: "simple" | "error" | "bulk" | "verbatim" | "blobError" | "bigNumber"
    readonly from: number
    readonly to: number
  }
  /** `value`, and `big` (exact) when the integer is beyond 2^53. */
  | { readonly type: "integer"; readonly value: number; readonly big?: bigint }
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
              node = Number.isSafeInteger(value)
                ? { type: "integer", value }
                : { type: "integer", value, big: BigInt(Bytes.toString(buf.subarray(lineStart + 1, textEnd))) }
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
