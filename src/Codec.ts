/**
 * A codec is one bidirectional stage: it decodes one way and encodes the other. Codecs stack: a
 * packet codec sits atop the framer, and whatever a user adds (compression, a checksum, an auth
 * envelope) sits between them.
 *
 * `Codec<Wire, Decoded, Encoded>` decodes `Wire` into `Decoded` and encodes `Encoded` into `Wire`.
 * The two message types differ when the two directions carry different messages (a server decodes
 * requests and encodes responses); `duplex` joins two codecs that way.
 *
 * @since 0.1.0
 */
import * as Result from "effect/Result"
import { dual } from "effect/Function"
import { type Pipeable, pipeArguments } from "effect/Pipeable"
import type * as Bytes from "./Bytes.ts"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("sluice/Codec")

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * A bidirectional stage. Its functions are synchronous and, for speed on the hot path, report
 * failure by throwing their typed error (`DE` for decode, `EE` for encode) and nothing else; use
 * `decode` / `encode` of this module to get a `Result` instead.
 *
 * @since 0.1.0
 * @category models
 */
export interface Codec<in out Wire, out Decoded, in Encoded = Decoded, out DE = never, out EE = never>
  extends Pipeable {
  readonly [TypeId]: TypeId
  readonly name: string
  /** Decodes, throwing `DE` on failure. */
  readonly decodeUnsafe: (wire: Wire) => Decoded
  /** Encodes, throwing `EE` on failure. */
  readonly encodeUnsafe: (value: Encoded) => Wire
  /**
   * Encodes straight into a writer (only for byte codecs), throwing `EE` on failure; saves a copy on
   * the hot path. Absent when the codec has no better way than `encodeUnsafe`.
   */
  readonly encodeIntoUnsafe: ((writer: Bytes.Writer, value: Encoded) => void) | undefined
  /**
   * Decodes a frame with what its framer already parsed of it (`Framer<A>`'s `cursor.value`), so
   * that a nested format is parsed once (only for byte codecs next to a framer that parses). Absent
   * when the codec decodes from the bytes alone.
   */
  readonly decodeFrameUnsafe?: ((frame: Wire, parsed: unknown) => Decoded) | undefined
}

/**
 * @since 0.1.0
 */
export declare namespace Codec {
  /**
   * Any codec.
   *
   * @since 0.1.0
   */
  // deno-lint-ignore no-explicit-any
  export type Any = Codec<any, any, any, any, any>
  /**
   * A codec whose wire side is bytes.
   *
   * @since 0.1.0
   */
  export type Bytes<Decoded, Encoded = Decoded, DE = never, EE = never> = Codec<Uint8Array, Decoded, Encoded, DE, EE>
}

const Proto = {
  [TypeId]: TypeId,
  pipe() {
    return pipeArguments(this, arguments)
  }
}

