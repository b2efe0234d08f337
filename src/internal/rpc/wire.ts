/**
 * The wire of `sluice/rpc`: effect/rpc's protocol messages (`RpcMessage.FromClientEncoded`,
 * `RpcMessage.FromServerEncoded`) as standard MessagePack, one message per length-prefixed frame.
 *
 * ```text
 * +----------------------+---------------------------------------------+
 * | length (u32, BE)     | MessagePack map: { _tag, requestId, ... }   |
 * +----------------------+---------------------------------------------+
 * ```
 *
 * The holes of a message (a request's payload, a chunk's values, an exit, a defect) are filled by the
 * RPC's own schemas through `codecFor` (`Schema.toCodecJson`: JSON-shaped values, which MessagePack
 * carries as they are). A decoded message is checked for the envelope fields effect/rpc reads before
 * it reaches effect/rpc: a peer that sends anything else gets a typed `PacketDecodeError`.
 */
import * as Schema from "effect/Schema"
import * as SchemaIssue from "effect/SchemaIssue"
import type { CodecFor, Parser } from "effect/rpc/RpcSerialization"
import type { FromClientEncoded, FromServerEncoded } from "effect/rpc/RpcMessage"
import { Packr } from "msgpackr"
import * as Codec from "../../Codec.ts"
import { PacketDecodeError, PacketEncodeError } from "../../Errors.ts"
import * as Frame from "../../Frame.ts"
import type * as Packet from "../../Packet.ts"

/** How RPC holes are encoded: JSON-shaped values (MessagePack carries them as they are). */
export const codecFor: CodecFor = Schema.toCodecJson as CodecFor

/** The framer: a 4-byte big-endian length, then the MessagePack message. */
export const framer = (maxFrameLength: number | undefined): Frame.Framer =>
  Frame.lengthField(maxFrameLength === undefined ? undefined : { maxFrameLength })

/**
 * Standard MessagePack, as `Packet.schema(S, "msgpack")` writes it: maps, not msgpackr's records, so
 * that any MessagePack library reads it; an `undefined` field is left out.
 */
const packr = new Packr(
  {
    useRecords: false,
    mapsAsObjects: true,
    variableMapSize: true,
    skipValues: [undefined],
    encodeUndefinedAsNil: true,
    int64AsType: "auto"
  } as unknown as ConstructorParameters<typeof Packr>[0]
)

const invalid = (message: string, input: unknown): Schema.SchemaError =>
  new Schema.SchemaError(new SchemaIssue.InvalidValue({ message }, input))

const isId = (u: unknown): u is string | number => typeof u === "string" || typeof u === "number"

const isHeaders = (u: unknown): boolean =>
  Array.isArray(u) &&
  u.every((h) => Array.isArray(h) && h.length === 2 && typeof h[0] === "string" && typeof h[1] === "string")

/** What is wrong with a message from a client, or `undefined` when effect/rpc can read it. */
const checkFromClient = (m: unknown): string | undefined => {
  if (typeof m !== "object" || m === null || Array.isArray(m)) return "a message must be a map"
  const message = m as Record<string, unknown>
  switch (message._tag) {
    case "Request":
      if (!isId(message.id)) return "a Request needs an id (string or number)"
      if (typeof message.tag !== "string") return "a Request needs a tag (string)"
      if (message.headers !== undefined && !isHeaders(message.headers)) {
        return "a Request's headers must be [name, value] pairs of strings"
      }
      return undefined
    case "Ack":
    case "Interrupt":
      return isId(message.requestId) ? undefined : `an ${message._tag} needs a requestId (string or number)`
    case "Ping":
    case "Eof":
      return undefined
    default:
      return `unknown message _tag ${JSON.stringify(message._tag)}: expected Request, Ack, Interrupt, Ping or Eof`
  }
}

