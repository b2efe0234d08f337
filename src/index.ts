/**
 * sluice: typed, resource-safe network pipelines on Effect.
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as Bytes from "./Bytes.ts"
/** @since 0.1.0 */
export * as Codec from "./Codec.ts"
/** @since 0.1.0 */
export * as Errors from "./Errors.ts"
/** @since 0.1.0 */
export * as Frame from "./Frame.ts"
/** @since 0.1.0 */
export * as Handler from "./Handler.ts"
/** @since 0.1.0 */
export * as Packet from "./Packet.ts"
/** @since 0.1.0 */
export * as Pipeline from "./Pipeline.ts"
/** @since 0.1.0 */
export * as Server from "./Server.ts"
/** @since 0.1.0 */
export * as Session from "./Session.ts"
/** @since 0.1.0 */
export * as Transport from "./Transport.ts"
/** @since 0.1.0 */
export * as Client from "./Client.ts"
/** @since 0.1.0 */
export * as Metrics from "./Metrics.ts"
