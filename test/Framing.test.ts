/**
 * Framers for real formats, through the decoder sessions use: framers that keep state per stream and
 * hand a parse result on (RESP arrays, HTTP heads and chunked bodies, from examples/), counted so that
 * nothing is parsed twice; `NeedBytes` as a lower bound; `probe` as a hint; framer defects.
 */
import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import { Bytes, Errors, Frame } from "../src/index.ts"
import { FramerDefect } from "../src/internal/decoder.ts"
import * as Http from "../examples/http/framer.ts"
import * as Resp from "../examples/resp/framer.ts"

// --- helpers -------------------------------------------------------------------------------------

const text = Bytes.fromString
const str = Bytes.toString

/** Splits `input` at the given sizes (cycled); 0 gives an empty chunk. Every byte ends up in a chunk. */
const split = (input: Uint8Array, sizes: ReadonlyArray<number>): Array<Uint8Array> => {
  if (sizes.length > 0 && !sizes.some((size) => size > 0)) throw new Error("split: no size above 0")
  const chunks: Array<Uint8Array> = []
  let at = 0
  for (let i = 0; at < input.length; i++) {
    const size = sizes.length === 0 ? input.length : sizes[i % sizes.length]!
    chunks.push(input.slice(at, at + size))
    at += size
  }
  return chunks
}

const bytewise = (input: Uint8Array): Array<Uint8Array> => split(input, [1])

interface Decoded<A> {
  readonly frames: Array<{ readonly frame: Uint8Array; readonly value: A | undefined }>
  readonly error: Errors.FrameError | undefined
}

/** Drives a decoder over chunks; frames are copied (views are only valid until the next feed). */
const decode = <A>(framer: Frame.Framer<A>, chunks: Iterable<Uint8Array>): Decoded<A> => {
  const decoder = Frame.decoder(framer)
  const frames: Array<{ frame: Uint8Array; value: A | undefined }> = []
  for (const chunk of chunks) {
    decoder.feed(chunk)
    for (let frame = decoder.next(); frame !== undefined; frame = decoder.next()) {
      frames.push({ frame: frame.slice(), value: decoder.value })
    }
    if (decoder.error !== undefined) return { frames, error: decoder.error }
  }
  return { frames, error: decoder.end() }
}

// --- RESP ----------------------------------------------------------------------------------------

const encodeCommand = (args: ReadonlyArray<Uint8Array | string>): Uint8Array => {
  const parts: Array<Uint8Array> = [text(`*${args.length}\r\n`)]
  for (const arg of args) {
    const bytes = typeof arg === "string" ? text(arg) : arg
    parts.push(text(`$${bytes.length}\r\n`), bytes, text("\r\n"))
  }
  return Bytes.concat(parts)
}

/** The arguments of every decoded command, as strings (latin1, so any byte survives). */
const commandsOf = (decoded: Decoded<Resp.Command>): Array<Array<string>> =>
  decoded.frames.map(({ frame, value }) =>
    Resp.argumentsOf(frame, value!).map((arg) => Array.from(arg, (b) => String.fromCharCode(b)).join(""))
  )

const latin1 = (bytes: Uint8Array): string => Array.from(bytes, (b) => String.fromCharCode(b)).join("")

/** A RESP3 value as a test builds it, and as the reply framer's `Node` reads back. */
type Value =
  | { readonly t: "simple" | "error" | "bulk" | "verbatim"; readonly s: string }
  | { readonly t: "integer"; readonly n: number }
  | { readonly t: "boolean"; readonly b: boolean }
  | { readonly t: "null" }
  | { readonly t: "array" | "set" | "push"; readonly items: ReadonlyArray<Value> }
  | { readonly t: "map"; readonly items: ReadonlyArray<Value> }

