/**
 * The typed errors of every stage of a sluice pipeline.
 *
 * Each error says what happened and what to do about it, with the numbers a person needs to act
 * (limits, offsets, lengths). Errors that end a connection carry the connection's identity when a
 * session attaches it.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import type { SchemaError } from "effect/Schema"

const FrameTooLargeBase: ReturnType<typeof Data.TaggedError<"FrameTooLarge">> = Data.TaggedError("FrameTooLarge")
const MalformedFrameBase: ReturnType<typeof Data.TaggedError<"MalformedFrame">> = Data.TaggedError("MalformedFrame")
const FrameTimeoutBase: ReturnType<typeof Data.TaggedError<"FrameTimeout">> = Data.TaggedError("FrameTimeout")
const PacketDecodeErrorBase: ReturnType<typeof Data.TaggedError<"PacketDecodeError">> = Data.TaggedError(
  "PacketDecodeError"
)
const PacketEncodeErrorBase: ReturnType<typeof Data.TaggedError<"PacketEncodeError">> = Data.TaggedError(
  "PacketEncodeError"
)
const HandlerErrorBase: ReturnType<typeof Data.TaggedError<"HandlerError">> = Data.TaggedError("HandlerError")
const HandlerTimeoutBase: ReturnType<typeof Data.TaggedError<"HandlerTimeout">> = Data.TaggedError("HandlerTimeout")
const IdleTimeoutBase: ReturnType<typeof Data.TaggedError<"IdleTimeout">> = Data.TaggedError("IdleTimeout")
const WriteTimeoutBase: ReturnType<typeof Data.TaggedError<"WriteTimeout">> = Data.TaggedError("WriteTimeout")
const OutboundOverflowBase: ReturnType<typeof Data.TaggedError<"OutboundOverflow">> = Data.TaggedError(
  "OutboundOverflow"
)
const ConnectionClosedBase: ReturnType<typeof Data.TaggedError<"ConnectionClosed">> = Data.TaggedError(
  "ConnectionClosed"
)
const TransportErrorBase: ReturnType<typeof Data.TaggedError<"TransportError">> = Data.TaggedError("TransportError")
const ConnectTimeoutBase: ReturnType<typeof Data.TaggedError<"ConnectTimeout">> = Data.TaggedError("ConnectTimeout")
const RequestTimeoutBase: ReturnType<typeof Data.TaggedError<"RequestTimeout">> = Data.TaggedError("RequestTimeout")
const DuplicateRequestIdBase: ReturnType<typeof Data.TaggedError<"DuplicateRequestId">> = Data.TaggedError(
  "DuplicateRequestId"
)

/**
 * A frame announced (or accumulated) more bytes than the framer's `maxFrameLength`.
 * Raised on the header, before any body byte is buffered.
 *
 * @since 0.1.0
 * @category errors
 */
export class FrameTooLarge extends FrameTooLargeBase<{
  /** The framer that raised it, e.g. `"lengthField"`. */
  readonly framer: string
  /** The frame length that was announced or reached, header included. */
  readonly length: number
  /** The configured `maxFrameLength`. */
  readonly limit: number
  /** Bytes of the stream consumed before the offending frame started. */
  readonly offset: number
}> {
  override get message(): string {
    return `${this.framer}: a frame of ${this.length} bytes exceeds maxFrameLength ${this.limit} ` +
      `(stream offset ${this.offset}); raise maxFrameLength if the peer is trusted, otherwise the connection is closed`
  }
}

/**
 * Why a byte stream could not be split into frames.
 *
 * @since 0.1.0
 * @category errors
 */
export type MalformedReason =
  | "Truncated"
  | "NegativeLength"
  | "LengthOverflow"
  | "HeaderTooShort"
  | "VarintTooLong"
  | "InvalidLength"
  | "DelimiterInPayload"
  | "Protocol"

/**
 * The bytes cannot be framed: the stream can no longer be trusted and the connection that sent them
 * is closed. `"Truncated"` means the input ended inside a frame.
 *
 * @since 0.1.0
 * @category errors
 */
