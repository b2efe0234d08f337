import { describe, expect, it } from "@effect/vitest"
import * as MessagePack from "@msgpack/msgpack"
import { Result, Schema } from "effect"
import fc from "fast-check"
import { Bytes, Codec, Frame, Packet } from "../src/index.ts"

const failure = <A, E>(result: Result.Result<A, E>): E =>
  Result.getOrThrowWith(Result.flip(result), (a) => new Error(`expected a failure, got ${String(a).slice(0, 80)}`))

const success = <A, E>(result: Result.Result<A, E>): A =>
  Result.getOrThrowWith(result, (e) => new Error(`expected a success, got ${String(e).slice(0, 300)}`))

const text = (s: string): Uint8Array => Bytes.fromString(s)

const hex = (bytes: Uint8Array): string => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ")
const fromHex = (s: string): Uint8Array =>
  Uint8Array.from(s.split(/\s+/).filter((h) => h !== ""), (h) => parseInt(h, 16))

/** Copies bytes into the middle of a larger buffer: a view with a non-zero `byteOffset`, as the frame decoder hands out. */
const view = (bytes: Uint8Array): Uint8Array => {
  const buf = new Uint8Array(bytes.length + 13).fill(0xc1)
  buf.set(bytes, 5)
  return buf.subarray(5, 5 + bytes.length)
}

/** Values that survive JSON as they are: no NaN, no -0, dates and optional fields through Schema transformations. */
const Message = Schema.Union([
  Schema.TaggedStruct("Ping", {
    id: Schema.Int,
    text: Schema.String,
    tags: Schema.Array(Schema.String),
    at: Schema.DateFromString,
    reply: Schema.optional(Schema.Boolean)
  }),
  Schema.TaggedStruct("Data", {
    id: Schema.Int,
    values: Schema.Array(Schema.Int),
    // msgpackr reads a "__proto__" key as "__proto_" (prototype pollution guard): leave that key out.
    meta: Schema.NullOr(
      Schema.Record(Schema.String.check(Schema.makeFilter((k: string) => k !== "__proto__")), Schema.String)
    ),
    big: Schema.BigIntFromString
  })
])
type Message = typeof Message.Type

/**
 * Messages as effect 3's `Arbitrary.make(Message)` generated them with fast-check (effect 4's Arbitrary is its own
 * engine): a union is `oneof`, an optional field is absent, `undefined` or a boolean, a date is valid.
 */
const messages: fc.Arbitrary<Message> = fc.oneof(
  fc.record({
    _tag: fc.constant("Ping" as const),
    id: fc.integer(),
    text: fc.string(),
    tags: fc.array(fc.string()),
    at: fc.date({ noInvalidDate: true }),
    reply: fc.oneof(fc.boolean(), fc.constant(undefined))
  }, { requiredKeys: ["_tag", "id", "text", "tags", "at"], noNullPrototype: true }),
  fc.record({
    _tag: fc.constant("Data" as const),
    id: fc.integer(),
    values: fc.array(fc.integer()),
    meta: fc.oneof(
      fc.dictionary(fc.string().filter((k) => k !== "__proto__"), fc.string(), { noNullPrototype: true }),
      fc.constant(null)
    ),
    big: fc.bigInt()
  }, { noNullPrototype: true })
)

const Port = Schema.Struct({ port: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 65535 })) })

const NUM_RUNS = { numRuns: 100 }