const encodeValue = (v: Value): string => {
  switch (v.t) {
    case "simple":
      return `+${v.s}\r\n`
    case "error":
      return `-${v.s}\r\n`
    case "bulk":
      return `$${v.s.length}\r\n${v.s}\r\n`
    case "verbatim":
      return `=${v.s.length + 4}\r\ntxt:${v.s}\r\n`
    case "integer":
      return `:${v.n}\r\n`
    case "boolean":
      return `#${v.b ? "t" : "f"}\r\n`
    case "null":
      return "_\r\n"
    case "array":
      return `*${v.items.length}\r\n${v.items.map(encodeValue).join("")}`
    case "set":
      return `~${v.items.length}\r\n${v.items.map(encodeValue).join("")}`
    case "push":
      return `>${v.items.length}\r\n${v.items.map(encodeValue).join("")}`
    case "map":
      return `%${v.items.length / 2}\r\n${v.items.map(encodeValue).join("")}`
  }
}

/** The framer's `Node`, read back into a `Value` with the frame's bytes. */
const valueOf = (frame: Uint8Array, node: Resp.Node): Value => {
  switch (node.type) {
    case "simple":
    case "error":
    case "bulk":
      return { t: node.type, s: latin1(frame.subarray(node.from, node.to)) }
    case "verbatim":
      return { t: "verbatim", s: latin1(frame.subarray(node.from + 4, node.to)) }
    case "integer":
      return { t: "integer", n: node.value }
    case "boolean":
      return { t: "boolean", b: node.value }
    case "null":
      return { t: "null" }
    case "array":
    case "set":
    case "push":
    case "map":
      return { t: node.type, items: node.items.map((item) => valueOf(frame, item)) } as Value
    default:
      throw new Error(`unexpected node ${node.type}`)
  }
}

// Latin1 text without CR or LF for line values; anything for bulk strings.
const lineText = fc.string({
  unit: fc.integer({ min: 32, max: 255 }).map((c) => String.fromCharCode(c)),
  maxLength: 12
})
const anyText = fc.string({ unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)), maxLength: 40 })

const { value: arbValue } = fc.letrec<{ value: Value }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.record({ t: fc.constantFrom("simple" as const, "error" as const), s: lineText }),
    fc.record({ t: fc.constantFrom("bulk" as const, "verbatim" as const), s: anyText }),
    fc.record({ t: fc.constant("integer" as const), n: fc.integer() }),
    fc.record({ t: fc.constant("boolean" as const), b: fc.boolean() }),
    fc.constant({ t: "null" as const }),
    fc.record({
      t: fc.constantFrom("array" as const, "set" as const, "push" as const),
      items: fc.array(tie("value"), { maxLength: 4 })
    }),
    fc.record({
      t: fc.constant("map" as const),
      items: fc.array(fc.tuple(tie("value"), tie("value")), { maxLength: 3 }).map((pairs) => pairs.flat())
    })
  )
}))

const latinBytes = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0))

// Chunk sizes for "any split": empty and 1-byte chunks included.
const sizes = fc.array(fc.integer({ min: 0, max: 64 }), { minLength: 1, maxLength: 12 }).filter((s) =>
  s.some((n) => n > 0)
)

