import { describe, expect, it } from "@effect/vitest"
import { Result } from "effect"
import fc from "fast-check"
import { Bytes, type Errors, Frame } from "../src/index.ts"

type FrameError = Errors.FrameError

// ---------------------------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------------------------

const hex = (bytes: Uint8Array): string => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ")
const hexAll = (frames: ReadonlyArray<Uint8Array>): Array<string> => frames.map(hex)

const failure = <A, E>(result: Result.Result<A, E>): E =>
  Result.getOrThrowWith(Result.flip(result), (a) => new Error(`expected a failure, got ${String(a).slice(0, 80)}`))

const success = <A, E>(result: Result.Result<A, E>): A =>
  Result.getOrThrowWith(result, (e) => new Error(`expected a success, got ${String(e).slice(0, 200)}`))

/**
 * Copies `bytes` into the middle of a larger buffer filled with `fill` and returns a view of it: a framer that reads
 * outside `[start, end)` or assumes `byteOffset` 0 sees the filler.
 */
const padded = (bytes: Uint8Array, fill: number): Uint8Array => {
  const buf = new Uint8Array(bytes.length + 14).fill(fill)
  buf.set(bytes, 7)
  return buf.subarray(7, 7 + bytes.length)
}

/** Splits bytes into chunks of the given sizes (0 gives an empty chunk), then the rest in one chunk. */
const split = (bytes: Uint8Array, sizes: ReadonlyArray<number>, fill: number): Array<Uint8Array> => {
  const out: Array<Uint8Array> = []
  let at = 0
  for (const size of sizes) {
    const take = Math.min(size, bytes.length - at)
    out.push(padded(bytes.subarray(at, at + take), fill))
    at += take
  }
  if (at < bytes.length) out.push(padded(bytes.subarray(at), fill))
  return out
}

/** One byte per chunk, with an empty chunk before each. */
const bytewise = (bytes: Uint8Array): Array<Uint8Array> => {
  const out: Array<Uint8Array> = []
  for (let i = 0; i < bytes.length; i++) out.push(new Uint8Array(0), bytes.slice(i, i + 1))
  out.push(new Uint8Array(0))
  return out
}

interface Run {
  readonly frames: Array<Uint8Array>
  readonly error: FrameError | undefined
  /** The most bytes the decoder held at any point. */
  readonly maxBuffered: number
  /** What the decoder held when it stopped. */
  readonly buffered: number
}

/** Drives a decoder over chunks like `decodeAll`, watching how much it buffers after every call. */
const drive = (framer: Frame.Framer, chunks: Iterable<Uint8Array>): Run => {
  const decoder = Frame.decoder(framer)
  const frames: Array<Uint8Array> = []
  let maxBuffered = 0
  for (const chunk of chunks) {
    decoder.feed(chunk)
    for (;;) {
      const frame = decoder.next()
      maxBuffered = Math.max(maxBuffered, decoder.buffered)
      if (frame === undefined) break
      frames.push(frame)
    }
    if (decoder.error !== undefined) break
  }
  return { frames, error: decoder.end(), maxBuffered, buffered: decoder.buffered }
}

const concat = (parts: ReadonlyArray<Uint8Array>): Uint8Array => Bytes.concat(parts)
const text = (s: string): Uint8Array => Bytes.fromString(s)

const varintLength = (n: number): number => {
  let length = 1
  for (let v = n; v >= 128; v = Math.floor(v / 128)) length++
  return length
}

/** A reference protobuf varint encoder (unsigned, base 128, least significant group first). */
const protobufVarint = (n: number): Array<number> => {
  const out: Array<number> = []
  let v = n
  while (v >= 128) {
    out.push((v % 128) | 0x80)
    v = Math.floor(v / 128)
  }
  out.push(v)
  return out
}

// ---------------------------------------------------------------------------------------------------------------------
// The framers under test
// ---------------------------------------------------------------------------------------------------------------------

interface FramerCase {
  readonly name: string
  /** The framer with the limit `limit` (`maxFrameLength`, or `maxLength` for delimiters). */
  readonly make: (limit: number) => Frame.Framer
  /** How many bytes of a frame count against the limit. */
  readonly size: (payload: Uint8Array) => number
  /** Maps any bytes to a payload the framer can carry (no delimiter inside, long enough, ...). */
  readonly sanitize: (bytes: Uint8Array) => Uint8Array
  /** What the decoder hands out for a payload whose frame is `wire`. */
  readonly decoded: (payload: Uint8Array, wire: Uint8Array) => Uint8Array
  /** Bytes the decoder may hold beyond the limit (a delimiter not counted in it). */
  readonly slack: number
  /** Filler around chunks, chosen to trap a framer that looks outside its bytes. */
  readonly fill: number
  /** Length-prefixed: an over-limit frame fails on its header, with no more than the header buffered. */
  readonly prefixed: boolean
  /** Whether the framer has a limit that input can exceed. */
  readonly limited: boolean
}

const LIMIT = 200

const lengthCase = (label: string, options: Frame.LengthFieldOptions): FramerCase => {
  const header = (options.lengthFieldOffset ?? 0) + (options.lengthFieldLength ?? 4)
  const min = Math.max(options.lengthAdjustment ?? 0, 0)
  return {
    name: `lengthField(${label})`,
    make: (limit) => Frame.lengthField({ ...options, maxFrameLength: limit }),
    size: (p) => header + p.length,
    sanitize: (p) => (p.length >= min ? p : concat([p, new Uint8Array(min - p.length).fill(0x5a)])),
    decoded: (payload, wire) => (options.keepHeader ? wire : payload),
    slack: 0,
    fill: 0xff,
    prefixed: true,
    limited: true
  }
}

/** Replaces every byte equal to `banned` (and `also`) by `banned ^ 0x20`. */
const without = (banned: number) => (p: Uint8Array): Uint8Array => p.map((b) => (b === banned ? banned ^ 0x20 : b))

/**
 * For a delimiter whose last byte occurs nowhere else in it, a payload without that byte cannot hold the delimiter, nor
 * form it with the delimiter's own first bytes.
 */