/** What is wrong with a message from a server, or `undefined` when effect/rpc can read it. */
const checkFromServer = (m: unknown): string | undefined => {
  if (typeof m !== "object" || m === null || Array.isArray(m)) return "a message must be a map"
  const message = m as Record<string, unknown>
  switch (message._tag) {
    case "Chunk":
      if (!isId(message.requestId)) return "a Chunk needs a requestId"
      return Array.isArray(message.values) && message.values.length > 0
        ? undefined
        : "a Chunk needs values (a non-empty array)"
    case "Exit":
      if (!isId(message.requestId)) return "an Exit needs a requestId"
      return typeof message.exit === "object" && message.exit !== null ? undefined : "an Exit needs an exit (a map)"
    case "Defect":
    case "Pong":
      return undefined
    default:
      return `unknown message _tag ${JSON.stringify(message._tag)}: expected Chunk, Exit, Defect or Pong`
  }
}

const unpack = (name: string, bytes: Uint8Array, check: (m: unknown) => string | undefined): unknown => {
  let message: unknown
  try {
    message = packr.unpack(bytes)
  } catch (cause) {
    const detail = `invalid MessagePack: ${cause instanceof Error ? cause.message : String(cause)}`
    throw new PacketDecodeError({ codec: name, cause: invalid(detail, bytes), length: bytes.length })
  }
  const problem = check(message)
  if (problem !== undefined) {
    throw new PacketDecodeError({ codec: name, cause: invalid(problem, message), length: bytes.length })
  }
  return message
}

/** MessagePack of one message; anything msgpackr refuses is a `PacketEncodeError`. */
export const pack = (name: string, message: unknown): Uint8Array => {
  try {
    return packr.pack(message)
  } catch (cause) {
    throw new PacketEncodeError({ codec: name, cause })
  }
}

/** The server's codec: decodes what clients send, encodes what it answers. */
export const serverCodec: Packet.Packet<FromClientEncoded, FromServerEncoded> = Codec.makeUnsafe({
  name: "rpc-msgpack(server)",
  decode: (bytes: Uint8Array) => unpack("rpc-msgpack(server)", bytes, checkFromClient) as FromClientEncoded,
  encode: (message: FromServerEncoded) => pack("rpc-msgpack(server)", message),
  encodeInto: (writer, message) => writer.write(pack("rpc-msgpack(server)", message))
})

/** The client's codec: decodes what servers answer, encodes what it sends. */
export const clientCodec: Packet.Packet<FromServerEncoded, FromClientEncoded> = Codec.makeUnsafe({
  name: "rpc-msgpack(client)",
  decode: (bytes: Uint8Array) => unpack("rpc-msgpack(client)", bytes, checkFromServer) as FromServerEncoded,
  encode: (message: FromClientEncoded) => pack("rpc-msgpack(client)", message),
  encodeInto: (writer, message) => writer.write(pack("rpc-msgpack(client)", message))
})

/**
 * The same wire as an `RpcSerialization` parser (framing included), for effect/rpc's own transports:
 * a stream of bytes in, the messages of every complete frame out; a message out, one frame.
 */
export const makeParser = (maxFrameLength: number | undefined): Parser => {
  const frames = framer(maxFrameLength)
  const decoder = Frame.decoder(frames)
  return {
    decode: (data) => {
      if (typeof data === "string") {
        throw new PacketDecodeError({
          codec: "rpc-msgpack",
          cause: invalid("expected bytes, got text: this serialization is binary", data),
          length: data.length
        })
      }
      decoder.feed(data)
      const messages: Array<unknown> = []
      for (let frame = decoder.next(); frame !== undefined; frame = decoder.next()) {
        messages.push(unpack("rpc-msgpack", frame, checkAny))
      }
      if (decoder.error !== undefined) throw decoder.error
      return messages
    },
    encode: (message) => Frame.encode(frames, pack("rpc-msgpack", message))
  }
}

const checkAny = (m: unknown): string | undefined =>
  checkFromClient(m) === undefined || checkFromServer(m) === undefined
    ? undefined
    : "not an effect/rpc message: expected a map whose _tag is a client or server message"