describe("RESP framers (examples/resp/framer.ts): stateful, parse once", () => {
  it("a 10,000-element command fed byte by byte is examined at most ~2x its bytes, and decodes whole", () => {
    const args = Array.from({ length: 10_000 }, (_, i) => `value-${i}`)
    const input = encodeCommand(["RPUSH", "list", ...args])
    const examined: Resp.Examined = { bytes: 0 }
    const decoded = decode(Resp.commands({ examined }), bytewise(input))
    expect(decoded.error).toBeUndefined()
    expect(commandsOf(decoded)).toEqual([["RPUSH", "list", ...args]])
    // A framer that parses the frame again from its start on every read examines O(n^2) bytes here:
    // about 10^11 for these ~150 KB. One that keeps its place examines each header byte once, and
    // of each bulk string only its CRLF.
    expect(examined.bytes).toBeGreaterThan(0)
    expect(examined.bytes).toBeLessThanOrEqual(2 * input.length)
  })

  it("the count tells: the same framer made to re-parse from the frame's start on every read examines far more", () => {
    // A fresh state on every read is what a framer without state does. The count must see it, or the
    // bound above proves nothing. (1,000 elements: re-parsing is quadratic.)
    const input = encodeCommand(["RPUSH", "list", ...Array.from({ length: 1_000 }, (_, i) => `value-${i}`)])
    const examined: Resp.Examined = { bytes: 0 }
    const framer = Resp.commands({ examined })
    const stateless: Frame.Framer<Resp.Command> = {
      ...framer,
      read: (buf, start, end, cursor) => {
        cursor.state = framer.state!()
        return framer.read(buf, start, end, cursor)
      }
    }
    const decoded = decode(stateless, split(input, [16]))
    expect(decoded.error).toBeUndefined()
    expect(commandsOf(decoded)[0]!.length).toBe(1_002)
    expect(examined.bytes).toBeGreaterThan(10 * input.length)
  })

  it("a 10,000-element reply fed byte by byte is examined at most ~2x its bytes", () => {
    const items: Array<Value> = Array.from(
      { length: 10_000 },
      (_, i) =>
        i % 3 === 0
          ? { t: "bulk", s: `element ${i}` }
          : i % 3 === 1
          ? { t: "integer", n: i }
          : { t: "array", items: [{ t: "simple", s: "OK" }] }
    )
    const reply: Value = { t: "array", items }
    const input = text(encodeValue(reply))
    const examined: Resp.Examined = { bytes: 0 }
    const decoded = decode(Resp.replies({ examined }), bytewise(input))
    expect(decoded.error).toBeUndefined()
    expect(decoded.frames.length).toBe(1)
    expect(valueOf(decoded.frames[0]!.frame, decoded.frames[0]!.value!)).toEqual(reply)
    expect(examined.bytes).toBeLessThanOrEqual(2 * input.length)
  })

  it("a bulk string's bytes are asked for with NeedBytes, not scanned", () => {
    // `$1000000` then the data: the framer answers how many bytes it needs, and examines only the
    // header and the closing CRLF, however the megabyte arrives.
    const big = new Uint8Array(1_000_000).fill(0x61)
    const input = encodeCommand(["SET", "k", big])
    const examined: Resp.Examined = { bytes: 0 }
    const decoded = decode(Resp.commands({ examined }), split(input, [1024]))
    expect(decoded.error).toBeUndefined()
    expect(decoded.frames[0]!.frame.length).toBe(input.length)
    expect(examined.bytes).toBeLessThan(100)
    const read = Frame.read(Resp.commands(), input.subarray(0, 40))
    expect(read).toEqual({ _tag: "NeedBytes", need: input.length })
  })

  it("property: any split of pipelined commands (multibulk and inline) gives the same commands", () => {
    const arg = fc.uint8Array({ maxLength: 30 }).map(latin1)
    const word = fc.string({ unit: fc.constantFrom(..."abcdefghijklmnopqrstuvwxyz0123456789:-_"), minLength: 1 })
    const command = fc.oneof(
      fc.array(arg, { minLength: 1, maxLength: 6 }).map((args) => ({
        args,
        wire: encodeCommand(args.map(latinBytes))
      })),
      fc.array(word, { minLength: 1, maxLength: 5 }).map((args) => ({ args, wire: text(`${args.join(" ")}\r\n`) }))
    )
    fc.assert(
      fc.property(fc.array(command, { minLength: 1, maxLength: 8 }), sizes, (commands, cut) => {
        const input = Bytes.concat(commands.map((c) => c.wire))
        const whole = decode(Resp.commands(), [input])
        const pieces = decode(Resp.commands(), split(input, cut))
        expect(whole.error).toBeUndefined()
        expect(pieces.error).toBeUndefined()
        expect(commandsOf(whole)).toEqual(commands.map((c) => c.args))
        expect(commandsOf(pieces)).toEqual(commands.map((c) => c.args))
      }),
      { numRuns: 300 }
    )
  })

  it("property: any split of pipelined RESP3 replies gives the same values", () => {
    fc.assert(
      fc.property(fc.array(arbValue, { minLength: 1, maxLength: 6 }), sizes, (values, cut) => {
        const input = latinBytes(values.map(encodeValue).join(""))
        for (const chunks of [[input], split(input, cut)]) {
          const decoded = decode(Resp.replies(), chunks)
          expect(decoded.error).toBeUndefined()
          expect(decoded.frames.map(({ frame, value }) => valueOf(frame, value!))).toEqual(values)
        }
      }),
      // The example: more empty chunks than bytes (a split that once lost the input's last byte).
      { numRuns: 300, examples: [[[{ t: "verbatim", s: "\0\0\0\0\0" }], [1, 0, 0]]] }
    )
  })

  it("over the limit fails on the header: a bulk length past maxFrameLength, before its bytes arrive", () => {
    const decoder = Frame.decoder(Resp.commands({ maxFrameLength: 1024 }))
    decoder.feed(text("*2\r\n$3\r\nGET\r\n$5000\r\n"))
    expect(decoder.next()).toBeUndefined()
    expect(decoder.error?._tag).toBe("FrameTooLarge")
    expect(decoder.error?.message).toContain("exceeds maxFrameLength 1024")
    // And in any split: the error comes with the header's last byte, never later.
    fc.assert(
      fc.property(sizes, (cut) => {
        const input = text("*2\r\n$3\r\nGET\r\n$5000\r\n")
        const decoded = decode(Resp.commands({ maxFrameLength: 1024 }), split(input, cut))
        expect(decoded.error?._tag).toBe("FrameTooLarge")
      }),
      { numRuns: 100 }
    )
  })

  it("a malformed command is a typed MalformedFrame with Redis's own words", () => {
    const decoded = decode(Resp.commands(), [text("*1\r\n+PING\r\n")])
    expect(decoded.error?._tag).toBe("MalformedFrame")
    expect(decoded.error?._tag === "MalformedFrame" && decoded.error.detail).toBe(
      "Protocol error: expected '$', got '+'"
    )
  })

  it("each decoder has its own state: two streams interleaved byte by byte do not mix", () => {
    const framer = Resp.commands()
    const a = Frame.decoder(framer)
    const b = Frame.decoder(framer)
    const inputA = encodeCommand(["SET", "a", "1"])
    const inputB = encodeCommand(["GET", "bb"])
    const got: Array<string> = []
    for (let i = 0; i < Math.max(inputA.length, inputB.length); i++) {
      if (i < inputA.length) a.feed(inputA.subarray(i, i + 1))
      if (i < inputB.length) b.feed(inputB.subarray(i, i + 1))
      for (let f = a.next(); f !== undefined; f = a.next()) got.push(`a:${Resp.argumentsOf(f, a.value!).map(str)}`)
      for (let f = b.next(); f !== undefined; f = b.next()) got.push(`b:${Resp.argumentsOf(f, b.value!).map(str)}`)
    }
    expect(got.sort()).toEqual(["a:SET,a,1", "b:GET,bb"])
  })
})