export class MalformedFrame extends MalformedFrameBase<{
  readonly framer: string
  readonly reason: MalformedReason
  /** Bytes of the stream consumed before the offending frame started. */
  readonly offset: number
  /** What was found, in words. */
  readonly detail: string
}> {
  override get message(): string {
    return `${this.framer}: malformed frame (${this.reason}) at stream offset ${this.offset}: ${this.detail}`
  }
}

/**
 * The errors a framer can raise.
 *
 * @since 0.1.0
 * @category errors
 */
export type FrameError = FrameTooLarge | MalformedFrame | FrameTimeout

/**
 * A frame (or a head) took longer than the session's `frameTimeout` from its first byte to its last:
 * a peer that sends a request a byte at a time (slowloris) keeps the idle time-out happy, not this
 * one. Like every frame error it ends the connection, after the pipeline's last reply (HTTP 408).
 *
 * @since 0.1.0
 * @category errors
 */
export class FrameTimeout extends FrameTimeoutBase<{
  readonly framer: string
  readonly timeoutMillis: number
  /** Bytes of the frame received when the time ran out. */
  readonly received: number
  /** Bytes of the stream consumed before the frame started. */
  readonly offset: number
}> {
  override get message(): string {
    return `${this.framer}: a frame was not complete ${this.timeoutMillis} ms after its first byte ` +
      `(${this.received} bytes received, stream offset ${this.offset}; frameTimeout); closed`
  }
}

/**
 * A frame's bytes could not be decoded into a packet. `cause` is the underlying failure: a Schema
 * `SchemaError` for `Packet.schema`, or whatever a hand-written codec reported.
 *
 * @since 0.1.0
 * @category errors
 */
export class PacketDecodeError extends PacketDecodeErrorBase<{
  readonly codec: string
  readonly cause: SchemaError | unknown
  /** The frame's length in bytes. */
  readonly length: number
}> {
  override get message(): string {
    const cause = this.cause
    const detail = cause !== null && typeof cause === "object" && "message" in cause
      ? String(cause.message)
      : String(cause)
    return `${this.codec}: cannot decode a packet of ${this.length} bytes: ${detail}`
  }
}

/**
 * A message could not be encoded for the wire.
 *
 * @since 0.1.0
 * @category errors
 */
export class PacketEncodeError extends PacketEncodeErrorBase<{
  readonly codec: string
  readonly cause: SchemaError | unknown
}> {
  override get message(): string {
    const cause = this.cause
    const detail = cause !== null && typeof cause === "object" && "message" in cause
      ? String(cause.message)
      : String(cause)
    return `${this.codec}: cannot encode a message: ${detail}`
  }
}

/**
 * A handler threw (sync handlers) or died (Effect handlers). A handler's own typed error is never
 * wrapped: it stays in the pipeline's error union as it is.
 *
 * @since 0.1.0
 * @category errors
 */
export class HandlerError extends HandlerErrorBase<{
  readonly cause: unknown
}> {
  override get message(): string {
    const cause = this.cause
    return `handler failed: ${cause instanceof Error ? cause.message : String(cause)}`
  }
}

/**
 * A handler did not finish within the session's `handlerTimeout`.
 *
 * @since 0.1.0
 * @category errors
 */
export class HandlerTimeout extends HandlerTimeoutBase<{
  readonly timeoutMillis: number
}> {
  override get message(): string {
    return `handler did not finish within ${this.timeoutMillis} ms (handlerTimeout)`
  }
}

/**
 * A connection received no bytes for `timeoutMillis` (the session's `readIdleTimeout`).
 *
 * @since 0.1.0
 * @category errors
 */
export class IdleTimeout extends IdleTimeoutBase<{
  readonly sessionId: string
  readonly remoteAddress: string
  readonly timeoutMillis: number
}> {
  override get message(): string {
    return `session ${this.sessionId} (${this.remoteAddress}): no bytes received for ${this.timeoutMillis} ms ` +
      `(readIdleTimeout); closed`
  }
}