const delimiterCase = (label: string, delim: Uint8Array, keepDelimiter: boolean): FramerCase => ({
  name: `delimiter(${label}${keepDelimiter ? ", keepDelimiter" : ""})`,
  make: (limit) => Frame.delimiter({ delimiter: delim, maxLength: limit, maxOutgoingLength: limit, keepDelimiter }),
  size: (p) => p.length,
  sanitize: without(delim[delim.length - 1]!),
  decoded: (payload) => (keepDelimiter ? concat([payload, delim]) : payload),
  slack: delim.length,
  fill: delim[0]!,
  prefixed: false,
  limited: true
})

const LF = 0x0a
const CR = 0x0d

const cases: ReadonlyArray<FramerCase> = [
  lengthCase("1-byte", { lengthFieldLength: 1 }),
  lengthCase("2-byte", { lengthFieldLength: 2 }),
  lengthCase("2-byte little endian", { lengthFieldLength: 2, littleEndian: true }),
  lengthCase("3-byte", { lengthFieldLength: 3 }),
  lengthCase("3-byte little endian", { lengthFieldLength: 3, littleEndian: true }),
  lengthCase("4-byte default", {}),
  lengthCase("4-byte little endian", { littleEndian: true }),
  lengthCase("8-byte", { lengthFieldLength: 8 }),
  lengthCase("8-byte little endian", { lengthFieldLength: 8, littleEndian: true }),
  lengthCase("offset 3, 2-byte", { lengthFieldOffset: 3, lengthFieldLength: 2 }),
  lengthCase("length counts the header: adjustment -4", { lengthAdjustment: -4 }),
  lengthCase("2-byte trailer: adjustment +2", { lengthFieldLength: 2, lengthAdjustment: 2 }),
  lengthCase("keepHeader, offset 1, 2-byte little endian, adjustment -2", {
    lengthFieldOffset: 1,
    lengthFieldLength: 2,
    littleEndian: true,
    lengthAdjustment: -2,
    keepHeader: true
  }),
  {
    name: "varint",
    make: (limit) => Frame.varint({ maxFrameLength: limit }),
    size: (p) => varintLength(p.length) + p.length,
    sanitize: (p) => p,
    decoded: (payload) => payload,
    slack: 0,
    fill: 0x80,
    prefixed: true,
    limited: true
  },
  delimiterCase("single byte 0x00", new Uint8Array([0]), false),
  delimiterCase("\\r\\n", text("\r\n"), false),
  delimiterCase("<->", text("<->"), true),
  {
    name: "lines(LF)",
    make: (limit) => Frame.lines({ maxLength: limit, maxOutgoingLength: limit }),
    size: (p) => p.length,
    // No LF inside, and no CR at the end (the decoder would take it for a CRLF).
    sanitize: (p) => {
      const out = without(LF)(p)
      if (out.length > 0 && out[out.length - 1] === CR) out[out.length - 1] = 0x2e
      return out
    },
    decoded: (payload) => payload,
    slack: 2,
    fill: LF,
    prefixed: false,
    limited: true
  },
  {
    name: "lines(CRLF)",
    make: (limit) => Frame.lines({ maxLength: limit, maxOutgoingLength: limit, ending: "\r\n" }),
    size: (p) => p.length,
    sanitize: without(LF),
    decoded: (payload) => payload,
    slack: 2,
    fill: LF,
    prefixed: false,
    limited: true
  },
  {
    name: "fixed(5)",
    make: () => Frame.fixed(5),
    size: () => 5,
    sanitize: (p) => concat([p, new Uint8Array(5)]).slice(0, 5),
    decoded: (payload) => payload,
    slack: 0,
    fill: 0x00,
    prefixed: false,
    limited: false
  }
]

/** Makes `bytes` a payload of `c` whose frame fits in `limit`. */
const fit = (c: FramerCase, bytes: Uint8Array, limit: number): Uint8Array => {
  let p = c.sanitize(bytes)
  while (c.size(p) > limit) p = c.sanitize(p.subarray(0, p.length - Math.max(1, c.size(p) - limit)))
  return p
}

/** Bytes rich in delimiter and line-ending bytes, so that near-delimiters are common. */
const trickyBytes = fc.array(fc.constantFrom(0x00, LF, CR, 0x3c, 0x2d, 0x3e, 0x41, 0x80, 0xff), {
  maxLength: 40
}).map((a) => Uint8Array.from(a))

const anyBytes = (maxLength: number): fc.Arbitrary<Uint8Array> =>
  fc.oneof(trickyBytes, fc.uint8Array({ maxLength: 16 }), fc.uint8Array({ maxLength }))

const payloadsOf = (c: FramerCase, limit: number, minLength = 0): fc.Arbitrary<Array<Uint8Array>> =>
  fc.array(anyBytes(limit + 20).map((b) => fit(c, b, limit)), { minLength, maxLength: 8 })

const chunkSizes: fc.Arbitrary<Array<number>> = fc.array(
  fc.oneof(
    fc.constant(0),
    fc.constant(1),
    fc.integer({ min: 0, max: 16 }),
    fc.integer({ min: 0, max: 700 })
  ),
  { maxLength: 40 }
)

const NUM_RUNS = { numRuns: 60 }

// ---------------------------------------------------------------------------------------------------------------------
// Properties every framer must hold
// ---------------------------------------------------------------------------------------------------------------------

