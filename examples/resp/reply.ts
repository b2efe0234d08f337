/**
 * What the server answers, and how it is written on the wire.
 *
 * A `Reply` is a RESP value as it goes out: the handler decides between RESP2 and RESP3 forms
 * through the connection's `Protocol` (as Redis's `addReplyNull`, `addReplyMapLen`, ... look at
 * `c->resp`), so that the encoder, shared by every connection, writes what it is given. Strings in
 * this server are "binary strings" (one char per byte, latin1): keys, channel names and error texts
 * keep whatever bytes the client sent.
 *
 * The common replies cost nothing to make: a bulk string is its `Uint8Array`, an integer its
 * `number` (or `bigint` past 2^53), `+OK` and the nulls are shared pre-encoded constants.
 */
import { Bytes, Codec, Errors } from "../../src/index.ts"
import { Args, binaryOf } from "./args.ts"
import type { Command } from "./framer.ts"

/** `+text`: a simple string. */
export class Status {
  constructor(readonly text: string) {}
}

/** `-text`: an error; `text` starts with its code (`ERR`, `WRONGTYPE`, `NOPROTO`, ...). */
export class ErrorReply {
  constructor(readonly text: string) {}
}

/** Bytes written as they are: shared replies encoded once (`+OK\r\n`, `$-1\r\n`, ...). */
export class Raw {
  constructor(readonly bytes: Uint8Array) {}
}

/** An aggregate other than a plain array: a map (items are key, value, key, value...), a set, a push. */
export class Aggregate {
  constructor(readonly kind: "map" | "set" | "push", readonly items: ReadonlyArray<Reply>) {}
}

/** RESP3 `,`: a double. */
export class Double {
  constructor(readonly value: number) {}
}

/** RESP3 `=`: a verbatim string with its 3-letter format (`txt`, `mkd`). */
export class Verbatim {
  constructor(readonly format: string, readonly text: string) {}
}

/** Several replies to one command, one after the other (SUBSCRIBE a b answers once per channel). */
export class Many {
  constructor(readonly replies: ReadonlyArray<Reply>) {}
}

/**
 * One reply: a bulk string (`Uint8Array`, or a binary `string`), an integer (`number` or `bigint`),
 * an array, or one of the classes above.
 */
export type Reply =
  | Uint8Array
  | string
  | number
  | bigint
  | ReadonlyArray<Reply>
  | Status
  | ErrorReply
  | Raw
  | Aggregate
  | Double
  | Verbatim
  | Many

// --- binary strings --------------------------------------------------------------------------------

/** The bytes of a binary string (chars 0-255). */
export const bytesOf = (text: string): Uint8Array => {
  const out = new Uint8Array(text.length)
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i)
  return out
}

/** The binary string of some bytes: lossless, one char per byte. */
export const binary = (bytes: Uint8Array): string => binaryOf(bytes, 0, bytes.length)

// --- shared replies --------------------------------------------------------------------------------

const raw = (text: string): Raw => new Raw(bytesOf(text))

/** `+OK`. */
export const OK: Raw = raw("+OK\r\n")
/** `+PONG`. */
export const PONG: Raw = raw("+PONG\r\n")
/** No reply at all (an empty command). */
export const NONE: Raw = new Raw(new Uint8Array(0))
/** `*0`. */
export const EMPTY_ARRAY: Raw = raw("*0\r\n")

/** `-ERR <text>`, as Redis's `addReplyError` (which adds the `ERR` code unless the text has one). */
export const error = (text: string): ErrorReply => new ErrorReply(text.startsWith("-") ? text.slice(1) : `ERR ${text}`)

/** Redis's `shared.syntaxerr`. */
export const SYNTAX = error("syntax error")
/** Redis's `shared.wrongtypeerr`. */
export const WRONGTYPE = new ErrorReply("WRONGTYPE Operation against a key holding the wrong kind of value")
/** What `getLongLongFromObjectOrReply` answers. */
export const NOT_INTEGER = error("value is not an integer or out of range")

// --- the connection's protocol version ---------------------------------------------------------------

/**
 * The replies whose form depends on the connection's RESP version, as Redis's `addReply*`
 * functions choose them from `c->resp`.
 */
export interface Protocol {
  readonly version: 2 | 3
  /** A null bulk string: `$-1` in RESP2, `_` in RESP3. */
  readonly nil: Reply
  /** A null array: `*-1` in RESP2, `_` in RESP3. */
  readonly nilArray: Reply
  /** A map: a flat array in RESP2, `%` in RESP3. */
  map(items: ReadonlyArray<Reply>): Reply
  /** A set: an array in RESP2, `~` in RESP3. */
  set(items: ReadonlyArray<Reply>): Reply
  /** An out-of-band message: an array in RESP2, `>` in RESP3. */
  push(items: ReadonlyArray<Reply>): Reply
  /** A boolean: `:1` / `:0` in RESP2, `#t` / `#f` in RESP3. */
  bool(value: boolean): Reply
  /** A double: a bulk string in RESP2, `,` in RESP3. */
  double(value: number): Reply
  /** A verbatim string: a bulk string in RESP2, `=` in RESP3. */
  verbatim(text: string, format?: string): Reply
}