// --- HTTP ----------------------------------------------------------------------------------------

interface Req {
  readonly method: string
  readonly target: string
  readonly headers: ReadonlyArray<readonly [string, string]>
  readonly body: { readonly kind: "none" } | { readonly kind: "length" | "chunked"; readonly chunks: Array<string> }
}

const encodeRequest = (req: Req): Uint8Array => {
  // HTTP/1.1 requires exactly one Host.
  const headers: Array<readonly [string, string]> = [["Host", "example.test"], ...req.headers]
  if (req.body.kind === "length") headers.push(["Content-Length", String(req.body.chunks.join("").length)])
  if (req.body.kind === "chunked") headers.push(["Transfer-Encoding", "chunked"])
  const head = `${req.method} ${req.target} HTTP/1.1\r\n${headers.map(([n, v]) => `${n}: ${v}\r\n`).join("")}\r\n`
  const body = req.body.kind === "none"
    ? ""
    : req.body.kind === "length"
    ? req.body.chunks.join("")
    : req.body.chunks.filter((c) => c.length > 0).map((c) => `${c.length.toString(16)}\r\n${c}\r\n`).join("") +
      "0\r\n\r\n"
  return latinBytes(head + body)
}

/** Requests as the codec gives them to a handler: heads, with each body's chunks joined. */
const requestsOf = (decoded: Decoded<Http.Parsed>) => {
  const codec = Http.codec(Http.requests())
  const out: Array<{ method: string; target: string; headers: Array<readonly [string, string]>; body: string }> = []
  for (const { frame, value } of decoded.frames) {
    const request = codec.decodeFrameUnsafe!(frame, value) as Http.Request | undefined
    if (request === undefined) continue
    if (request.kind === "head") {
      out.push({ method: request.method, target: request.target, headers: [...request.headers], body: "" })
    } else out[out.length - 1]!.body += latin1(request.data)
  }
  return out
}

