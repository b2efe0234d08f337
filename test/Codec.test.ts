import { describe, expect, it } from "@effect/vitest"
import { Data, Result, Schema } from "effect"
import fc from "fast-check"
import { Bytes, Codec, Packet } from "../src/index.ts"

const failure = <A, E>(result: Result.Result<A, E>): E =>
  Result.getOrThrowWith(Result.flip(result), (a) => new Error(`expected a failure, got ${String(a).slice(0, 80)}`))

const success = <A, E>(result: Result.Result<A, E>): A =>
  Result.getOrThrowWith(result, (e) => new Error(`expected a success, got ${String(e).slice(0, 300)}`))

class ChecksumMismatch extends Data.TaggedError("ChecksumMismatch")<{
  readonly expected: number
  readonly actual: number
}> {}

class EmptyPacket extends Data.TaggedError("EmptyPacket") {}

const sum = (bytes: Uint8Array): number => bytes.reduce((acc, b) => (acc + b) & 0xff, 0)

/** A trailing one-byte checksum (sum of the bytes, mod 256). */
const checksum = Codec.make({
  name: "checksum",
  decode: (bytes: Uint8Array): Result.Result<Uint8Array, ChecksumMismatch | EmptyPacket> => {
    if (bytes.length === 0) return Result.fail(new EmptyPacket())
    const body = bytes.subarray(0, -1)
    const expected = bytes[bytes.length - 1]!
    const actual = sum(body)
    return actual === expected ? Result.succeed(body) : Result.fail(new ChecksumMismatch({ expected, actual }))
  },
  encode: (bytes: Uint8Array): Result.Result<Uint8Array, never> => {
    const out = new Uint8Array(bytes.length + 1)
    out.set(bytes)
    out[bytes.length] = sum(bytes)
    return Result.succeed(out)
  }
})

/** A one-byte XOR "cipher". */
const xor = Codec.make({
  name: "xor",
  decode: (bytes: Uint8Array) => Result.succeed(bytes.map((b) => b ^ 0x5a)),
  encode: (bytes: Uint8Array) => Result.succeed(bytes.map((b) => b ^ 0x5a))
})

const texts = fc.string({ unit: "grapheme", maxLength: 200 })

describe("Codec.make", () => {
  it("decode and encode return Result; the unsafe functions throw the Failure", () => {
    const good = success(Codec.encode(checksum, new Uint8Array([1, 2, 3])))
    expect(Array.from(good)).toEqual([1, 2, 3, 6])
    expect(Array.from(success(Codec.decode(checksum, good)))).toEqual([1, 2, 3])
    const error = failure(Codec.decode(checksum, new Uint8Array([1, 2, 3, 7])))
    expect(error).toEqual(new ChecksumMismatch({ expected: 7, actual: 6 }))
    expect(failure(Codec.decode(checksum, new Uint8Array(0)))._tag).toBe("EmptyPacket")
    expect(() => checksum.decodeUnsafe(new Uint8Array([9, 0]))).toThrow(ChecksumMismatch)
    expect(checksum.name).toBe("checksum")
    expect(checksum[Codec.TypeId]).toBe(Codec.TypeId)
    expect(checksum.encodeIntoUnsafe).toBeUndefined()
  })

  it("an encode Failure is returned by Codec.encode, never thrown", () => {
    const even = Codec.make({
      name: "even",
      decode: (n: number) => Result.succeed(n),
      encode: (n: number) => (n % 2 === 0 ? Result.succeed(n) : Result.fail(`odd: ${n}`))
    })
    expect(Codec.encode(even, 2)).toEqual(Result.succeed(2))
    expect(Codec.encode(even, 3)).toEqual(Result.fail("odd: 3"))
    expect(() => even.encodeUnsafe(3)).toThrow()
  })
})