export const RESP2: Protocol = {
  version: 2,
  nil: raw("$-1\r\n"),
  nilArray: raw("*-1\r\n"),
  map: (items) => items,
  set: (items) => items,
  push: (items) => items,
  bool: (value) => (value ? 1 : 0),
  double: (value) => formatDouble(value),
  verbatim: (text) => text
}

const NULL3 = raw("_\r\n")

export const RESP3: Protocol = {
  version: 3,
  nil: NULL3,
  nilArray: NULL3,
  map: (items) => new Aggregate("map", items),
  set: (items) => new Aggregate("set", items),
  push: (items) => new Aggregate("push", items),
  bool: (value) => raw(value ? "#t\r\n" : "#f\r\n"),
  double: (value) => new Double(value),
  verbatim: (text, format = "txt") => new Verbatim(format, text)
}

/** A double, with Redis's `inf`, `-inf` and `nan` (no command here answers one yet). */
const formatDouble = (value: number): string => {
  if (Number.isNaN(value)) return "nan"
  if (!Number.isFinite(value)) return value > 0 ? "inf" : "-inf"
  return String(value)
}

// --- encoding --------------------------------------------------------------------------------------

const writeAscii = (writer: Bytes.Writer, text: string): void => {
  writer.ensure(text.length)
  const bytes = writer.bytes
  let at = writer.length
  for (let i = 0; i < text.length; i++) bytes[at++] = text.charCodeAt(i)
  writer.length = at
}

/** `<type><n>\r\n`, without making a string for small numbers. */
const writeHeader = (writer: Bytes.Writer, type: number, n: number): void => {
  if (n >= 0 && n < 10) {
    writer.ensure(4)
    const bytes = writer.bytes
    const at = writer.length
    bytes[at] = type
    bytes[at + 1] = 48 + n
    bytes[at + 2] = 13
    bytes[at + 3] = 10
    writer.length = at + 4
    return
  }
  writeAscii(writer, String.fromCharCode(type) + n + "\r\n")
}

const writeBulk = (writer: Bytes.Writer, bytes: Uint8Array): void => {
  writeHeader(writer, 36, bytes.length)
  writer.ensure(bytes.length + 2)
  writer.bytes.set(bytes, writer.length)
  const at = writer.length + bytes.length
  writer.bytes[at] = 13
  writer.bytes[at + 1] = 10
  writer.length = at + 2
}

const kindByte = { map: 37, set: 126, push: 62 } as const

/** Writes one reply into `writer`. */
export const encodeInto = (writer: Bytes.Writer, reply: Reply): void => {
  if (reply instanceof Uint8Array) return writeBulk(writer, reply)
  switch (typeof reply) {
    case "number":
    case "bigint":
      return writeAscii(writer, `:${reply}\r\n`)
    case "string":
      writeHeader(writer, 36, reply.length)
      writeAscii(writer, reply)
      return writeAscii(writer, "\r\n")
  }
  if (reply instanceof Raw) return writer.write(reply.bytes)
  if (Array.isArray(reply)) {
    writeHeader(writer, 42, reply.length)
    for (const item of reply as ReadonlyArray<Reply>) encodeInto(writer, item)
    return
  }
  if (reply instanceof Status) return writeAscii(writer, `+${reply.text}\r\n`)
  if (reply instanceof ErrorReply) return writeAscii(writer, `-${reply.text}\r\n`)
  if (reply instanceof Aggregate) {
    writeHeader(writer, kindByte[reply.kind], reply.kind === "map" ? reply.items.length / 2 : reply.items.length)
    for (const item of reply.items) encodeInto(writer, item)
    return
  }
  if (reply instanceof Many) {
    for (const item of reply.replies) encodeInto(writer, item)
    return
  }
  if (reply instanceof Double) return writeAscii(writer, `,${formatDouble(reply.value)}\r\n`)
  if (reply instanceof Verbatim) {
    writeHeader(writer, 61, reply.text.length + 4)
    return writeAscii(writer, `${reply.format}:${reply.text}\r\n`)
  }
}

/** One reply as bytes. */
export const encode = (reply: Reply): Uint8Array => {
  const writer = new Bytes.Writer({ initialCapacity: 64 })
  encodeInto(writer, reply)
  return writer.takeCopy()
}

/**
 * The server's codec: commands in (their arguments, where the framer found them in the frame),
 * replies out. The arguments are valid while the handler runs: what is kept is copied.
 */
export const serverCodec: Codec.Codec<Uint8Array, Args, Reply, Errors.PacketDecodeError, never> = Codec
  .makeUnsafe({
    name: "resp",
    decode: (bytes) => {
      throw new Errors.PacketDecodeError({
        codec: "resp",
        cause: new Error("the resp framer hands every frame's parse result to the codec: use it with commands()"),
        length: bytes.length
      })
    },
    decodeFrame: (frame, parsed) => new Args(frame, (parsed as Command).positions),
    encode,
    encodeInto
  })
