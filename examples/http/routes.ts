/**
 * The example's routes, and the router that picks one by path and method.
 *
 * - `GET /`: `hello, world!\n` (the `helloHandler` of Go's net/http example).
 * - `POST /echo`: the request body back, streamed as it arrives: with its `Content-Length` when the
 *   request had one, chunked otherwise.
 * - `POST /sha256`: the SHA-256 of the request body, in hex, computed as the body streams in.
 * - `GET /metrics`: every Effect metric of the process, sluice's among them, in Prometheus' text
 *   format (Effect's own `PrometheusMetrics` formatter).
 *
 * `HEAD` is answered by the `GET` route, without the body. An unknown path is 404, a known path with
 * another method 405 (with `Allow`).
 */
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { PrometheusMetrics } from "effect/observability"
import { createHash } from "node:crypto"
import { Bytes } from "../../src/index.ts"
import type { Route } from "./exchange.ts"
import { type Head, header } from "./framer.ts"
import type { Response } from "./response.ts"

const text = [["Content-Type", "text/plain; charset=utf-8"]] as const

const helloResponse: Response = { status: 200, headers: text, body: Bytes.fromString("hello, world!\n") }

export const hello: Route = () => Effect.succeed(helloResponse)

export const echo: Route = ({ body, head }) =>
  Effect.succeed({
    status: 200,
    headers: [["Content-Type", header(head, "content-type") ?? "application/octet-stream"]],
    body,
    length: head.body.kind === "chunked" ? undefined : head.body.kind === "length" ? head.body.length : 0
  })

export const sha256: Route = ({ body }) =>
  Effect.gen(function* () {
    const hash = createHash("sha256")
    yield* Stream.runForEach(body, (chunk) => Effect.sync(() => void hash.update(chunk)))
    return { status: 200, headers: text, body: `${hash.digest("hex")}\n` }
  })

export const metrics: Route = () =>
  Effect.map(PrometheusMetrics.format(), (body) => ({
    status: 200,
    headers: [["Content-Type", "text/plain; version=0.0.4; charset=utf-8"]],
    body
  }))

/** Routes by path, then by method. */
export type Routes = ReadonlyMap<string, ReadonlyMap<string, Route>>

export const routes: Routes = new Map([
  ["/", new Map([["GET", hello]])],
  ["/echo", new Map([["POST", echo]])],
  ["/sha256", new Map([["POST", sha256]])],
  ["/metrics", new Map([["GET", metrics]])]
])

/** The path of a request-target: origin-form without its query, or absolute-form without its scheme and authority. */
export const pathOf = (target: string): string => {
  let path = target
  if (path.startsWith("http://") || path.startsWith("https://")) {
    const slash = path.indexOf("/", path.indexOf("//") + 2)
    path = slash === -1 ? "/" : path.slice(slash)
  }
  const query = path.indexOf("?")
  return query === -1 ? path : path.slice(0, query)
}

/** The route for a request, or the response that says there is none (404, 405). */
export const find = (table: Routes, head: Head): Route | Response => {
  const methods = table.get(pathOf(head.target))
  if (methods === undefined) return { status: 404, headers: text, body: "404 Not Found\n" }
  const route = methods.get(head.method) ?? (head.method === "HEAD" ? methods.get("GET") : undefined)
  if (route !== undefined) return route
  const allow = [...methods.keys()]
  if (methods.has("GET")) allow.push("HEAD")
  return { status: 405, headers: [...text, ["Allow", allow.join(", ")]], body: "405 Method Not Allowed\n" }
}