describe("HTTP framer (examples/http/framer.ts): heads, then body chunks as they arrive", () => {
  it("a 1 MB chunked body in 1 KiB reads is examined at most ~2x its bytes, and arrives whole", () => {
    const chunkSizes = [4000, 1, 70_000, 333, 8192]
    const body: Array<string> = []
    let total = 0
    for (let i = 0; total < 1_000_000; i++) {
      const size = Math.min(chunkSizes[i % chunkSizes.length]!, 1_000_000 - total)
      body.push(String.fromCharCode(97 + (i % 26)).repeat(size))
      total += size
    }
    const input = encodeRequest({
      method: "POST",
      target: "/upload",
      headers: [],
      body: { kind: "chunked", chunks: body }
    })
    const examined: Resp.Examined = { bytes: 0 }
    const decoded = decode(Http.requests({ examined }), split(input, [1024]))
    expect(decoded.error).toBeUndefined()
    const requests = requestsOf(decoded)
    expect(requests.length).toBe(1)
    expect(requests[0]!.body.length).toBe(1_000_000)
    expect(requests[0]!.body).toBe(body.join(""))
    // A framer that waited for the whole body, or scanned chunk data for CRLFs, would look at every
    // byte again per read; this one looks at the head, the size lines and the CRLFs after chunks.
    expect(examined.bytes).toBeLessThanOrEqual(2 * input.length)
    // No frame is larger than a read: the body is never gathered.
    expect(Math.max(...decoded.frames.map((f) => f.frame.length))).toBeLessThanOrEqual(1024)
  })

  it("body chunks inside one read are views of it", () => {
    const input = encodeRequest({
      method: "POST",
      target: "/",
      headers: [],
      body: { kind: "length", chunks: ["hello world"] }
    })
    const decoder = Frame.decoder(Http.requests())
    decoder.feed(input)
    const head = decoder.next()!
    expect(head.buffer).toBe(input.buffer)
    const body = decoder.next()!
    expect(str(body)).toBe("hello world")
    expect(body.buffer).toBe(input.buffer)
  })

  it("property: any split of pipelined requests gives the same heads and bodies", () => {
    const token = fc.string({ unit: fc.constantFrom(..."abcdefghijklmnopqrstuvwxyz-"), minLength: 1, maxLength: 8 })
    const headerValue = fc.string({ unit: fc.constantFrom(..."abc xyz/=;,0123456789"), maxLength: 12 }).map((s) =>
      s.trim()
    )
    const bodyText = fc.string({
      unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)),
      maxLength: 50
    })
    const request = fc.record({
      method: fc.constantFrom("GET", "POST", "PUT", "DELETE"),
      target: token.map((t) => `/${t}`),
      headers: fc.array(fc.tuple(token.map((t) => `x-${t}`), headerValue), { maxLength: 4 }),
      body: fc.oneof(
        fc.constant({ kind: "none" as const }),
        fc.record({ kind: fc.constant("length" as const), chunks: fc.array(bodyText, { maxLength: 3 }) }),
        fc.record({ kind: fc.constant("chunked" as const), chunks: fc.array(bodyText, { maxLength: 4 }) })
      )
    })
    fc.assert(
      fc.property(fc.array(request, { minLength: 1, maxLength: 5 }), sizes, (reqs, cut) => {
        const input = Bytes.concat(reqs.map(encodeRequest))
        const expected = reqs.map((r) => ({
          method: r.method,
          target: r.target,
          body: r.body.kind === "none" ? "" : r.body.chunks.join("")
        }))
        for (const chunks of [[input], split(input, cut)]) {
          const decoded = decode(Http.requests(), chunks)
          expect(decoded.error).toBeUndefined()
          expect(requestsOf(decoded).map(({ method, target, body }) => ({ method, target, body }))).toEqual(expected)
        }
      }),
      { numRuns: 300 }
    )
  })

  it("over the limits fails on the header: a Content-Length or a chunk size past maxBodyLength", () => {
    const limits = { maxBodyLength: 1000 }
    const tooLong = decode(Http.requests(limits), [text("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1001\r\n\r\n")])
    expect(tooLong.error?._tag === "FrameTooLarge" && tooLong.error.framer).toBe("http body")
    // The head is not handed on: the request is refused before its body.
    expect(tooLong.frames.length).toBe(0)
    const chunks = decode(Http.requests(limits), [
      text("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n200\r\n"),
      new Uint8Array(0x200).fill(0x61),
      text("\r\n3e9\r\n")
    ])
    expect(chunks.error?._tag === "FrameTooLarge" && chunks.error.framer).toBe("http body")
    const head = decode(
      Http.requests({ maxHeadLength: 100 }),
      bytewise(text(`GET / HTTP/1.1\r\nX: ${"a".repeat(200)}`))
    )
    expect(head.error?._tag === "FrameTooLarge" && head.error.framer).toBe("http head")
  })
})