describe("Frame properties", () => {
  for (const c of cases) {
    describe(c.name, () => {
      const framer = c.make(LIMIT)
      const encodeAll = (payloads: ReadonlyArray<Uint8Array>): Array<Uint8Array> =>
        payloads.map((p) => Frame.encode(framer, p))

      it("round trip: frames encoded one after another decode to their payloads", () => {
        fc.assert(
          fc.property(payloadsOf(c, LIMIT), (payloads) => {
            const wires = encodeAll(payloads)
            const frames = success(Frame.decodeAll(framer, [padded(concat(wires), c.fill)]))
            expect(hexAll(frames)).toEqual(hexAll(payloads.map((p, i) => c.decoded(p, wires[i]!))))
          }),
          NUM_RUNS
        )
      })

      it("any split of the input, with 1-byte and empty chunks, decodes to the same frames", () => {
        fc.assert(
          fc.property(payloadsOf(c, LIMIT), chunkSizes, (payloads, sizes) => {
            const wires = encodeAll(payloads)
            const run = drive(framer, split(concat(wires), sizes, c.fill))
            expect(run.error).toBeUndefined()
            expect(hexAll(run.frames)).toEqual(hexAll(payloads.map((p, i) => c.decoded(p, wires[i]!))))
            expect(run.maxBuffered).toBeLessThanOrEqual(LIMIT + c.slack)
            expect(run.buffered).toBe(0)
          }),
          NUM_RUNS
        )
      })

      it("a partial frame at the end of the input is MalformedFrame Truncated, after the whole frames", () => {
        fc.assert(
          fc.property(
            payloadsOf(c, LIMIT),
            anyBytes(LIMIT).map((b) => fit(c, b.length === 0 ? new Uint8Array([0x41]) : b, LIMIT)),
            fc.nat(),
            chunkSizes,
            (payloads, last, cut, sizes) => {
              const wires = encodeAll(payloads)
              const lastWire = Frame.encode(framer, last)
              // Keep 1 to lastWire.length - 1 bytes of the last frame.
              const kept = 1 + (cut % (lastWire.length - 1))
              const input = concat([...wires, lastWire.subarray(0, kept)])
              const run = drive(framer, split(input, sizes, c.fill))
              expect(hexAll(run.frames)).toEqual(hexAll(payloads.map((p, i) => c.decoded(p, wires[i]!))))
              const error = run.error
              expect(error?._tag).toBe("MalformedFrame")
              if (error?._tag !== "MalformedFrame") return
              expect(error.reason).toBe("Truncated")
              expect(error.offset).toBe(wires.reduce((n, w) => n + w.length, 0))
              expect(error.framer).toBe(framer.name)
              expect(failure(Frame.decodeAll(framer, [input]))).toEqual(error)
            }
          ),
          NUM_RUNS
        )
      })

      if (!c.limited) return

      it("over-limit input fails with FrameTooLarge, buffering no more than the limit", () => {
        fc.assert(
          fc.property(
            payloadsOf(c, LIMIT),
            fc.uint8Array({ minLength: LIMIT + 1, maxLength: LIMIT + 50 }).map(c.sanitize),
            fc.uint8Array({ maxLength: 300 }),
            chunkSizes,
            (before, over, after, sizes) => {
              const wires = encodeAll(before)
              const overWire = Frame.encode(c.make(LIMIT * 10), over)
              const run = drive(framer, split(concat([...wires, overWire, after]), sizes, c.fill))
              expect(hexAll(run.frames)).toEqual(hexAll(before.map((p, i) => c.decoded(p, wires[i]!))))
              const error = run.error
              expect(error?._tag).toBe("FrameTooLarge")
              if (error?._tag !== "FrameTooLarge") return
              expect(error.limit).toBe(LIMIT)
              expect(error.length).toBeGreaterThan(LIMIT)
              expect(error.offset).toBe(wires.reduce((n, w) => n + w.length, 0))
              expect(error.message).toContain(String(LIMIT))
              expect(run.maxBuffered).toBeLessThanOrEqual(LIMIT + c.slack)
              if (c.prefixed) expect(run.buffered).toBeLessThanOrEqual(framer.probe!)
            }
          ),
          NUM_RUNS
        )
      })

      it("the encoder accepts exactly the payloads whose frame fits the limit", () => {
        fc.assert(
          fc.property(
            fc.oneof(
              anyBytes(LIMIT + 30),
              fc.integer({ min: LIMIT - 12, max: LIMIT + 2 }).map((n) => new Uint8Array(n).fill(0x41))
            ).map(c.sanitize),
            (payload) => {
              const result = Frame.encodeResult(framer, payload)
              if (c.size(payload) <= LIMIT) {
                const wire = success(result)
                expect(hexAll(success(Frame.decodeAll(framer, [wire])))).toEqual([hex(c.decoded(payload, wire))])
              } else {
                const error = failure(result)
                expect(error._tag).toBe("FrameTooLarge")
                expect(error._tag === "FrameTooLarge" && error.limit).toBe(LIMIT)
              }
            }
          ),
          NUM_RUNS
        )
      })
    })
  }
})

// ---------------------------------------------------------------------------------------------------------------------
// Scripted reads, one scenario each
// ---------------------------------------------------------------------------------------------------------------------

describe("Frame scripted reads", () => {
  for (const c of cases) {
    it(`${c.name}: read_one_byte_at_a_time with empty chunks between`, () => {
      const framer = c.make(LIMIT)
      const payloads = [text("hello"), new Uint8Array(0), text("a\rb<-c"), new Uint8Array(150).fill(0x61)].map((p) =>
        fit(c, p, LIMIT)
      )
      const wires = payloads.map((p) => Frame.encode(framer, p))
      const run = drive(framer, bytewise(concat(wires)))
      expect(run.error).toBeUndefined()
      expect(hexAll(run.frames)).toEqual(hexAll(payloads.map((p, i) => c.decoded(p, wires[i]!))))
      expect(run.maxBuffered).toBeLessThanOrEqual(LIMIT + c.slack)
    })
  }
})