describe("Codec.compose", () => {
  const composed = checksum.pipe(Codec.compose(Packet.utf8))

  it("a checksum atop utf8 round trips, data-first and data-last alike", () => {
    fc.assert(
      fc.property(texts, (text) => {
        for (const codec of [composed, Codec.compose(checksum, Packet.utf8)]) {
          const wire = success(Codec.encode(codec, text))
          const utf8 = Bytes.fromString(text)
          expect(Array.from(wire)).toEqual([...utf8, sum(utf8)])
          expect(success(Codec.decode(codec, wire))).toBe(text)
        }
      }),
      { numRuns: 100 }
    )
  })

  it("a corrupted byte is the outer codec's ChecksumMismatch", () => {
    fc.assert(
      fc.property(
        texts.filter((t) => t.length > 0),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (text, at, delta) => {
          const wire = success(Codec.encode(composed, text))
          const i = at % wire.length
          wire[i] = (wire[i]! + delta) & 0xff
          const error = failure(Codec.decode(composed, wire))
          expect(error._tag).toBe("ChecksumMismatch")
        }
      ),
      { numRuns: 100 }
    )
  })

  it("decodes outer then inner: a valid checksum over invalid UTF-8 is the inner PacketDecodeError", () => {
    const wire = new Uint8Array([0xff, 0xfe, (0xff + 0xfe) & 0xff])
    const error = failure(Codec.decode(composed, wire))
    expect(error._tag).toBe("PacketDecodeError")
    expect(error._tag === "PacketDecodeError" && error.length).toBe(2)
    expect(failure(Codec.decode(composed, new Uint8Array(0)))._tag).toBe("EmptyPacket")
  })

  it("encodes inner then outer: the XOR applies to the utf8 bytes and their checksum", () => {
    const stack = xor.pipe(Codec.compose(checksum), Codec.compose(Packet.utf8))
    expect(stack.name).toBe("xor/checksum/utf8")
    const wire = success(Codec.encode(stack, "hi"))
    const plain = [0x68, 0x69, (0x68 + 0x69) & 0xff]
    expect(Array.from(wire)).toEqual(plain.map((b) => b ^ 0x5a))
    expect(success(Codec.decode(stack, wire))).toBe("hi")
    // Flipping a byte of the ciphertext is caught by the checksum below the XOR.
    wire[0] = wire[0]! ^ 1
    expect(failure(Codec.decode(stack, wire))._tag).toBe("ChecksumMismatch")
  })

  it("an inner encode failure propagates, and the outer codec is not run", () => {
    const Port = Schema.Struct({ port: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 65535 })) })
    let outerRuns = 0
    const counting = Codec.make({
      name: "counting",
      decode: (bytes: Uint8Array) => Result.succeed(bytes),
      encode: (bytes: Uint8Array) => {
        outerRuns++
        return Result.succeed(bytes)
      }
    })
    const codec = Codec.compose(counting, Packet.schema(Port, "json"))
    expect(failure(Codec.encode(codec, { port: 0 }))._tag).toBe("PacketEncodeError")
    expect(outerRuns).toBe(0)
    expect(Bytes.toString(success(Codec.encode(codec, { port: 80 })))).toBe(`{"port":80}`)
    expect(outerRuns).toBe(1)
  })

  it("encodes straight into a writer when the outer codec can", () => {
    const codec = Codec.compose(Packet.bytes, Packet.utf8)
    expect(codec.name).toBe("bytes/utf8")
    const writer = new Bytes.Writer()
    writer.write(Bytes.fromString("> "))
    codec.encodeIntoUnsafe!(writer, "héllo")
    expect(Bytes.toString(writer.written())).toBe("> héllo")
    expect(composed.encodeIntoUnsafe).toBeUndefined()
  })
})

describe("Codec.duplex", () => {
  const Request = Schema.Struct({ op: Schema.Literal("get"), key: Schema.String })
  const Response = Schema.Struct({ key: Schema.String, value: Schema.Number })
  const server = Codec.duplex({ decode: Packet.schema(Request, "json"), encode: Packet.schema(Response, "json") })
  const client = Codec.duplex({ decode: Packet.schema(Response, "json"), encode: Packet.schema(Request, "json") })

  it("decodes with one codec and encodes with the other", () => {
    const request = success(Codec.encode(client, { op: "get", key: "k" }))
    expect(success(Codec.decode(server, request))).toEqual({ op: "get", key: "k" })
    const response = success(Codec.encode(server, { key: "k", value: 1 }))
    expect(success(Codec.decode(client, response))).toEqual({ key: "k", value: 1 })
    // The server does not decode responses, nor the client requests.
    expect(failure(Codec.decode(server, response))._tag).toBe("PacketDecodeError")
    expect(failure(Codec.decode(client, request))._tag).toBe("PacketDecodeError")
    // Nor does the server encode requests.
    expect(failure(Codec.encode(server, { op: "get", key: "k" } as never))._tag).toBe("PacketEncodeError")
  })

  it("takes encodeInto from the encoding codec and names both sides", () => {
    const a = Codec.duplex({ decode: checksum, encode: Packet.bytes })
    expect(a.name).toBe("checksum|bytes")
    expect(a.encodeIntoUnsafe).toBe(Packet.bytes.encodeIntoUnsafe)
    expect(Array.from(success(Codec.encode(a, new Uint8Array([1, 2]))))).toEqual([1, 2])
    expect(Array.from(success(Codec.decode(a, new Uint8Array([1, 2, 3]))))).toEqual([1, 2])
    const b = Codec.duplex({ decode: Packet.bytes, encode: checksum })
    expect(b.encodeIntoUnsafe).toBeUndefined()
    expect(Array.from(success(Codec.encode(b, new Uint8Array([1, 2]))))).toEqual([1, 2, 3])
    expect(Array.from(success(Codec.decode(b, new Uint8Array([1, 2, 3]))))).toEqual([1, 2, 3])
    expect(Codec.duplex({ decode: Packet.utf8, encode: Packet.utf8 }).name).toBe("utf8")
  })
})

describe("Codec.identity", () => {
  it("passes values through", () => {
    const id = Codec.identity<{ readonly n: number }>()
    const value = { n: 1 }
    expect(success(Codec.decode(id, value))).toBe(value)
    expect(success(Codec.encode(id, value))).toBe(value)
    expect(id.name).toBe("identity")
  })
})