// --- The decoder's side of the contract -----------------------------------------------------------

/**
 * Netstrings (`5:hello,`): the shortest is `0:,`, so before a colon is seen the framer knows only that
 * at least 3 bytes are needed (a lower bound); past that it needs more header, how much it cannot tell.
 */
const netstrings = (maxFrameLength = 1000): Frame.Framer => ({
  name: "netstring",
  maxFrameLength,
  read(buf, start, end, cursor) {
    const colon = buf.subarray(start, end).indexOf(0x3a)
    if (colon === -1) {
      if (end - start > 10) {
        cursor.error = new Errors.MalformedFrame({
          framer: "netstring",
          reason: "Protocol",
          offset: cursor.offset,
          detail: "no colon in 10 bytes"
        })
        return Frame.Status.Failed
      }
      if (end - start < 3) {
        cursor.need = 3
        return Frame.Status.NeedBytes
      }
      return Frame.Status.NeedHeader
    }
    const length = Number(str(buf.subarray(start, start + colon)))
    const total = colon + 1 + length + 1
    if (total > maxFrameLength) {
      cursor.error = new Errors.FrameTooLarge({
        framer: "netstring",
        length: total,
        limit: maxFrameLength,
        offset: cursor.offset
      })
      return Frame.Status.Failed
    }
    if (end - start < total) {
      cursor.need = total
      return Frame.Status.NeedBytes
    }
    cursor.frameStart = start + colon + 1
    cursor.frameEnd = start + colon + 1 + length
    cursor.next = start + total
    return Frame.Status.Complete
  },
  begin: (writer) => writer.length,
  end: () => {}
})