describe("Frame.lengthField", () => {
  it("read_empty_stream: no input is no frame and no error", () => {
    expect(success(Frame.decodeAll(Frame.lengthField(), []))).toEqual([])
    expect(success(Frame.decodeAll(Frame.lengthField(), [new Uint8Array(0), new Uint8Array(0)]))).toEqual([])
  })

  it("read_incomplete_head: two bytes of a 4-byte header wait, and Truncated at the end", () => {
    const decoder = Frame.decoder(Frame.lengthField())
    decoder.feed(new Uint8Array([0, 0]))
    expect(decoder.next()).toBeUndefined()
    expect(decoder.error).toBeUndefined()
    expect(decoder.buffered).toBe(2)
    expect(decoder.need).toBe(0)
    const error = decoder.end()
    expect(error?._tag === "MalformedFrame" && error.reason).toBe("Truncated")
    expect(error?.message).toContain("header was incomplete")
  })

  it("read_incomplete_payload: once the header is read, need is the whole frame's size", () => {
    const decoder = Frame.decoder(Frame.lengthField())
    decoder.feed(new Uint8Array([0, 0, 0, 9, 1, 2]))
    expect(decoder.next()).toBeUndefined()
    expect(decoder.need).toBe(13)
    expect(decoder.buffered).toBe(6)
    decoder.feed(new Uint8Array([3, 4, 5, 6, 7, 8, 9, 0, 0]))
    expect(hex(decoder.next()!)).toBe("01 02 03 04 05 06 07 08 09")
    expect(decoder.next()).toBeUndefined()
    expect(decoder.buffered).toBe(2)
    expect(decoder.consumed).toBe(13)
    expect(decoder.end()?.message).toContain("ended 2 bytes into a frame")
  })

  it("read_max_frame_len: the header of a 2 GiB frame fails on that very feed, before any body byte", () => {
    const decoder = Frame.decoder(Frame.lengthField())
    decoder.feed(new Uint8Array([0x80, 0, 0, 0]))
    expect(decoder.next()).toBeUndefined()
    const error = decoder.error
    expect(error?._tag).toBe("FrameTooLarge")
    if (error?._tag !== "FrameTooLarge") return
    // The announced length 0x80000000, plus the 4-byte header the limit counts.
    expect(error.length).toBe(0x80000000 + 4)
    expect(error.limit).toBe(16 * 1024 * 1024)
    expect(error.offset).toBe(0)
    expect(error.message).toContain(String(0x80000000 + 4))
    expect(error.message).toContain(String(16 * 1024 * 1024))
    expect(decoder.buffered).toBeLessThanOrEqual(4)
    expect(decoder.end()).toBe(error)
  })

  it("read_max_frame_len split: a 2 GiB header arriving 2 + 2 bytes after a frame fails on the second feed", () => {
    const decoder = Frame.decoder(Frame.lengthField())
    decoder.feed(new Uint8Array([0, 0, 0, 2, 0xaa, 0xbb, 0x80, 0]))
    expect(hex(decoder.next()!)).toBe("aa bb")
    expect(decoder.next()).toBeUndefined()
    expect(decoder.error).toBeUndefined()
    decoder.feed(new Uint8Array([0, 0]))
    expect(decoder.next()).toBeUndefined()
    const error = decoder.error
    expect(error?._tag).toBe("FrameTooLarge")
    expect(error?._tag === "FrameTooLarge" && error.length).toBe(0x80000000 + 4)
    expect(error?.offset).toBe(6)
    expect(error?.message).toContain(String(0x80000000 + 4))
    expect(error?.message).toContain(String(16 * 1024 * 1024))
    expect(decoder.buffered).toBeLessThanOrEqual(4)
    // Nothing more comes out once failed.
    decoder.feed(new Uint8Array([0, 0, 0, 0]))
    expect(decoder.next()).toBeUndefined()
  })

  it("read_max_frame_len at the boundary: maxFrameLength counts the header", () => {
    const framer = Frame.lengthField({ maxFrameLength: 10 })
    expect(hexAll(success(Frame.decodeAll(framer, [new Uint8Array([0, 0, 0, 6, 1, 2, 3, 4, 5, 6])])))).toEqual([
      "01 02 03 04 05 06"
    ])
    const error = failure(Frame.decodeAll(framer, [new Uint8Array([0, 0, 0, 7])]))
    expect(error._tag === "FrameTooLarge" && [error.length, error.limit]).toEqual([11, 10])
  })

  it("a length that lengthAdjustment makes negative is MalformedFrame NegativeLength", () => {
    const framer = Frame.lengthField({ lengthAdjustment: -4 })
    const error = failure(Frame.decodeAll(framer, [new Uint8Array([0, 0, 0, 2, 9, 9])]))
    expect(error._tag).toBe("MalformedFrame")
    expect(error._tag === "MalformedFrame" && error.reason).toBe("NegativeLength")
    expect(error.message).toContain("lengthAdjustment -4")
    // A length of exactly the header is an empty frame.
    expect(success(Frame.decodeAll(framer, [new Uint8Array([0, 0, 0, 4])])).map((f) => f.length)).toEqual([0])
  })

  it("an 8-byte length of 2^53 or more is MalformedFrame LengthOverflow; 2^53 - 1 is FrameTooLarge", () => {
    for (const littleEndian of [false, true]) {
      const framer = Frame.lengthField({ lengthFieldLength: 8, littleEndian })
      const field = (high: number, low: number): Uint8Array => {
        const bytes = new Uint8Array(8)
        const view = new DataView(bytes.buffer)
        view.setUint32(littleEndian ? 4 : 0, high, littleEndian)
        view.setUint32(littleEndian ? 0 : 4, low, littleEndian)
        return bytes
      }
      for (const [high, low] of [[0x200000, 0], [0xffffffff, 0xffffffff]] as const) {
        const error = failure(Frame.decodeAll(framer, [field(high, low)]))
        expect(error._tag === "MalformedFrame" && error.reason).toBe("LengthOverflow")
      }
      const error = failure(Frame.decodeAll(framer, [field(0x1fffff, 0xffffffff)]))
      expect(error._tag === "FrameTooLarge" && error.length).toBe(2 ** 53 - 1 + 8)
      // Both words count: a length of 2^32 + 3 is not 3.
      const big = Frame.lengthField({ lengthFieldLength: 8, littleEndian, maxFrameLength: 2 ** 40 })
      const read = Frame.read(big, concat([field(1, 3), new Uint8Array(3)]))
      expect(read).toEqual({ _tag: "NeedBytes", need: 2 ** 32 + 3 + 8 })
    }
  })

  it("encodes 1, 2, 3, 4 and 8-byte fields big and little endian, with offset bytes zeroed", () => {
    const payload = new Uint8Array(258).fill(7)
    const header = (options: Frame.LengthFieldOptions): string =>
      hex(Frame.encode(Frame.lengthField(options), payload).subarray(0, -258))
    expect(header({ lengthFieldLength: 2 })).toBe("01 02")
    expect(header({ lengthFieldLength: 2, littleEndian: true })).toBe("02 01")
    expect(header({ lengthFieldLength: 3 })).toBe("00 01 02")
    expect(header({ lengthFieldLength: 3, littleEndian: true })).toBe("02 01 00")
    expect(header({})).toBe("00 00 01 02")
    expect(header({ littleEndian: true })).toBe("02 01 00 00")
    expect(header({ lengthFieldLength: 8 })).toBe("00 00 00 00 00 00 01 02")
    expect(header({ lengthFieldLength: 8, littleEndian: true })).toBe("02 01 00 00 00 00 00 00")
    expect(header({ lengthFieldOffset: 2, lengthFieldLength: 2 })).toBe("00 00 01 02")
    expect(header({ lengthAdjustment: -4 })).toBe("00 00 01 06")
    expect(header({ lengthFieldLength: 2, lengthAdjustment: 2 })).toBe("01 00")
    expect(hex(Frame.encode(Frame.lengthField({ lengthFieldLength: 1 }), text("hi")))).toBe("02 68 69")
    // The 3-byte field uses all three bytes.
    const wide = Frame.encode(
      Frame.lengthField({ lengthFieldLength: 3, maxFrameLength: 1 << 20 }),
      new Uint8Array(0x010203)
    )
    expect(hex(wide.subarray(0, 3))).toBe("01 02 03")
    const wideLe = Frame.encode(
      Frame.lengthField({ lengthFieldLength: 3, littleEndian: true, maxFrameLength: 1 << 20 }),
      new Uint8Array(0x010203)
    )
    expect(hex(wideLe.subarray(0, 3))).toBe("03 02 01")
  })

  it("the encoder rejects a payload over maxFrameLength with FrameTooLarge and rewinds the writer", () => {
    const framer = Frame.lengthField({ maxFrameLength: 10 })
    expect(hex(Frame.encode(framer, new Uint8Array(6)))).toBe("00 00 00 06 00 00 00 00 00 00")
    const error = failure(Frame.encodeResult(framer, new Uint8Array(7)))
    expect(error._tag === "FrameTooLarge" && [error.length, error.limit]).toEqual([11, 10])
    expect(() => Frame.encode(framer, new Uint8Array(7))).toThrow(/11 bytes exceeds maxFrameLength 10/)

    const writer = new Bytes.Writer()
    writer.write(text("kept"))
    const mark = framer.begin(writer)
    writer.write(new Uint8Array(7))
    expect(() => framer.end(writer, mark)).toThrow()
    expect(Bytes.toString(writer.written())).toBe("kept")
  })

  it("a 1-byte length field rejects a 256-byte payload and accepts 255", () => {
    const framer = Frame.lengthField({ lengthFieldLength: 1 })
    expect(Frame.encode(framer, new Uint8Array(255))[0]).toBe(255)
    const error = failure(Frame.encodeResult(framer, new Uint8Array(256)))
    expect(error._tag).toBe("FrameTooLarge")
    expect(error._tag === "FrameTooLarge" && error.length).toBe(257)
    // A 2-byte field counting its own header holds at most 65535 - 2 payload bytes.
    const counted = Frame.lengthField({ lengthFieldLength: 2, lengthAdjustment: -2 })
    expect(Result.isSuccess(Frame.encodeResult(counted, new Uint8Array(65533)))).toBe(true)
    const tooLong = failure(Frame.encodeResult(counted, new Uint8Array(65534)))
    expect(tooLong._tag === "FrameTooLarge" && [tooLong.length, tooLong.limit]).toEqual([65536, 65535])
  })

  it("the encoder rejects a payload shorter than a positive lengthAdjustment with NegativeLength", () => {
    const framer = Frame.lengthField({ lengthFieldLength: 2, lengthAdjustment: 2 })
    const error = failure(Frame.encodeResult(framer, new Uint8Array(1)))
    expect(error._tag === "MalformedFrame" && error.reason).toBe("NegativeLength")
  })

  it("invalid options throw RangeError", () => {
    // @ts-expect-error: 5 is not a length field size
    expect(() => Frame.lengthField({ lengthFieldLength: 5 })).toThrow(RangeError)
    expect(() => Frame.lengthField({ lengthFieldOffset: -1 })).toThrow(RangeError)
    expect(() => Frame.lengthField({ lengthAdjustment: 0.5 })).toThrow(RangeError)
    expect(() => Frame.lengthField({ maxFrameLength: 0 })).toThrow(RangeError)
    expect(() => Frame.varint({ maxFrameLength: -1 })).toThrow(RangeError)
    expect(() => Frame.delimiter({ delimiter: "", maxLength: 10 })).toThrow(RangeError)
    expect(() => Frame.lines({ maxLength: 0 })).toThrow(RangeError)
    expect(() => Frame.fixed(0)).toThrow(RangeError)
    expect(() => Frame.datagram({ maxFrameLength: 1.5 })).toThrow(RangeError)
  })
})