describe("Packet.schema", () => {
  for (const format of ["json", "msgpack"] as const) {
    describe(format, () => {
      const codec = Packet.schema(Message, format)

      it("round trip through the wire format, also from a view with an offset", () => {
        fc.assert(
          fc.property(messages, (message) => {
            const wire = success(Codec.encode(codec, message))
            expect(success(Codec.decode(codec, wire))).toEqual(message)
            expect(success(Codec.decode(codec, view(wire)))).toEqual(message)
          }),
          NUM_RUNS
        )
      })

      it("round trip inside a frame, decoded from a stream split anywhere", () => {
        fc.assert(
          fc.property(fc.array(messages, { maxLength: 5 }), fc.integer({ min: 1, max: 64 }), (messages, size) => {
            const framer = Frame.varint()
            const wire = Bytes.concat(messages.map((m) => Frame.encode(framer, success(Codec.encode(codec, m)))))
            const chunks: Array<Uint8Array> = []
            for (let at = 0; at < wire.length; at += size) chunks.push(wire.slice(at, at + size))
            const frames = success(Frame.decodeAll(framer, chunks))
            expect(frames.map((f) => success(Codec.decode(codec, f)))).toEqual(messages)
          }),
          { numRuns: 30 }
        )
      })

      it("encoded packets stay valid after more packets are encoded", () => {
        const messages: Array<Message> = Array.from({ length: 300 }, (_, id) => ({
          _tag: "Data",
          id,
          values: Array.from({ length: id % 17 }, (_, i) => i * id),
          meta: null,
          big: BigInt(id) ** 5n
        }))
        const wires = messages.map((m) => success(Codec.encode(codec, m)))
        expect(wires.map((w) => success(Codec.decode(codec, w)))).toEqual(messages)
      })

      it("a value that fails the schema's check is PacketEncodeError with the SchemaError", () => {
        const ports = Packet.schema(Port, format)
        expect(success(Codec.decode(ports, success(Codec.encode(ports, { port: 8080 }))))).toEqual({ port: 8080 })
        const error = failure(Codec.encode(ports, { port: 0 }))
        expect(error._tag).toBe("PacketEncodeError")
        expect(error.cause).toBeInstanceOf(Schema.SchemaError)
        expect(error.codec).toBe(ports.name)
        expect(error.message).toContain(ports.name)
        expect(error.message).toContain("between 1 and 65535")
        // Straight into a writer: the same error, nothing written.
        if (ports.encodeIntoUnsafe !== undefined) {
          const writer = new Bytes.Writer()
          writer.write(text("kept"))
          expect(() => ports.encodeIntoUnsafe!(writer, { port: 70000 })).toThrow(/PacketEncodeError|cannot encode/)
          expect(Bytes.toString(writer.written())).toBe("kept")
        }
      })

      it("bytes that decode but fail the schema are PacketDecodeError with the SchemaError", () => {
        const other = Packet.schema(Schema.Struct({ port: Schema.String }), format)
        const wire = success(Codec.encode(other, { port: "http" }))
        const error = failure(Codec.decode(Packet.schema(Port, format), wire))
        expect(error._tag).toBe("PacketDecodeError")
        expect(error.cause).toBeInstanceOf(Schema.SchemaError)
        expect(error.length).toBe(wire.length)
        expect(error.message).toContain(`${format}(`)
        expect(error.message).toContain(`${wire.length} bytes`)
        expect(error.message).toContain("Expected number")
      })
    })
  }

  it("the codec name tells the format and the schema", () => {
    expect(Packet.schema(Port, "json").name).toMatch(/^json\(.*port.*\)$/)
    expect(Packet.schema(Port, "msgpack").name).toMatch(/^msgpack\(.*port.*\)$/)
    expect(Packet.schema(Port).name).toMatch(/^json\(/)
  })

  it("json writes plain JSON text of the encoded side", () => {
    const codec = Packet.schema(Schema.Struct({ at: Schema.DateFromString, n: Schema.NumberFromString }), "json")
    const wire = success(Codec.encode(codec, { at: new Date(0), n: 5 }))
    expect(Bytes.toString(wire)).toBe(`{"at":"1970-01-01T00:00:00.000Z","n":"5"}`)
    const writer = new Bytes.Writer()
    codec.encodeIntoUnsafe!(writer, { at: new Date(0), n: 5 })
    expect(Bytes.toString(writer.written())).toBe(Bytes.toString(wire))
  })

  it("invalid JSON is PacketDecodeError with a SchemaError cause", () => {
    const codec = Packet.schema(Port, "json")
    for (const bad of ["{not json", "", `{"port": 1`, "\u0000"]) {
      const error = failure(Codec.decode(codec, text(bad)))
      expect(error._tag).toBe("PacketDecodeError")
      expect(error.cause).toBeInstanceOf(Schema.SchemaError)
      expect(error.message).toContain("json(")
    }
  })

  it("JSON that fails the schema is PacketDecodeError with a SchemaError cause", () => {
    const codec = Packet.schema(Port, "json")
    for (const bad of [`{"port":"80"}`, `{"port":0}`, `{}`, `[80]`, `null`]) {
      const error = failure(Codec.decode(codec, text(bad)))
      expect(error._tag).toBe("PacketDecodeError")
      expect(error.cause).toBeInstanceOf(Schema.SchemaError)
      expect(error.length).toBe(bad.length)
    }
  })

  it("invalid MessagePack bytes are PacketDecodeError with a SchemaError cause", () => {
    const codec = Packet.schema(Port, "msgpack")
    // An empty buffer, an array of 2 with 1 element, a map of 1 without entries, a str8 cut short.
    for (const bad of [[], [0x92, 0x01], [0x81], [0xd9, 0x05, 0x61]]) {
      const error = failure(Codec.decode(codec, new Uint8Array(bad)))
      expect(error._tag).toBe("PacketDecodeError")
      expect(error.cause).toBeInstanceOf(Schema.SchemaError)
      expect(error.length).toBe(bad.length)
      expect(error.message).toContain("msgpack(")
    }
  })

  it("msgpack is MessagePack on the wire", () => {
    const codec = Packet.schema(Schema.Struct({ a: Schema.Int }), "msgpack")
    // A map of 1 (fixmap or map16), then fixstr "a" and positive fixint 1.
    const wire = Array.from(success(Codec.encode(codec, { a: 1 })))
    expect(wire.slice(-3)).toEqual([0xa1, 0x61, 0x01])
    expect([[0x81], [0xde, 0x00, 0x01]]).toContainEqual(wire.slice(0, -3))
    expect(success(Codec.decode(codec, new Uint8Array([0x81, 0xa1, 0x61, 0x07])))).toEqual({ a: 7 })
  })
})

// ---------------------------------------------------------------------------------------------------------------------
// msgpack: standard MessagePack, byte for byte, and read and written by the reference implementation
// ---------------------------------------------------------------------------------------------------------------------

const Golden = Schema.Struct({
  name: Schema.String,
  greeting: Schema.String,
  padding: Schema.String,
  small: Schema.Int,
  negative: Schema.Int,
  large: Schema.Int,
  ratio: Schema.Number,
  ok: Schema.Boolean,
  none: Schema.Null,
  note: Schema.optional(Schema.String),
  tags: Schema.Array(Schema.String),
  inner: Schema.Struct({
    id: Schema.Int,
    list: Schema.Array(Schema.Int),
    empty: Schema.Array(Schema.String),
    deep: Schema.Struct({ on: Schema.Boolean })
  })
})

const golden: typeof Golden.Type = {
  name: "sluice",
  greeting: "héllo ✓",
  padding: "x".repeat(40),
  small: 7,
  negative: -200,
  large: 2 ** 32,
  ratio: 1.5,
  ok: true,
  none: null,
  // note: absent, so not on the wire
  tags: ["a", "bc"],
  inner: { id: 300, list: [0, -1, 127, 128, -33], empty: [], deep: { on: false } }
}

/**
 * `golden` in MessagePack, derived by hand from the spec (https://github.com/msgpack/msgpack/blob/master/spec.md):
 * maps and arrays with the smallest header, keys in field order, each value in the smallest format of its type,
 * except one: msgpackr writes a number that is not a 32-bit integer as a float 64 (`LARGE_FLOAT`), where the
 * smallest format is a uint 64 (`LARGE_UINT`, what @msgpack/msgpack writes). Both are standard and decode to the
 * same number everywhere.
 */
const LARGE_UINT = "cf 00 00 00 01 00 00 00 00" // uint 64 2^32 (uint 32 stops at 2^32 - 1)
const LARGE_FLOAT = "cb 41 f0 00 00 00 00 00 00" // float 64 2^32
const golden_ = (large: string) =>
  [
    "8b", // fixmap, 11 entries ("note" is absent)
    "a4 6e 61 6d 65", // fixstr "name"
    "a6 73 6c 75 69 63 65", // fixstr "sluice"
    "a8 67 72 65 65 74 69 6e 67", // fixstr "greeting"
    "aa 68 c3 a9 6c 6c 6f 20 e2 9c 93", // fixstr of 10 UTF-8 bytes: "h" "é" "llo" " " "✓"
    "a7 70 61 64 64 69 6e 67", // fixstr "padding"
    "d9 28" + " 78".repeat(40), // str 8 of 40 bytes: a fixstr holds at most 31
    "a5 73 6d 61 6c 6c", // fixstr "small"
    "07", // positive fixint 7
    "a8 6e 65 67 61 74 69 76 65", // fixstr "negative"
    "d1 ff 38", // int 16 -200 (int 8 stops at -128)
    "a5 6c 61 72 67 65", // fixstr "large"
    large,
    "a5 72 61 74 69 6f", // fixstr "ratio"
    "cb 3f f8 00 00 00 00 00 00", // float 64 1.5
    "a2 6f 6b", // fixstr "ok"
    "c3", // true
    "a4 6e 6f 6e 65", // fixstr "none"
    "c0", // nil
    "a4 74 61 67 73", // fixstr "tags"
    "92 a1 61 a2 62 63", // fixarray of 2: fixstr "a", fixstr "bc"
    "a5 69 6e 6e 65 72", // fixstr "inner"
    "84", // fixmap, 4 entries
    "a2 69 64", // fixstr "id"
    "cd 01 2c", // uint 16 300
    "a4 6c 69 73 74", // fixstr "list"
    "95 00 ff 7f cc 80 d0 df", // fixarray of 5: 0, negative fixint -1, positive fixint 127, uint 8 128, int 8 -33
    "a5 65 6d 70 74 79", // fixstr "empty"
    "90", // fixarray of 0
    "a4 64 65 65 70", // fixstr "deep"
    "81 a2 6f 6e c2" // fixmap of 1: fixstr "on", false
  ].join(" ")
const GOLDEN = golden_(LARGE_FLOAT)
const GOLDEN_SMALLEST = golden_(LARGE_UINT)

describe("Packet.schema msgpack interoperability", () => {
  const codec = Packet.schema(Golden, "msgpack")

  it("golden bytes: a nested struct is the standard MessagePack derived from the spec, byte for byte", () => {
    expect(hex(success(Codec.encode(codec, golden)))).toBe(GOLDEN)
    const writer = new Bytes.Writer()
    writer.write(text(">"))
    codec.encodeIntoUnsafe!(writer, golden)
    expect(hex(writer.written())).toBe("3e " + GOLDEN)
  })

  it("@msgpack/msgpack, the reference implementation, writes the golden bytes and reads them back", () => {
    // An independent check of the hand derivation above.
    expect(hex(MessagePack.encode(golden))).toBe(GOLDEN_SMALLEST)
    expect(MessagePack.decode(fromHex(GOLDEN))).toEqual(golden)
    expect(MessagePack.decode(fromHex(GOLDEN_SMALLEST))).toEqual(golden)
  })

  it("@msgpack/msgpack reads what sluice writes as the original value", () => {
    const wire = success(Codec.encode(codec, golden))
    expect(MessagePack.decode(wire)).toEqual(golden)
    expect(MessagePack.decode(view(wire))).toEqual(golden)
  })

  it("sluice reads what @msgpack/msgpack writes, and the golden bytes", () => {
    const wire = MessagePack.encode(golden)
    expect(success(Codec.decode(codec, wire))).toEqual(golden)
    expect(success(Codec.decode(codec, view(wire)))).toEqual(golden)
    expect(success(Codec.decode(codec, view(fromHex(GOLDEN))))).toEqual(golden)
    expect(success(Codec.decode(codec, view(fromHex(GOLDEN_SMALLEST))))).toEqual(golden)
  })
})

describe("Packet.utf8", () => {
  it("round trip of any well-formed Unicode text", () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string({ unit: "grapheme" }), fc.string({ unit: "grapheme" }).map((s) => "\uFEFF" + s)),
        (text) => {
          const wire = success(Codec.encode(Packet.utf8, text))
          expect(wire).toEqual(new TextEncoder().encode(text))
          expect(success(Codec.decode(Packet.utf8, wire))).toBe(text)
          expect(success(Codec.decode(Packet.utf8, view(wire)))).toBe(text)
        }
      ),
      NUM_RUNS
    )
  })

  it("keeps a leading U+FEFF (byte order mark): decoding is exact", () => {
    for (const s of ["\uFEFF", "\uFEFFhello", "a\uFEFF"]) {
      const wire = success(Codec.encode(Packet.utf8, s))
      expect(success(Codec.decode(Packet.utf8, wire))).toBe(s)
    }
    expect(success(Codec.decode(Packet.utf8, new Uint8Array([0xef, 0xbb, 0xbf, 0x41])))).toBe("\uFEFFA")
  })

  it("rejects invalid UTF-8 with PacketDecodeError", () => {
    // Invalid bytes, an overlong "/", a lone surrogate, a sequence cut short.
    for (const bad of [[0xff, 0xfe], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0x41, 0xe2, 0x82]]) {
      const error = failure(Codec.decode(Packet.utf8, new Uint8Array(bad)))
      expect(error._tag).toBe("PacketDecodeError")
      expect(error.codec).toBe("utf8")
      expect(error.length).toBe(bad.length)
      expect(error.message).toContain("utf8")
      expect(error.cause).toBeInstanceOf(TypeError)
    }
  })

  it("encodes straight into a writer", () => {
    const writer = new Bytes.Writer({ initialCapacity: 2 })
    writer.write(text(">"))
    Packet.utf8.encodeIntoUnsafe!(writer, "héllo ✓")
    expect(Bytes.toString(writer.written())).toBe(">héllo ✓")
  })
})

