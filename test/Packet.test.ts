import { describe, expect, it } from "@effect/vitest"
import { Arbitrary, Either, FastCheck, Schema } from "effect"
import { Bytes, Codec, Frame, Packet } from "../src/index.ts"

const failure = <A, E>(result: Either.Either<A, E>): E =>
  Either.getOrThrowWith(Either.flip(result), (a) => new Error(`expected a failure, got ${String(a).slice(0, 80)}`))

const success = <A, E>(result: Either.Either<A, E>): A =>
  Either.getOrThrowWith(result, (e) => new Error(`expected a success, got ${String(e).slice(0, 300)}`))

const text = (s: string): Uint8Array => Bytes.fromString(s)

/** Copies bytes into the middle of a larger buffer: a view with a non-zero `byteOffset`, as the frame decoder hands out. */
const view = (bytes: Uint8Array): Uint8Array => {
  const buf = new Uint8Array(bytes.length + 13).fill(0xc1)
  buf.set(bytes, 5)
  return buf.subarray(5, 5 + bytes.length)
}

/** Values that survive JSON as they are: no NaN, no -0, dates and optional fields through Schema transformations. */
const Message = Schema.Union(
  Schema.TaggedStruct("Ping", {
    id: Schema.Int,
    text: Schema.String,
    tags: Schema.Array(Schema.String),
    at: Schema.Date,
    reply: Schema.optional(Schema.Boolean)
  }),
  Schema.TaggedStruct("Data", {
    id: Schema.Int,
    values: Schema.Array(Schema.Int),
    // msgpackr reads a "__proto__" key as "__proto_" (prototype pollution guard): leave that key out.
    meta: Schema.NullOr(
      Schema.Record({ key: Schema.String.pipe(Schema.filter((k) => k !== "__proto__")), value: Schema.String })
    ),
    big: Schema.BigInt
  })
)
type Message = typeof Message.Type

const Port = Schema.Struct({ port: Schema.Int.pipe(Schema.between(1, 65535)) })

const NUM_RUNS = { fastCheck: { numRuns: 100 } }

describe("Packet.schema", () => {
  for (const format of ["json", "msgpack"] as const) {
    describe(format, () => {
      const codec = Packet.schema(Message, format)

      it.prop("round trip through the wire format, also from a view with an offset", {
        message: Arbitrary.make(Message)
      }, ({ message }) => {
        const wire = success(Codec.encode(codec, message))
        expect(success(Codec.decode(codec, wire))).toEqual(message)
        expect(success(Codec.decode(codec, view(wire)))).toEqual(message)
      }, NUM_RUNS)

      it.prop("round trip inside a frame, decoded from a stream split anywhere", {
        messages: FastCheck.array(Arbitrary.make(Message), { maxLength: 5 }),
        size: FastCheck.integer({ min: 1, max: 64 })
      }, ({ messages, size }) => {
        const framer = Frame.varint()
        const wire = Bytes.concat(messages.map((m) => Frame.encode(framer, success(Codec.encode(codec, m)))))
        const chunks: Array<Uint8Array> = []
        for (let at = 0; at < wire.length; at += size) chunks.push(wire.slice(at, at + size))
        const frames = success(Frame.decodeAll(framer, chunks))
        expect(frames.map((f) => success(Codec.decode(codec, f)))).toEqual(messages)
      }, { fastCheck: { numRuns: 30 } })

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

      it("a value that fails the schema's filter is PacketEncodeError with the ParseError", () => {
        const ports = Packet.schema(Port, format)
        expect(success(Codec.decode(ports, success(Codec.encode(ports, { port: 8080 }))))).toEqual({ port: 8080 })
        const error = failure(Codec.encode(ports, { port: 0 }))
        expect(error._tag).toBe("PacketEncodeError")
        expect((error.cause as { _tag: string })._tag).toBe("ParseError")
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

      it("bytes that decode but fail the schema are PacketDecodeError with the ParseError", () => {
        const other = Packet.schema(Schema.Struct({ port: Schema.String }), format)
        const wire = success(Codec.encode(other, { port: "http" }))
        const error = failure(Codec.decode(Packet.schema(Port, format), wire))
        expect(error._tag).toBe("PacketDecodeError")
        expect((error.cause as { _tag: string })._tag).toBe("ParseError")
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
    const codec = Packet.schema(Schema.Struct({ at: Schema.Date, n: Schema.NumberFromString }), "json")
    const wire = success(Codec.encode(codec, { at: new Date(0), n: 5 }))
    expect(Bytes.toString(wire)).toBe(`{"at":"1970-01-01T00:00:00.000Z","n":"5"}`)
    const writer = new Bytes.Writer()
    codec.encodeIntoUnsafe!(writer, { at: new Date(0), n: 5 })
    expect(Bytes.toString(writer.written())).toBe(Bytes.toString(wire))
  })

  it("invalid JSON is PacketDecodeError with a ParseError cause", () => {
    const codec = Packet.schema(Port, "json")
    for (const bad of ["{not json", "", `{"port": 1`, "\u0000"]) {
      const error = failure(Codec.decode(codec, text(bad)))
      expect(error._tag).toBe("PacketDecodeError")
      expect((error.cause as { _tag: string })._tag).toBe("ParseError")
      expect(error.message).toContain("json(")
    }
  })

  it("JSON that fails the schema is PacketDecodeError with a ParseError cause", () => {
    const codec = Packet.schema(Port, "json")
    for (const bad of [`{"port":"80"}`, `{"port":0}`, `{}`, `[80]`, `null`]) {
      const error = failure(Codec.decode(codec, text(bad)))
      expect(error._tag).toBe("PacketDecodeError")
      expect((error.cause as { _tag: string })._tag).toBe("ParseError")
      expect(error.length).toBe(bad.length)
    }
  })

  it("invalid MessagePack bytes are PacketDecodeError with a ParseError cause", () => {
    const codec = Packet.schema(Port, "msgpack")
    // An empty buffer, an array of 2 with 1 element, a map of 1 without entries, a str8 cut short.
    for (const bad of [[], [0x92, 0x01], [0x81], [0xd9, 0x05, 0x61]]) {
      const error = failure(Codec.decode(codec, new Uint8Array(bad)))
      expect(error._tag).toBe("PacketDecodeError")
      expect((error.cause as { _tag: string })._tag).toBe("ParseError")
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

describe("Packet.utf8", () => {
  it.prop("round trip of any well-formed Unicode text", {
    text: FastCheck.oneof(
      FastCheck.string({ unit: "grapheme" }),
      FastCheck.string({ unit: "grapheme" }).map((s) => "\uFEFF" + s)
    )
  }, ({ text }) => {
    const wire = success(Codec.encode(Packet.utf8, text))
    expect(wire).toEqual(new TextEncoder().encode(text))
    expect(success(Codec.decode(Packet.utf8, wire))).toBe(text)
    expect(success(Codec.decode(Packet.utf8, view(wire)))).toBe(text)
  }, NUM_RUNS)

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