describe("Frame.varint", () => {
  it("encodes payloads of 0, 127, 128, 300 and 16384 bytes with protobuf varint lengths", () => {
    const framer = Frame.varint()
    const expected: ReadonlyArray<readonly [number, string]> = [
      [0, "00"],
      [127, "7f"],
      [128, "80 01"],
      [300, "ac 02"],
      [16384, "80 80 01"]
    ]
    for (const [length, header] of expected) {
      expect(hex(new Uint8Array(protobufVarint(length)))).toBe(header)
      const payload = new Uint8Array(length).map((_, i) => i * 7)
      const wire = Frame.encode(framer, payload)
      expect(hex(wire.subarray(0, wire.length - length))).toBe(header)
      expect(hex(wire.subarray(wire.length - length))).toBe(hex(payload))
      expect(hexAll(success(Frame.decodeAll(framer, [wire])))).toEqual([hex(payload)])
    }
  })

  it("headers match the protobuf varint of the payload length", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 70_000 }), (length) => {
        const wire = Frame.encode(Frame.varint(), new Uint8Array(length))
        const header = protobufVarint(length)
        expect(hex(wire.subarray(0, header.length))).toBe(hex(new Uint8Array(header)))
        expect(wire.length).toBe(header.length + length)
      }),
      { numRuns: 40 }
    )
  })

  it("eleven continuation bytes are MalformedFrame VarintTooLong, even one byte at a time", () => {
    const input = new Uint8Array(11).fill(0x80)
    for (const chunks of [[input], bytewise(input)]) {
      const run = drive(Frame.varint(), chunks)
      expect(run.error?._tag === "MalformedFrame" && run.error.reason).toBe("VarintTooLong")
      expect(run.maxBuffered).toBeLessThanOrEqual(10)
    }
  })

  it("a varint announcing more than maxFrameLength is FrameTooLarge on the header", () => {
    const framer = Frame.varint({ maxFrameLength: 100 })
    // 99 + a 1-byte header fits; 100 + 1 does not.
    expect(success(Frame.decodeAll(framer, [concat([new Uint8Array([99]), new Uint8Array(99)])]))[0]!.length).toBe(99)
    const error = failure(Frame.decodeAll(framer, [new Uint8Array([100])]))
    expect(error._tag === "FrameTooLarge" && [error.length, error.limit]).toEqual([101, 100])
    // Against the default 16 MiB, a varint already worth 2^28 - 1 fails before its last byte arrives.
    const decoder = Frame.decoder(Frame.varint())
    for (const byte of [0xff, 0xff, 0xff]) {
      decoder.feed(new Uint8Array([byte]))
      expect(decoder.next()).toBeUndefined()
    }
    expect(decoder.error).toBeUndefined()
    decoder.feed(new Uint8Array([0xff]))
    expect(decoder.next()).toBeUndefined()
    expect(decoder.error?._tag).toBe("FrameTooLarge")
    expect(decoder.buffered).toBeLessThanOrEqual(4)
  })

  it("the encoder counts the varint header against maxFrameLength, so every frame it writes decodes", () => {
    const framer = Frame.varint({ maxFrameLength: 200 })
    // 198 bytes take a 2-byte header: 200 in all.
    const wire = Frame.encode(framer, new Uint8Array(198))
    expect(wire.length).toBe(200)
    expect(success(Frame.decodeAll(framer, [wire]))[0]!.length).toBe(198)
    // 199 bytes would make a 201-byte frame, which the decoder rejects.
    const error = failure(Frame.encodeResult(framer, new Uint8Array(199)))
    expect(error._tag === "FrameTooLarge" && [error.length, error.limit]).toEqual([201, 200])
    // 127 bytes and a 1-byte header fit in 128; 128 bytes take a 2-byte header: 130 > 129.
    expect(Frame.encode(Frame.varint({ maxFrameLength: 128 }), new Uint8Array(127)).length).toBe(128)
    expect(failure(Frame.encodeResult(Frame.varint({ maxFrameLength: 129 }), new Uint8Array(128)))._tag).toBe(
      "FrameTooLarge"
    )
  })
})