/**
 * Builds a codec from throwing functions. The functions must throw only their typed errors.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeUnsafe = <Wire, Decoded, Encoded = Decoded, DE = never, EE = never>(options: {
  readonly name: string
  readonly decode: (wire: Wire) => Decoded
  readonly encode: (value: Encoded) => Wire
  readonly encodeInto?: ((writer: Bytes.Writer, value: Encoded) => void) | undefined
  readonly decodeFrame?: ((frame: Wire, parsed: unknown) => Decoded) | undefined
}): Codec<Wire, Decoded, Encoded, DE, EE> => {
  const codec = Object.create(Proto)
  codec.name = options.name
  codec.decodeUnsafe = options.decode
  codec.encodeUnsafe = options.encode
  codec.encodeIntoUnsafe = options.encodeInto
  codec.decodeFrameUnsafe = options.decodeFrame
  return codec
}

/**
 * Builds a codec from functions that return a `Result`.
 *
 * @example
 * ```ts
 * import { Codec } from "sluice"
 * import { Result } from "effect"
 *
 * // A one-byte XOR "cipher" between the framer and the packet codec.
 * const xor = Codec.make<Uint8Array, Uint8Array>({
 *   name: "xor",
 *   decode: (bytes: Uint8Array) => Result.succeed(bytes.map((b) => b ^ 0x5a)),
 *   encode: (bytes: Uint8Array) => Result.succeed(bytes.map((b) => b ^ 0x5a))
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <Wire, Decoded, Encoded = Decoded, DE = never, EE = never>(options: {
  readonly name: string
  readonly decode: (wire: Wire) => Result.Result<Decoded, DE>
  readonly encode: (value: Encoded) => Result.Result<Wire, EE>
}): Codec<Wire, Decoded, Encoded, DE, EE> =>
  makeUnsafe({
    name: options.name,
    decode: (wire) => {
      const result = options.decode(wire)
      if (Result.isFailure(result)) throw result.failure
      return result.success
    },
    encode: (value) => {
      const result = options.encode(value)
      if (Result.isFailure(result)) throw result.failure
      return result.success
    }
  })

/**
 * Decodes one value.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decode = <Wire, Decoded, Encoded, DE, EE>(
  codec: Codec<Wire, Decoded, Encoded, DE, EE>,
  wire: Wire
): Result.Result<Decoded, DE> => {
  try {
    return Result.succeed(codec.decodeUnsafe(wire))
  } catch (error) {
    return Result.fail(error as DE)
  }
}

/**
 * Encodes one value.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encode = <Wire, Decoded, Encoded, DE, EE>(
  codec: Codec<Wire, Decoded, Encoded, DE, EE>,
  value: Encoded
): Result.Result<Wire, EE> => {
  try {
    return Result.succeed(codec.encodeUnsafe(value))
  } catch (error) {
    return Result.fail(error as EE)
  }
}

/**
 * Stacks `inner` atop `outer`: decoding runs `outer` then `inner`; encoding runs `inner` then
 * `outer`. `outer` carries the same type both ways (bytes to bytes, typically).
 *
 * @example
 * ```ts
 * import { Codec, Packet } from "sluice"
 * import { Schema } from "effect"
 *
 * declare const checksum: Codec.Codec<Uint8Array, Uint8Array>
 * const codec = checksum.pipe(Codec.compose(Packet.schema(Schema.String, "json")))
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const compose: {
  <Mid, Decoded, Encoded, DE2, EE2>(
    inner: Codec<Mid, Decoded, Encoded, DE2, EE2>
  ): <Wire, DE1, EE1>(outer: Codec<Wire, Mid, Mid, DE1, EE1>) => Codec<Wire, Decoded, Encoded, DE1 | DE2, EE1 | EE2>
  <Wire, Mid, DE1, EE1, Decoded, Encoded, DE2, EE2>(
    outer: Codec<Wire, Mid, Mid, DE1, EE1>,
    inner: Codec<Mid, Decoded, Encoded, DE2, EE2>
  ): Codec<Wire, Decoded, Encoded, DE1 | DE2, EE1 | EE2>
} = dual(2, <Wire, Mid, DE1, EE1, Decoded, Encoded, DE2, EE2>(
  outer: Codec<Wire, Mid, Mid, DE1, EE1>,
  inner: Codec<Mid, Decoded, Encoded, DE2, EE2>
): Codec<Wire, Decoded, Encoded, DE1 | DE2, EE1 | EE2> => {
  const outerInto = outer.encodeIntoUnsafe
  return makeUnsafe({
    name: `${outer.name}/${inner.name}`,
    decode: (wire) => inner.decodeUnsafe(outer.decodeUnsafe(wire)),
    encode: (value) => outer.encodeUnsafe(inner.encodeUnsafe(value)),
    encodeInto: outerInto === undefined ? undefined : (writer, value) => outerInto(writer, inner.encodeUnsafe(value))
  })
})

/**
 * Joins the decoding side of one codec and the encoding side of another: a server decodes requests
 * and encodes responses; a client the other way round.
 *
 * @since 0.1.0
 * @category combinators
 */
export const duplex = <Wire, Decoded, Encoded, DE, EE>(options: {
  // deno-lint-ignore no-explicit-any
  readonly decode: Codec<Wire, Decoded, any, DE, any>
  // deno-lint-ignore no-explicit-any
  readonly encode: Codec<Wire, any, Encoded, any, EE>
}): Codec<Wire, Decoded, Encoded, DE, EE> =>
  makeUnsafe({
    name: options.decode.name === options.encode.name
      ? options.decode.name
      : `${options.decode.name}|${options.encode.name}`,
    decode: options.decode.decodeUnsafe,
    encode: options.encode.encodeUnsafe,
    encodeInto: options.encode.encodeIntoUnsafe,
    decodeFrame: options.decode.decodeFrameUnsafe
  })

/**
 * The codec that passes values through unchanged.
 *
 * @since 0.1.0
 * @category constructors
 */
export const identity = <A>(): Codec<A, A, A> =>
  makeUnsafe({ name: "identity", decode: (a: A) => a, encode: (a: A) => a })