describe("NeedBytes is a lower bound", () => {
  it("a framer may answer NeedBytes, then NeedHeader, then NeedBytes again, in any split", () => {
    const payloads = ["", "a", "hello world", "x".repeat(120)]
    const input = text(payloads.map((p) => `${p.length}:${p},`).join(""))
    fc.assert(
      fc.property(sizes, (cut) => {
        const decoded = decode(netstrings(), split(input, cut))
        expect(decoded.error).toBeUndefined()
        expect(decoded.frames.map((f) => str(f.frame))).toEqual(payloads)
      }),
      { numRuns: 200 }
    )
    // Byte by byte: "1" asks for at least 3 bytes; "12" still does; "120" has no colon yet: NeedHeader.
    const decoded = decode(netstrings(), bytewise(input))
    expect(decoded.error).toBeUndefined()
    expect(decoded.frames.map((f) => str(f.frame))).toEqual(payloads)
  })

  it("the decoder's errors stay accurate: a frame in progress past the limit is FrameTooLarge with its size", () => {
    // A framer that keeps asking for more (a lower bound each time) never gets more than the limit.
    const greedy: Frame.Framer = {
      name: "greedy",
      maxFrameLength: 100,
      read(_buf, start, end, cursor) {
        cursor.need = end - start + 1
        return Frame.Status.NeedBytes
      },
      begin: (writer) => writer.length,
      end: () => {}
    }
    const decoded = decode(greedy, split(new Uint8Array(1000), [7]))
    expect(decoded.error?._tag).toBe("FrameTooLarge")
    expect(decoded.error?.message).toContain("exceeds maxFrameLength 100")
    expect(decoded.error?.message).not.toContain("probe")
  })

  it("probe is a hint: a framer whose header is longer than its probe still decodes", () => {
    // A 4-byte length with `probe: 1`: the decoder gives the framer more than the probe when it needs it.
    const framer: Frame.Framer = { ...Frame.lengthField({ lengthFieldLength: 4 }), probe: 1 }
    const payloads = ["abc", "", "defgh"]
    const input = Bytes.concat(payloads.map((p) => Frame.encode(Frame.lengthField({ lengthFieldLength: 4 }), text(p))))
    for (const chunks of [[input], bytewise(input), split(input, [3, 5])]) {
      const decoded = decode(framer, chunks)
      expect(decoded.error).toBeUndefined()
      expect(decoded.frames.map((f) => str(f.frame))).toEqual(payloads)
    }
  })
})

describe("a framer that breaks its contract is a FramerDefect, not a peer's error", () => {
  const broken = (read: Frame.Framer["read"]): Frame.Framer => ({
    name: "broken",
    maxFrameLength: 100,
    read,
    begin: (writer) => writer.length,
    end: () => {}
  })
  const cases: Record<string, [Frame.Framer["read"], string]> = {
    "throws": [() => {
      throw new Error("oops")
    }, "read threw: oops"],
    "completes past the bytes it was given": [(_b, start, end, cursor) => {
      cursor.frameStart = start
      cursor.frameEnd = end + 5
      cursor.next = end + 5
      return Frame.Status.Complete
    }, "Complete with frame [0, 9) and next 9 for 4 bytes"],
    "completes without consuming anything": [(_b, start, _end, cursor) => {
      cursor.frameStart = start
      cursor.frameEnd = start
      cursor.next = start
      return Frame.Status.Complete
    }, "Complete with frame [0, 0) and next 0 for 4 bytes"],
    "asks for bytes it already has": [(_b, _start, _end, cursor) => {
      cursor.need = 2
      return Frame.Status.NeedBytes
    }, "NeedBytes 2 with 4 bytes already there"],
    "fails without an error": [() => Frame.Status.Failed, "Failed without an error"],
    "answers an unknown status": [() => 7 as Frame.Status, "an unknown status 7"]
  }
  for (const [name, [read, detail]] of Object.entries(cases)) {
    it(`a framer that ${name}`, () => {
      const decoder = Frame.decoder(broken(read))
      decoder.feed(text("abcd"))
      let thrown: unknown
      try {
        decoder.next()
      } catch (error) {
        thrown = error
      }
      expect(thrown).toBeInstanceOf(FramerDefect)
      expect((thrown as Error).message).toBe(`framer "broken" broke its contract: ${detail}`)
    })
  }
})