describe("Frame.delimiter", () => {
  it("a frame longer than maxLength without a delimiter is FrameTooLarge, holding at most maxLength + delimiter", () => {
    for (const delimiter of ["\n", "\r\n"]) {
      const framer = Frame.delimiter({ delimiter, maxLength: 8 })
      const input = new Uint8Array(40).fill(0x61)
      for (const chunks of [[input], bytewise(input), split(input, [3, 5, 7], 0x0a)]) {
        const run = drive(framer, chunks)
        expect(run.error?._tag).toBe("FrameTooLarge")
        expect(run.error?._tag === "FrameTooLarge" && run.error.limit).toBe(8)
        expect(run.maxBuffered).toBeLessThanOrEqual(8 + delimiter.length)
      }
    }
  })

  it("a frame of exactly maxLength is accepted; one byte more is FrameTooLarge, even with its delimiter", () => {
    const framer = Frame.delimiter({ delimiter: "\r\n", maxLength: 4 })
    expect(hexAll(success(Frame.decodeAll(framer, bytewise(text("abcd\r\n")))))).toEqual([hex(text("abcd"))])
    expect(failure(Frame.decodeAll(framer, [text("abcde\r\n")]))._tag).toBe("FrameTooLarge")
    expect(failure(Frame.decodeAll(framer, bytewise(text("abcde\r\n"))))._tag).toBe("FrameTooLarge")
  })

  it("a multi-byte delimiter split across chunks is found; its first byte alone is payload", () => {
    const framer = Frame.delimiter({ delimiter: "\r\n", maxLength: 64 })
    const frames = success(Frame.decodeAll(framer, [text("a\rb\r"), text("\nc\r"), text("\r\n")]))
    expect(frames.map(Bytes.toString)).toEqual(["a\rb", "c\r"])
  })

  it("a self-overlapping delimiter is found at its first complete occurrence", () => {
    const framer = Frame.delimiter({ delimiter: "aab", maxLength: 64 })
    const frames = success(Frame.decodeAll(framer, bytewise(text("xaaab" + "aab" + "yaaab" + "aaaab"))))
    expect(frames.map(Bytes.toString)).toEqual(["xa", "", "ya", "aa"])
  })

  it("keepDelimiter hands frames out with their delimiter", () => {
    const framer = Frame.delimiter({ delimiter: new Uint8Array([0xff, 0x00]), maxLength: 8, keepDelimiter: true })
    expect(hexAll(success(Frame.decodeAll(framer, [new Uint8Array([1, 0xff, 0xff, 0x00, 2, 0xff, 0x00])])))).toEqual([
      "01 ff ff 00",
      "02 ff 00"
    ])
  })

  it("the encoder appends the delimiter and rejects a payload over maxOutgoingLength", () => {
    const framer = Frame.delimiter({ delimiter: "||", maxLength: 3, maxOutgoingLength: 3, name: "pipes" })
    expect(Bytes.toString(Frame.encode(framer, text("abc")))).toBe("abc||")
    const error = failure(Frame.encodeResult(framer, text("abcd")))
    expect(error._tag === "FrameTooLarge" && [error.framer, error.length, error.limit]).toEqual(["pipes", 4, 3])
  })

  it("the outgoing limit is not the incoming one: what is sent is not the peer's to bound", () => {
    // With one limit for both ways, a reply longer than the longest request could not be sent.
    const framer = Frame.delimiter({ delimiter: "||", maxLength: 3, name: "pipes" })
    expect(Bytes.toString(Frame.encode(framer, text("a longer reply")))).toBe("a longer reply||")
    const decoded = Frame.decodeAll(framer, [text("a longer reply||")])
    expect(Result.isFailure(decoded) && decoded.failure._tag).toBe("FrameTooLarge")
  })

  it("a payload that holds the delimiter is a typed encode error, not extra frames on the other side", () => {
    for (const [delimiter, payload] of [["||", "a||b"], ["\0", "a\0b"], ["<->", "x<->"]] as const) {
      const framer = Frame.delimiter({ delimiter, maxLength: 64 })
      const error = failure(Frame.encodeResult(framer, text(payload)))
      expect(error._tag === "MalformedFrame" && error.reason).toBe("DelimiterInPayload")
    }
    // Parts of the delimiter are fine.
    const framer = Frame.delimiter({ delimiter: "<->", maxLength: 64 })
    expect(Bytes.toString(Frame.encode(framer, text("<- ->")))).toBe("<- -><->")
  })
})

