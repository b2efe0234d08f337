/**
 * The echo protocol: frames of a 4-byte big-endian length followed by the payload; the server
 * answers each frame with the same bytes. The benchmarks' reference protocol.
 */
import { Frame, Handler, Packet, Pipeline } from "../../src/index.ts"

export const framer: Frame.Framer = Frame.lengthField({ lengthFieldLength: 4 })

export const pipeline = Pipeline.make({
  framer,
  codec: Packet.bytes,
  handler: Handler.sync((payload: Uint8Array) => payload)
})
