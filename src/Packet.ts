/**
 * Packet codecs: from a frame's bytes to a typed message and back.
 *
 * `schema(S, "json" | "msgpack")` works with any Effect Schema; decode failures are
 * `PacketDecodeError` carrying the Schema's `SchemaError`. `utf8`, `bytes` and `make` (hand-written
 * binary codecs) complete the set.
 *
 * @since 0.1.0
 */
import * as Exit from "effect/Exit"
import * as Schema from "effect/Schema"
import * as SchemaAST from "effect/SchemaAST"
import * as SchemaIssue from "effect/SchemaIssue"
import { Packr } from "msgpackr"
import * as Codec from "./Codec.ts"
import type * as Frame from "./Frame.ts"
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
 * Standard MessagePack, readable by any other implementation: maps rather than msgpackr's record
 * extension, the smallest map header that fits, and 64-bit integers decoded as numbers while they are
 * safe integers. msgpackr writes a number that is not a 32-bit integer as a float64.
 * (`skipValues` and `int64AsType: "auto"` are supported by msgpackr, and missing from its type
 * declarations.)
 */
const packr = new Packr(
  {
    useRecords: false,
    mapsAsObjects: true,
    variableMapSize: true,
    // An `undefined` field is left out, as JSON leaves it out (so that an optional field decodes);
    // elsewhere (in an array) it is nil.
    skipValues: [undefined],
    encodeUndefinedAsNil: true,
    int64AsType: "auto"
  } as unknown as ConstructorParameters<typeof Packr>[0]
)

/**
 * A short description of a schema for codec names and error messages: its `identifier` annotation,
 * or its shape (the fields of a struct, the members of a union), `depth` levels deep.
 */
const describe = (ast: SchemaAST.AST, depth: number): string => {
  const identifier = SchemaAST.resolveIdentifier(ast)
  if (identifier !== undefined) return identifier
  switch (ast._tag) {
    case "Objects": {
      if (depth === 0) return "{...}"
      const fields = ast.propertySignatures.map((p) => `${String(p.name)}: ${describe(p.type, depth - 1)}`)
      return `{ ${fields.join(", ")} }`
    }
    case "Union":
      return depth === 0 ? "union" : ast.types.map((t) => describe(t, depth - 1)).join(" | ")
    case "Arrays":
      return "array"
    case "Literal":
      return JSON.stringify(ast.literal)
    default:
      return ast._tag.toLowerCase()
  }
}

const invalid = (message: string, input: unknown): Schema.SchemaError =>
  new Schema.SchemaError(new SchemaIssue.InvalidValue({ message }, input))

const firstFailure = <E>(exit: Exit.Failure<unknown, E>): unknown => {
  const reason = exit.cause.reasons[0]
  return reason?._tag === "Fail" ? reason.error : reason?._tag === "Die" ? reason.defect : exit.cause
}

/**
 * A codec for any Schema without requirements, as JSON text or as standard MessagePack (through
 * msgpackr, without its record extension, so that any MessagePack library reads it). A decode
 * failure is a `PacketDecodeError` whose cause is a Schema `SchemaError`.
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
export const schema = <A, I>(schema: Schema.Codec<A, I, never, never>, format: Format = "json"): Packet<A> => {
  const name = `${format}(${describe(schema.ast, 2)})`
  const decodeValue = Schema.decodeUnknownExit(schema)
  const encodeValue = Schema.encodeUnknownExit(schema)
  const encoded = (value: A): I => {
    const exit = encodeValue(value)
    if (Exit.isFailure(exit)) throw new PacketEncodeError({ codec: name, cause: firstFailure(exit) })
    return exit.value
  }
  const decoded = (input: unknown, length: number): A => {
    const exit = decodeValue(input)
    if (Exit.isFailure(exit)) throw new PacketDecodeError({ codec: name, cause: firstFailure(exit), length })
    return exit.value
  }
  if (format === "msgpack") {
    return Codec.makeUnsafe({
      name,
      decode: (bytes) => {
        let input: unknown
        try {
          input = packr.unpack(bytes)
        } catch (cause) {
          const message = `invalid MessagePack: ${cause instanceof Error ? cause.message : String(cause)}`
          throw new PacketDecodeError({ codec: name, cause: invalid(message, bytes), length: bytes.length })
        }
        return decoded(input, bytes.length)
      },
      encode: (value) => pack(name, encoded(value)),
      encodeInto: (writer, value) => {
        writer.write(pack(name, encoded(value)))
      }
    })
  }
  const toJson = (value: A): string => {
    try {
      return JSON.stringify(encoded(value))
    } catch (cause) {
      if (cause instanceof PacketEncodeError) throw cause
      throw new PacketEncodeError({ codec: name, cause })
    }
  }
  return Codec.makeUnsafe({
    name,
    decode: (bytes) => {
      let input: unknown
      try {
        input = JSON.parse(textDecoder.decode(bytes))
      } catch (cause) {
        const message = cause instanceof SyntaxError ? `invalid JSON: ${cause.message}` : "invalid UTF-8"
        throw new PacketDecodeError({ codec: name, cause: invalid(message, bytes), length: bytes.length })
      }
      return decoded(input, bytes.length)
    },
    encode: (value) => textEncoder.encode(toJson(value)),
    encodeInto: (writer, value) => {
      writer.writeUtf8(toJson(value))
    }
  })
}

const pack = (name: string, value: unknown): Uint8Array => {
  try {
    return packr.pack(value)
  } catch (cause) {
    throw new PacketEncodeError({ codec: name, cause })
  }
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

/**
 * The messages a framer parses itself (a `Frame.Framer<A>` that hands a parse result on: RESP values,
 * HTTP heads and body chunks), as they are: the frame is parsed once, by the framer. Encoding is not
 * its part: join it with an encoder, `Codec.duplex({ decode: Packet.parsed(framer), encode })`.
 *
 * @example
 * ```ts
 * import { Codec, type Frame, Packet } from "sluice"
 *
 * declare const resp: Frame.Framer<ReadonlyArray<string>>
 * declare const replies: Packet.Packet<string>
 * const codec = Codec.duplex({ decode: Packet.parsed(resp), encode: replies })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const parsed = <A>(framer: Frame.Framer<A>): Packet<A, unknown> =>
  Codec.makeUnsafe<Uint8Array, A, unknown, PacketDecodeError, PacketEncodeError>({
    name: `parsed(${framer.name})`,
    decode: (bytes: Uint8Array) => {
      throw new PacketDecodeError({
        codec: `parsed(${framer.name})`,
        cause: new Error(`the framer "${framer.name}" handed no parse result for this frame`),
        length: bytes.length
      })
    },
    decodeFrame: (_bytes, parsed) => parsed as A,
    encode: () => {
      throw new PacketEncodeError({ codec: `parsed(${framer.name})`, cause: new Error("parsed() only decodes") })
    }
  })