describe("Frame.lines", () => {
  it("decodes LF and CRLF endings alike, whatever the encoder writes", () => {
    const input = text("one\ntwo\r\n\r\nthree\n\n")
    for (const framer of [Frame.lines({ maxLength: 16 }), Frame.lines({ maxLength: 16, ending: "\r\n" })]) {
      for (const chunks of [[input], bytewise(input)]) {
        expect(success(Frame.decodeAll(framer, chunks)).map(Bytes.toString)).toEqual(["one", "two", "", "three", ""])
      }
    }
    expect(Bytes.toString(Frame.encode(Frame.lines({ maxLength: 16 }), text("x")))).toBe("x\n")
    expect(Bytes.toString(Frame.encode(Frame.lines({ maxLength: 16, ending: "\r\n" }), text("x")))).toBe("x\r\n")
  })

  it("a CR at the end of a chunk and the LF in the next make one CRLF; a lone CR is text", () => {
    const framer = Frame.lines({ maxLength: 16 })
    const frames = success(Frame.decodeAll(framer, [text("abc\r"), text("\nd\re\r"), new Uint8Array(0), text("\n")]))
    expect(frames.map(Bytes.toString)).toEqual(["abc", "d\re"])
  })

  it("a line of maxLength with CRLF is accepted; maxLength + 1 is FrameTooLarge", () => {
    const framer = Frame.lines({ maxLength: 4 })
    for (const chunks of [[text("abcd\r\n")], bytewise(text("abcd\r\n"))]) {
      expect(success(Frame.decodeAll(framer, chunks)).map(Bytes.toString)).toEqual(["abcd"])
    }
    for (const input of ["abcde\n", "abcde\r\n", "abcdefgh"]) {
      for (const chunks of [[text(input)], bytewise(text(input))]) {
        const run = drive(framer, chunks)
        expect(run.error?._tag).toBe("FrameTooLarge")
        expect(run.maxBuffered).toBeLessThanOrEqual(4 + 2)
      }
    }
  })

  it("the encoder rejects a line over maxOutgoingLength, which defaults to 16 MiB, not maxLength", () => {
    const error = failure(Frame.encodeResult(Frame.lines({ maxLength: 2, maxOutgoingLength: 2 }), text("abc")))
    expect(error._tag === "FrameTooLarge" && [error.framer, error.length, error.limit]).toEqual(["lines", 3, 2])
    // A chat line of 1020 characters and its nickname, from a server that reads lines of 1024.
    const line = "alice: " + "x".repeat(1020)
    const wire = Frame.encode(Frame.lines({ maxLength: 1024 }), text(line))
    expect(Bytes.toString(wire)).toBe(line + "\n")
  })

  it("a line that holds a LF is a typed encode error; a CR inside is text", () => {
    for (const framer of [Frame.lines({ maxLength: 64 }), Frame.lines({ maxLength: 64, ending: "\r\n" })]) {
      const error = failure(Frame.encodeResult(framer, text("two\nlines")))
      expect(error._tag === "MalformedFrame" && error.reason).toBe("DelimiterInPayload")
      expect(success(Frame.encodeResult(framer, text("a\rb"))).length).toBeGreaterThan(3)
    }
  })
})

describe("Frame.fixed", () => {
  it("encoding a payload of the wrong size is MalformedFrame InvalidLength", () => {
    const framer = Frame.fixed(4)
    expect(hex(Frame.encode(framer, new Uint8Array([1, 2, 3, 4])))).toBe("01 02 03 04")
    for (const size of [0, 3, 5]) {
      const error = failure(Frame.encodeResult(framer, new Uint8Array(size)))
      expect(error._tag === "MalformedFrame" && error.reason).toBe("InvalidLength")
      expect(error.message).toContain(`cannot encode ${size}`)
      expect(() => Frame.encode(framer, new Uint8Array(size))).toThrow(/InvalidLength/)
    }
  })

  it("needs exactly size bytes per frame", () => {
    const framer = Frame.fixed(3)
    expect(Frame.read(framer, new Uint8Array(0))).toEqual({ _tag: "NeedHeader" })
    expect(Frame.read(framer, new Uint8Array(2))).toEqual({ _tag: "NeedBytes", need: 3 })
    const frames = success(Frame.decodeAll(framer, bytewise(new Uint8Array([1, 2, 3, 4, 5, 6]))))
    expect(hexAll(frames)).toEqual(["01 02 03", "04 05 06"])
    const error = failure(Frame.decodeAll(framer, [new Uint8Array([1, 2, 3, 4])]))
    expect(error._tag === "MalformedFrame" && [error.reason, error.offset]).toEqual(["Truncated", 3])
  })
})

describe("Frame.datagram", () => {
  it("each non-empty chunk is one frame, whatever bytes it holds; empty chunks are no frame", () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(trickyBytes, fc.uint8Array({ maxLength: 300 })), {
          maxLength: 10
        }),
        (payloads) => {
          const framer = Frame.datagram()
          const datagrams = payloads.filter((p) => p.length > 0)
          const chunks = payloads.map((p) => padded(Frame.encode(framer, p), 0))
          const run = drive(framer, chunks)
          expect(run.error).toBeUndefined()
          expect(hexAll(run.frames)).toEqual(hexAll(datagrams))
          expect(run.maxBuffered).toBe(0)
        }
      ),
      NUM_RUNS
    )
  })

  it("a datagram over maxFrameLength is FrameTooLarge, and the encoder rejects it", () => {
    expect(Frame.datagram().maxFrameLength).toBe(65507)
    const error = failure(Frame.decodeAll(Frame.datagram(), [new Uint8Array(65507), new Uint8Array(65508)]))
    expect(error._tag === "FrameTooLarge" && [error.length, error.limit, error.offset]).toEqual([65508, 65507, 65507])
    const small = Frame.datagram({ maxFrameLength: 4 })
    expect(hex(Frame.encode(small, new Uint8Array([1, 2, 3, 4])))).toBe("01 02 03 04")
    expect(failure(Frame.encodeResult(small, new Uint8Array(5)))._tag).toBe("FrameTooLarge")
  })
})

// ---------------------------------------------------------------------------------------------------------------------
// Frame.read: the three states, typed
// ---------------------------------------------------------------------------------------------------------------------

