/**
 * Packet codecs: from a frame's bytes to a typed message and back.
 *
 * `schema(S, "json" | "msgpack")` works with any Effect Schema; decode failures are
 * `PacketDecodeError` carrying the Schema's `ParseError`. `utf8`, `bytes` and `make` (hand-written
 * binary codecs) complete the set.
 *
 * @since 0.1.0
 */
import * as MsgPack from "@effect/platform/MsgPack"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as Codec from "./Codec.ts"
import { PacketDecodeError, PacketEncodeError } from "./Errors.ts"

/**
 * A packet codec: bytes on the wire, typed messages above.
 *
 * @since 0.1.0
 * @category models
 */
export type Packet<Decoded, Encoded = Decoded> = Codec.Codec<
  Uint8Array,
  Decoded,
  Encoded,
  PacketDecodeError,
  PacketEncodeError
>

/**
 * The wire formats of `schema`.
 *
 * @since 0.1.0
 * @category models
 */
export type Format = "json" | "msgpack"

const textDecoder = new TextDecoder("utf-8", { fatal: true })
// `utf8` decodes exactly what `encode` wrote: a leading U+FEFF is text, not a byte order mark to drop.
const exactTextDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })
const textEncoder = new TextEncoder()

/**
 * A codec for any Schema (without requirements), as JSON text or as MessagePack (through
 * `@effect/platform`'s `MsgPack`, i.e. msgpackr).
 *
 * @example
 * ```ts
 * import { Packet } from "sluice"
 * import { Schema } from "effect"
 *
 * const Ping = Schema.Struct({ id: Schema.Number, text: Schema.String })
 * const codec = Packet.schema(Ping, "msgpack")
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const schema = <A, I>(schema: Schema.Schema<A, I, never>, format: Format = "json"): Packet<A> => {
  const name = `${format}(${String(schema.ast)})`
  if (format === "msgpack") {
    const wire = MsgPack.schema(schema) as unknown as Schema.Schema<A, Uint8Array, never>
    const decode = Schema.decodeUnknownEither(wire)
    const encode = Schema.encodeEither(wire)
    return Codec.makeUnsafe({
      name,
      decode: (bytes) => {
        const result = decode(bytes)
        if (Either.isLeft(result)) {
          throw new PacketDecodeError({ codec: name, cause: result.left, length: bytes.length })
        }
        return result.right
      },
      encode: (value) => {
        const result = encode(value)
        if (Either.isLeft(result)) throw new PacketEncodeError({ codec: name, cause: result.left })
        return result.right
      }
    })
  }
  const decode = Schema.decodeUnknownEither(Schema.parseJson(schema))
  const encode = Schema.encodeEither(schema)
  const toJson = (value: A): string => {
    const result = encode(value)
    if (Either.isLeft(result)) throw new PacketEncodeError({ codec: name, cause: result.left })
    return JSON.stringify(result.right)
  }
  return Codec.makeUnsafe({
    name,
    decode: (bytes) => {
      let text: string
      try {
        text = textDecoder.decode(bytes)
      } catch {
        const issue = new ParseResult.Type(Schema.Uint8ArrayFromSelf.ast, bytes, "invalid UTF-8")
        throw new PacketDecodeError({ codec: name, cause: new ParseResult.ParseError({ issue }), length: bytes.length })
      }
      const result = decode(text)
      if (Either.isLeft(result)) throw new PacketDecodeError({ codec: name, cause: result.left, length: bytes.length })
      return result.right
    },
    encode: (value) => textEncoder.encode(toJson(value)),
    encodeInto: (writer, value) => {
      writer.writeUtf8(toJson(value))
    }
  })
}

/**
 * UTF-8 text. Invalid UTF-8 is a `PacketDecodeError`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const utf8: Packet<string> = Codec.makeUnsafe({
  name: "utf8",
  decode: (bytes) => {
    try {
      return exactTextDecoder.decode(bytes)
    } catch (cause) {
      throw new PacketDecodeError({ codec: "utf8", cause, length: bytes.length })
    }
  },
  encode: (text) => textEncoder.encode(text),
  encodeInto: (writer, text) => {
    writer.writeUtf8(text)
  }
})

/**
 * The frame's bytes themselves. A decoded frame may be a view of the read buffer, valid until its
 * handler returns: copy it (`slice()`) to keep it longer.
 *
 * @since 0.1.0
 * @category constructors
 */
export const bytes: Packet<Uint8Array> = Codec.makeUnsafe({
  name: "bytes",
  decode: (bytes) => bytes,
  encode: (bytes) => bytes,
  encodeInto: (writer, bytes) => {
    writer.write(bytes)
  }
})

/**
 * A hand-written codec. Anything `decode` or `encode` throws (a `RangeError` from a `DataView` read
 * past the end, say) becomes a `PacketDecodeError` / `PacketEncodeError` with it as the cause.
 *
 * @example
 * ```ts
 * import { Packet } from "sluice"
 *
 * // A big-endian 32-bit counter.
 * const counter = Packet.make({
 *   name: "u32",
 *   decode: (bytes) => new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0),
 *   encode: (n: number) => {
 *     const out = new Uint8Array(4)
 *     new DataView(out.buffer).setUint32(0, n)
 *     return out
 *   }
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <Decoded, Encoded = Decoded>(options: {
  readonly name: string
  readonly decode: (bytes: Uint8Array) => Decoded
  readonly encode: (value: Encoded) => Uint8Array
}): Packet<Decoded, Encoded> =>
  Codec.makeUnsafe({
    name: options.name,
    decode: (bytes) => {
      try {
        return options.decode(bytes)
      } catch (cause) {
        throw new PacketDecodeError({ codec: options.name, cause, length: bytes.length })
      }
    },
    encode: (value) => {
      try {
        return options.encode(value)
      } catch (cause) {
        throw new PacketEncodeError({ codec: options.name, cause })
      }
    }
  })