/**
 * Bytes queued for a connection could not be written within `timeoutMillis`: the peer does not
 * read (the session's `writeTimeout`).
 *
 * @since 0.1.0
 * @category errors
 */
export class WriteTimeout extends WriteTimeoutBase<{
  readonly sessionId: string
  readonly remoteAddress: string
  readonly timeoutMillis: number
  /** Bytes still queued when the time ran out. */
  readonly queuedBytes: number
}> {
  override get message(): string {
    return `session ${this.sessionId} (${this.remoteAddress}): ${this.queuedBytes} queued bytes not written within ` +
      `${this.timeoutMillis} ms (writeTimeout): the peer is not reading; closed`
  }
}

/**
 * A message could not be queued because the connection's outbound bytes are already over
 * `maxOutboundBytes` (the last message that got in may take them past it).
 *
 * @since 0.1.0
 * @category errors
 */
export class OutboundOverflow extends OutboundOverflowBase<{
  readonly sessionId: string
  readonly remoteAddress: string
  readonly queuedBytes: number
  readonly limit: number
}> {
  override get message(): string {
    return `session ${this.sessionId} (${this.remoteAddress}): ${this.queuedBytes} bytes already queued, ` +
      `maxOutboundBytes is ${this.limit}; the message was not sent`
  }
}

/**
 * The connection is closed (or closed while a call was in flight). `reason` says why in words;
 * `cause`, when the connection ended with an error, is that error: the frame or packet error, the
 * time-out, the transport's failure.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConnectionClosed extends ConnectionClosedBase<{
  readonly remoteAddress: string
  readonly reason: string
  readonly cause?: unknown
}> {
  override get message(): string {
    const cause = this.cause
    const detail = cause === undefined
      ? ""
      : `: ${cause instanceof Error ? cause.message : typeof cause === "string" ? cause : String(cause)}`
    return `connection to ${this.remoteAddress} closed: ${this.reason}${detail}`
  }
}

/**
 * The transport failed: listen, connect, TLS handshake, or a socket error such as a reset.
 *
 * @since 0.1.0
 * @category errors
 */
export class TransportError extends TransportErrorBase<{
  readonly operation: "listen" | "connect" | "handshake" | "read" | "write" | "close"
  readonly address: string
  readonly cause: unknown
}> {
  override get message(): string {
    const cause = this.cause
    const detail = cause instanceof Error ? cause.message : String(cause)
    return `${this.operation} ${this.address} failed: ${detail}`
  }
}

/**
 * Connecting took longer than the `connectTimeout`.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConnectTimeout extends ConnectTimeoutBase<{
  readonly address: string
  readonly timeoutMillis: number
}> {
  override get message(): string {
    return `connect to ${this.address} did not complete within ${this.timeoutMillis} ms (connectTimeout)`
  }
}

/**
 * A request got no reply within its timeout.
 *
 * @since 0.1.0
 * @category errors
 */
export class RequestTimeout extends RequestTimeoutBase<{
  readonly address: string
  readonly timeoutMillis: number
}> {
  override get message(): string {
    return `request to ${this.address} got no reply within ${this.timeoutMillis} ms`
  }
}

/**
 * A request carried an id that a call still waiting for its reply already uses: the request was not
 * sent, and the earlier call goes on.
 *
 * @since 0.1.0
 * @category errors
 */
export class DuplicateRequestId extends DuplicateRequestIdBase<{
  readonly address: string
  readonly id: unknown
}> {
  override get message(): string {
    return `request to ${this.address}: id ${String(this.id)} is already in flight; the request was not sent`
  }
}

/**
 * What sending a message to a peer can fail with: the session has ended, its outbound bytes are over
 * `maxOutboundBytes`, or the message cannot be encoded.
 *
 * @since 0.1.0
 * @category errors
 */
export type SendError = ConnectionClosed | OutboundOverflow | PacketEncodeError | FrameError