describe("Frame.read", () => {
  it("answers NeedHeader, NeedBytes with the whole frame's size, Complete with frame and rest, and Failed", () => {
    const framer = Frame.lengthField({ lengthFieldLength: 2, maxFrameLength: 100 })
    expect(Frame.read(framer, new Uint8Array(0))).toEqual({ _tag: "NeedHeader" })
    expect(Frame.read(framer, new Uint8Array([0]))).toEqual({ _tag: "NeedHeader" })
    expect(Frame.read(framer, new Uint8Array([0, 5]))).toEqual({ _tag: "NeedBytes", need: 7 })
    expect(Frame.read(framer, new Uint8Array([0, 5, 1, 2, 3, 4]))).toEqual({ _tag: "NeedBytes", need: 7 })

    const bytes = new Uint8Array([0, 3, 1, 2, 3, 0, 1, 9])
    const complete = Frame.read(framer, bytes)
    expect(complete._tag).toBe("Complete")
    if (complete._tag !== "Complete") return
    expect(hex(complete.frame)).toBe("01 02 03")
    expect(hex(complete.rest)).toBe("00 01 09")
    expect(complete.frame.buffer).toBe(bytes.buffer)
    expect(complete.rest.buffer).toBe(bytes.buffer)
    expect(Frame.read(framer, complete.rest)).toMatchObject({ _tag: "Complete", rest: new Uint8Array(0) })

    const failed = Frame.read(framer, new Uint8Array([1, 0]))
    expect(failed._tag).toBe("Failed")
    expect(failed._tag === "Failed" && failed.error._tag).toBe("FrameTooLarge")
    expect(failed._tag === "Failed" && failed.error.message).toContain("258 bytes exceeds maxFrameLength 100")
  })

  it("the three states for varint, delimiter and lines", () => {
    const varint = Frame.varint()
    expect(Frame.read(varint, new Uint8Array([0x80]))).toEqual({ _tag: "NeedHeader" })
    expect(Frame.read(varint, new Uint8Array([0x80, 0x01]))).toEqual({ _tag: "NeedBytes", need: 130 })
    expect(Frame.read(varint, new Uint8Array([0x01, 0x07, 0x08]))).toMatchObject({
      _tag: "Complete",
      frame: new Uint8Array([7]),
      rest: new Uint8Array([8])
    })
    const delimiter = Frame.delimiter({ delimiter: "\r\n", maxLength: 5 })
    expect(Frame.read(delimiter, text("ab\r"))).toEqual({ _tag: "NeedHeader" })
    expect(Frame.read(delimiter, text("ab\r\ncd"))).toMatchObject({
      _tag: "Complete",
      frame: text("ab"),
      rest: text("cd")
    })
    expect(Frame.read(delimiter, text("abcdefg"))).toMatchObject({ _tag: "Failed", error: { _tag: "FrameTooLarge" } })
    const lines = Frame.lines({ maxLength: 5 })
    expect(Frame.read(lines, text("ab\r"))).toEqual({ _tag: "NeedHeader" })
    expect(Frame.read(lines, text("ab\r\n\n"))).toMatchObject({ _tag: "Complete", frame: text("ab"), rest: text("\n") })
  })
})

// ---------------------------------------------------------------------------------------------------------------------
// Zero-copy
// ---------------------------------------------------------------------------------------------------------------------

describe("Frame zero-copy", () => {
  for (const c of cases) {
    it(`${c.name}: frames inside one chunk are views of it; frames across chunks are copies`, () => {
      const framer = c.make(LIMIT)
      const [a, b, c1, d] = [text("first"), text("second frame"), text("third"), text("fourth")].map((p) =>
        fit(c, p, LIMIT)
      ) as [Uint8Array, Uint8Array, Uint8Array, Uint8Array]
      const [wa, wb, wc, wd] = [a, b, c1, d].map((p) => Frame.encode(framer, p)) as [
        Uint8Array,
        Uint8Array,
        Uint8Array,
        Uint8Array
      ]
      const half = Math.floor(wb.length / 2)
      const chunk1 = padded(concat([wa, wb.subarray(0, half)]), c.fill)
      const chunk2 = padded(concat([wb.subarray(half), wc, wd]), c.fill)

      const decoder = Frame.decoder(framer)
      const frames: Array<Uint8Array> = []
      for (const chunk of [chunk1, chunk2]) {
        decoder.feed(chunk)
        for (let frame = decoder.next(); frame !== undefined; frame = decoder.next()) frames.push(frame)
      }
      expect(decoder.end()).toBeUndefined()
      const expected = [[a, wa], [b, wb], [c1, wc], [d, wd]].map(([p, w]) => hex(c.decoded(p!, w!)))
      expect(hexAll(frames)).toEqual(expected)
      const [fa, fb, fc, fd] = frames as [Uint8Array, Uint8Array, Uint8Array, Uint8Array]

      // Inside one chunk: a view of it, at the frame's place.
      expect(fa.buffer).toBe(chunk1.buffer)
      expect(fa.byteOffset).toBe(chunk1.byteOffset + (wa.length - c.decoded(a, wa).length) * (c.prefixed ? 1 : 0))
      expect(fc.buffer).toBe(chunk2.buffer)
      expect(fd.buffer).toBe(chunk2.buffer)
      expect(fd.byteOffset + fd.length).toBeLessThanOrEqual(chunk2.byteOffset + chunk2.length)
      // Across chunks: a copy, which outlives the reuse of both read buffers.
      expect(fb.buffer).not.toBe(chunk1.buffer)
      expect(fb.buffer).not.toBe(chunk2.buffer)
      chunk1.fill(0xee)
      chunk2.fill(0xee)
      expect(hex(fb)).toBe(expected[1])
    })
  }

  it("datagram: the frame is the chunk itself", () => {
    const chunk = padded(text("datagram"), 0)
    const frames = success(Frame.decodeAll(Frame.datagram(), [chunk]))
    expect(frames[0]!.buffer).toBe(chunk.buffer)
    expect(frames[0]!.byteOffset).toBe(chunk.byteOffset)
    expect(frames[0]!.length).toBe(chunk.length)
  })

  it("frames assembled across chunks stay intact while later frames are assembled", () => {
    const framer = Frame.lengthField({ lengthFieldLength: 1 })
    const wire = concat([1, 2, 3, 4, 5].map((n) => Frame.encode(framer, new Uint8Array(n * 10).fill(n))))
    const frames = success(Frame.decodeAll(framer, split(wire, [7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7], 0)))
    expect(frames.map((f) => [f.length, f.every((b) => b === f.length / 10)])).toEqual([
      [10, true],
      [20, true],
      [30, true],
      [40, true],
      [50, true]
    ])
  })
})