describe("Packet.bytes", () => {
  it("hands the frame's bytes through without copying", () => {
    const frame = view(new Uint8Array([1, 2, 3]))
    expect(success(Codec.decode(Packet.bytes, frame))).toBe(frame)
    expect(success(Codec.encode(Packet.bytes, frame))).toBe(frame)
    const writer = new Bytes.Writer()
    Packet.bytes.encodeIntoUnsafe!(writer, frame)
    expect(Array.from(writer.written())).toEqual([1, 2, 3])
  })
})

describe("Packet.make", () => {
  const u32 = Packet.make({
    name: "u32",
    decode: (bytes) => new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0),
    encode: (n: number) => {
      if (!Number.isInteger(n)) throw new TypeError(`not an integer: ${n}`)
      const out = new Uint8Array(4)
      new DataView(out.buffer).setUint32(0, n)
      return out
    }
  })

  it("round trips, reading from the view's offset", () => {
    const wire = success(Codec.encode(u32, 0xdeadbeef))
    expect(Array.from(wire)).toEqual([0xde, 0xad, 0xbe, 0xef])
    expect(success(Codec.decode(u32, view(wire)))).toBe(0xdeadbeef)
  })

  it("a RangeError thrown by decode becomes PacketDecodeError with that cause", () => {
    const error = failure(Codec.decode(u32, view(new Uint8Array([1, 2]))))
    expect(error._tag).toBe("PacketDecodeError")
    expect(error.cause).toBeInstanceOf(RangeError)
    expect(error.codec).toBe("u32")
    expect(error.length).toBe(2)
    expect(error.message).toContain("u32")
    expect(error.message).toContain("2 bytes")
    expect(error.message).toContain((error.cause as RangeError).message)
  })

  it("anything thrown by encode becomes PacketEncodeError with that cause", () => {
    const error = failure(Codec.encode(u32, 1.5))
    expect(error._tag).toBe("PacketEncodeError")
    expect(error.cause).toBeInstanceOf(TypeError)
    expect(error.message).toBe("u32: cannot encode a message: not an integer: 1.5")
    // A non-Error cause is shown as it is.
    const thrower = Packet.make<number>({
      name: "thrower",
      decode: () => {
        throw "no"
      },
      encode: () => new Uint8Array(0)
    })
    expect(failure(Codec.decode(thrower, new Uint8Array(1))).message).toBe(
      "thrower: cannot decode a packet of 1 bytes: no"
    )
  })

  it("the unsafe functions throw the typed errors, which is what the hot path catches", () => {
    expect(() => u32.decodeUnsafe(new Uint8Array(1))).toThrow(/u32: cannot decode a packet of 1 bytes/)
    try {
      u32.decodeUnsafe(new Uint8Array(1))
    } catch (error) {
      expect((error as { _tag: string })._tag).toBe("PacketDecodeError")
    }
  })
})
