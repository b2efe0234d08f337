/**
 * The client side of RESP: commands out (arrays of bulk strings), replies in, as plain values.
 *
 * | RESP                                  | `Value`                                   |
 * | ------------------------------------- | ----------------------------------------- |
 * | simple string `+OK`                   | `string`                                  |
 * | bulk string, verbatim string          | `Uint8Array` (a copy; verbatim: its text) |
 * | integer                               | `number`, or `bigint` past 2^53           |
 * | double `,` / big number `(`           | `number` / `bigint`                       |
 * | boolean `#`                           | `boolean`                                 |
 * | null (`$-1`, `*-1`, `_`)              | `null`                                    |
 * | array `*`, set `~`                    | `ReadonlyArray<Value>`                    |
 * | map `%`                               | `ReadonlyMap<string, Value>` (keys as text) |
 * | push `>`                              | `Push`                                    |
 * | error `-`, blob error `!`             | `RedisError`                              |
 */
import * as Data from "effect/Data"
import { Bytes, Codec, Errors } from "../../src/index.ts"
import { type Node, replies } from "./framer.ts"

/**
 * An error reply: `code` is its first word (`ERR`, `WRONGTYPE`, `NOPROTO`, ...), `reply` its whole
 * text, `command` the command it answers.
 */
export class RedisError extends Data.TaggedError("RedisError")<{
  readonly code: string
  readonly reply: string
  readonly command: string
}> {
  override get message(): string {
    return this.command === "" ? this.reply : `${this.command}: ${this.reply}`
  }
}

/** A RESP3 push (`>`): pub/sub messages and other out-of-band data. */
export class Push {
  constructor(readonly items: ReadonlyArray<Value>) {}
}

/** A reply, decoded. */
export type Value =
  | string
  | Uint8Array
  | number
  | bigint
  | boolean
  | null
  | ReadonlyArray<Value>
  | ReadonlyMap<string, Value>
  | Push
  | RedisError

/** What a command's arguments may be: strings are sent as UTF-8. */
export type Arg = string | Uint8Array | number | bigint

const errorOf = (text: string, command = ""): RedisError => {
  const space = text.indexOf(" ")
  return new RedisError({ code: space === -1 ? text : text.slice(0, space), reply: text, command })
}

/** The text of a value that is a string of any kind (UTF-8, invalid bytes replaced). */
export const text = (value: Value): string | undefined =>
  typeof value === "string" ? value : value instanceof Uint8Array ? Bytes.toString(value) : undefined

const toValue = (frame: Uint8Array, node: Node): Value => {
  switch (node.type) {
    case "simple":
      return Bytes.toString(frame.subarray(node.from, node.to))
    case "bulk": // copies, not views of the read buffer (`Bytes.copy`: small ones share a slab)
      return Bytes.copy(frame.subarray(node.from, node.to))
    case "verbatim":
      return Bytes.copy(frame.subarray(node.from + 4, node.to))
    case "error":
    case "blobError":
      return errorOf(Bytes.toString(frame.subarray(node.from, node.to)))
    case "bigNumber":
      return BigInt(Bytes.toString(frame.subarray(node.from, node.to)))
    case "integer":
      return node.big ?? node.value
    case "double":
    case "boolean":
      return node.value
    case "null":
      return null
    case "array":
    case "set":
      return node.items.map((item) => toValue(frame, item))
    case "push":
      return new Push(node.items.map((item) => toValue(frame, item)))
    case "map":
    case "attribute": {
      const map = new Map<string, Value>()
      for (let i = 0; i + 1 < node.items.length; i += 2) {
        const key = toValue(frame, node.items[i]!)
        map.set(text(key) ?? String(key), toValue(frame, node.items[i + 1]!))
      }
      return map
    }
  }
}

const encoder = new TextEncoder()

const bytesOf = (arg: Arg): Uint8Array =>
  arg instanceof Uint8Array ? arg : encoder.encode(typeof arg === "string" ? arg : String(arg))

/** Writes a command as an array of bulk strings. */
const writeCommand = (writer: Bytes.Writer, args: ReadonlyArray<Arg>): void => {
  writer.writeUtf8(`*${args.length}\r\n`)
  for (const arg of args) {
    const bytes = bytesOf(arg)
    writer.writeUtf8(`$${bytes.length}\r\n`)
    writer.write(bytes)
    writer.writeUtf8("\r\n")
  }
}

/** The reply framer the client reads with. */
export const framer = replies()

/** Replies in (as `Value`s, parsed once by the framer), commands out. */
export const clientCodec: Codec.Codec<Uint8Array, Value, ReadonlyArray<Arg>, Errors.PacketDecodeError, never> = Codec
  .makeUnsafe({
    name: "resp-client",
    decode: (bytes) => {
      throw new Errors.PacketDecodeError({
        codec: "resp-client",
        cause: new Error("replies are decoded from what the reply framer parsed: use it with replies()"),
        length: bytes.length
      })
    },
    decodeFrame: (frame, parsed) => toValue(frame, parsed as Node),
    encode: (args) => {
      const writer = new Bytes.Writer({ initialCapacity: 64 })
      writeCommand(writer, args)
      return writer.takeCopy()
    },
    encodeInto: writeCommand
  })

export { errorOf }
