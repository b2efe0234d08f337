/**
 * Effect `Metric`s of every server and client: connections, bytes, frames, and why sessions ended.
 * Any Effect metrics exporter sees them.
 *
 * They cost nothing per read: byte and frame counts are added by the sweeper that checks
 * time-outs (about once a second, and when a session ends), connection counts at accept and close.
 *
 * Their names follow Prometheus' conventions, so that Effect's `PrometheusMetrics.format()`
 * (`effect/observability`) gives text that `promtool check metrics` accepts: counters end in
 * `_total`, and a unit (`bytes`) comes before it.
 *
 * @since 0.1.0
 */
import * as Metric from "effect/Metric"

/**
 * Sessions open now.
 *
 * @since 0.1.0
 * @category metrics
 */
export const connectionsOpen: Metric.Gauge<number> = Metric.gauge("sluice_connections_open", {
  description: "sessions open now"
})

/**
 * Sessions started since the process started.
 *
 * @since 0.1.0
 * @category metrics
 */
export const connectionsTotal: Metric.Counter<number> = Metric.counter("sluice_connections_total", {
  description: "sessions started",
  incremental: true
})

/**
 * Connections closed at once because a server's `maxConnections` were open.
 *
 * @since 0.1.0
 * @category metrics
 */
export const connectionsRejected: Metric.Counter<number> = Metric.counter("sluice_connections_rejected_total", {
  description: "connections refused over maxConnections",
  incremental: true
})

/**
 * Bytes read from peers.
 *
 * @since 0.1.0
 * @category metrics
 */
export const bytesIn: Metric.Counter<number> = Metric.counter("sluice_received_bytes_total", {
  description: "bytes read",
  incremental: true
})

/**
 * Bytes written (or queued) to peers.
 *
 * @since 0.1.0
 * @category metrics
 */
export const bytesOut: Metric.Counter<number> = Metric.counter("sluice_sent_bytes_total", {
  description: "bytes written",
  incremental: true
})

/**
 * Frames decoded.
 *
 * @since 0.1.0
 * @category metrics
 */
export const framesIn: Metric.Counter<number> = Metric.counter("sluice_frames_decoded_total", {
  description: "frames decoded",
  incremental: true
})

/**
 * Sessions ended, by reason: the `CloseReason` tag, or the error's tag for `Failed`
 * (`IdleTimeout`, `FrameTooLarge`, ...), as the frequency's key (the label `key` in Effect's
 * Prometheus format: `sluice_sessions_ended_total{key="PeerClosed"} 3`).
 *
 * @since 0.1.0
 * @category metrics
 */
export const sessionsEnded: Metric.Frequency = Metric.frequency("sluice_sessions_ended_total", {
  description: "sessions ended, by reason"
})
