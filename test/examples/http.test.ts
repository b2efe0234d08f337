/**
 * The HTTP/1.1 example (examples/http) in-process, over real sockets on 127.0.0.1, driven by fetch,
 * undici and raw sockets (for what well-behaved clients never send): routes, keep-alive, pipelining,
 * HTTP/1.0, HEAD, `Date`, chunked bodies both ways, metrics.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import { Buffer } from "node:buffer"
import { Readable } from "node:stream"
// The package itself: Bun resolves the bare "undici" to a built-in stand-in of its own.
import { Client } from "undici/index.js"
import { Bytes } from "../../src/index.ts"
import type { Route } from "../../examples/http/exchange.ts"
import { routes } from "../../examples/http/routes.ts"
import { peer } from "../util/peer.ts"
import { within } from "../util/wait.ts"
import { awaitResponses, parseResponses, pattern, server } from "./http-util.ts"

const hello = "hello, world!\n"
const IMF_FIXDATE =
  /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT$/

const get = (path: string, extra = "") => `GET ${path} HTTP/1.1\r\nHost: test\r\n${extra}\r\n`
const post = (path: string, body: string, extra = "") =>
  `POST ${path} HTTP/1.1\r\nHost: test\r\nContent-Length: ${Bytes.fromString(body).length}\r\n${extra}\r\n${body}`

/** A route that answers after `millis`, with its query: replies that finish out of order. */
const slow: Route = ({ head }) =>
  Effect.as(Effect.sleep("100 millis"), { status: 200, body: `slow ${head.target.split("?")[1] ?? ""}` })

const withSlow = new Map([...routes, ["/slow", new Map([["GET", slow]])]])

/** Reads the responses to `methods` from a raw peer, once it has them all. */
const responses = (p: { readonly received: () => Uint8Array }, methods: ReadonlyArray<string>) =>
  parseResponses(p.received(), methods).responses

describe("HTTP example", () => {
  it.live("GET / answers hello, world! with Date, Content-Type and Content-Length", () =>
    Effect.gen(function* () {
      const s = yield* server()
      const response = yield* Effect.promise(() => fetch(`http://127.0.0.1:${s.port}/`))
      expect(response.status).toBe(200)
      expect(yield* Effect.promise(() => response.text())).toBe(hello)
      expect(response.headers.get("content-type")).toBe("text/plain; charset=utf-8")
      expect(response.headers.get("content-length")).toBe("14")
      const date = response.headers.get("date")!
      expect(date).toMatch(IMF_FIXDATE)
      // The server's clock, not a constant: within a day of the test's.
      expect(Math.abs(Date.parse(date) - Date.now())).toBeLessThan(24 * 3600 * 1000)
    }))

  it.live("unknown paths are 404; a known path with another method is 405 with Allow", () =>
    Effect.gen(function* () {
      const s = yield* server()
      const base = `http://127.0.0.1:${s.port}`
      const missing = yield* Effect.promise(() => fetch(`${base}/missing`))
      expect(missing.status).toBe(404)
      yield* Effect.promise(() => missing.text())
      const postRoot = yield* Effect.promise(() => fetch(`${base}/`, { method: "POST", body: "x" }))
      expect(postRoot.status).toBe(405)
      expect(postRoot.headers.get("allow")).toBe("GET, HEAD")
      yield* Effect.promise(() => postRoot.text())
      const getEcho = yield* Effect.promise(() => fetch(`${base}/echo`))
      expect(getEcho.status).toBe(405)
      expect(getEcho.headers.get("allow")).toBe("POST")
      yield* Effect.promise(() => getEcho.text())
    }))

  it.live("HEAD answers with the GET's headers and no body", () =>
    Effect.gen(function* () {
      const s = yield* server()
      const p = yield* peer(s.port)
      // HEAD then GET in one write: a HEAD answered with a body would be read as the GET's response.
      p.write(`HEAD / HTTP/1.1\r\nHost: test\r\n\r\n${get("/")}`)
      const [head, body] = yield* awaitResponses(p, 2, ["HEAD", "GET"])
      expect(head!.status).toBe(200)
      expect(head!.headers.get("content-length")).toBe("14")
      expect(head!.headers.get("content-type")).toBe("text/plain; charset=utf-8")
      expect(head!.headers.get("date")).toMatch(IMF_FIXDATE)
      expect(body!.status).toBe(200)
      expect(Bytes.toString(body!.body)).toBe(hello)
      expect(parseResponses(p.received(), ["HEAD", "GET"]).rest.length).toBe(0)
    }))

  it.live("keep-alive: an undici Client's requests share one connection", () =>
    Effect.gen(function* () {
      const s = yield* server()
      const client = new Client(`http://127.0.0.1:${s.port}`)
      yield* Effect.addFinalizer(() => Effect.promise(() => client.close()))
      for (let i = 0; i < 5; i++) {
        const response = yield* Effect.promise(() => client.request({ path: "/", method: "GET" }))
        expect(response.statusCode).toBe(200)
        expect(yield* Effect.promise(() => response.body.text())).toBe(hello)
      }
      // A server that closed after each response would have accepted five connections.
      expect(s.accepted).toBe(1)
    }))

  it.live("pipelining: responses in request order, though the first one finishes last", () =>
    Effect.gen(function* () {
      const s = yield* server({ routes: withSlow })
      const p = yield* peer(s.port)
      // Four requests in one write; a server that answered each as it finished would put /slow last.
      p.write(get("/slow?1") + get("/") + post("/echo", "xyz") + get("/missing"))
      yield* awaitResponses(p, 4)
      const got = responses(p, [])
      expect(got.map((r) => r.status)).toEqual([200, 200, 200, 404])
      expect(got.slice(0, 3).map((r) => Bytes.toString(r.body))).toEqual(["slow 1", hello, "xyz"])
      expect(s.accepted).toBe(1)
    }))

  it.live("pipelining with undici: ten requests in flight on one connection each get their own response", () =>
    Effect.gen(function* () {
      const s = yield* server({ routes: withSlow })
      const client = new Client(`http://127.0.0.1:${s.port}`, { pipelining: 10 })
      yield* Effect.addFinalizer(() => Effect.promise(() => client.close()))
      const results = yield* Effect.forEach(
        Array.from({ length: 10 }, (_, i) => i),
        (i) =>
          Effect.promise(async () => {
            const response = i % 2 === 0
              ? await client.request({ path: `/slow?${i}`, method: "GET" })
              : await client.request({ path: "/echo", method: "POST", body: `body ${i}` })
            return { i, status: response.statusCode, text: await response.body.text() }
          }),
        { concurrency: "unbounded" }
      )
      for (const { i, status, text } of results) {
        expect(status).toBe(200)
        expect(text).toBe(i % 2 === 0 ? `slow ${i}` : `body ${i}`)
      }
      expect(s.accepted).toBe(1)
    }))

  it.live("HTTP/1.0 closes after the response by default, and keeps the connection on keep-alive", () =>
    Effect.gen(function* () {
      const s = yield* server()
      const plain = yield* peer(s.port)
      plain.write("GET / HTTP/1.0\r\n\r\n")
      yield* within("the server closes", () => plain.ended)
      const [one] = responses(plain, ["GET"])
      expect(one!.status).toBe(200)
      expect(one!.headers.get("connection")).toBe("close")
      expect(Bytes.toString(one!.body)).toBe(hello)

      const kept = yield* peer(s.port)
      kept.write("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
      yield* awaitResponses(kept, 1)
      expect(responses(kept, [])[0]!.headers.get("connection")).toBe("keep-alive")
      // Still open: a second request on the same socket is answered.
      kept.write("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
      yield* awaitResponses(kept, 2)
      expect(responses(kept, []).map((r) => Bytes.toString(r.body))).toEqual([hello, hello])
    }))

  it.live("Connection: close: that response says so, then the connection closes; later requests are not answered", () =>
    Effect.gen(function* () {
      const s = yield* server({ routes: withSlow })
      // A route that answers at once, and one that answers after a while (its handler goes on in a fiber).
      for (const [path, body] of [["/", hello], ["/slow?2", "slow 2"]]) {
        const p = yield* peer(s.port)
        p.write(get(path!, "Connection: close\r\n") + get("/"))
        yield* within("the server closes", () => p.ended)
        const got = responses(p, [])
        expect(got.length).toBe(1)
        expect(got[0]!.headers.get("connection")).toBe("close")
        expect(Bytes.toString(got[0]!.body)).toBe(body)
      }
    }))

  it.live("POST /echo: a chunked request is echoed chunked, a Content-Length one with its length", () =>
    Effect.gen(function* () {
      const s = yield* server()
      const client = new Client(`http://127.0.0.1:${s.port}`)
      yield* Effect.addFinalizer(() => Effect.promise(() => client.close()))
      const pieces = [pattern(1000, 1), pattern(70_000, 2), pattern(3, 3)]
      // A stream body of unknown length: undici sends it chunked.
      const chunked = yield* Effect.promise(() =>
        client.request({
          path: "/echo",
          method: "POST",
          body: Readable.from(pieces.map((piece) => Buffer.from(piece)))
        })
      )
      expect(chunked.headers["transfer-encoding"]).toBe("chunked")
      const echoed = new Uint8Array(yield* Effect.promise(() => chunked.body.arrayBuffer()))
      expect(echoed).toEqual(Bytes.concat(pieces))

      const body = pattern(200_000, 4)
      const sized = yield* Effect.promise(() => client.request({ path: "/echo", method: "POST", body }))
      expect(sized.headers["content-length"]).toBe(String(body.length))
      expect(sized.headers["transfer-encoding"]).toBeUndefined()
      expect(new Uint8Array(yield* Effect.promise(() => sized.body.arrayBuffer()))).toEqual(body)
      expect(s.accepted).toBe(1)
    }))

  it.live("chunk extensions and trailers are read and dropped", () =>
    Effect.gen(function* () {
      const s = yield* server()
      const p = yield* peer(s.port)
      p.write(
        "POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n" +
          "5;name=value\r\nhello\r\n1 \r\n,\r\n6\r\n world\r\n0\r\nX-Checksum: 1\r\n\r\n" + get("/")
      )
      yield* awaitResponses(p, 2)
      const [echo, next] = responses(p, [])
      expect(echo!.chunked).toBe(true)
      expect(Bytes.toString(echo!.body)).toBe("hello, world")
      expect(Bytes.toString(next!.body)).toBe(hello)
    }))

  it.live("POST /sha256 hashes the body as it streams in", () =>
    Effect.gen(function* () {
      const s = yield* server()
      const body = Bytes.fromString("abc")
      const response = yield* Effect.promise(() => fetch(`http://127.0.0.1:${s.port}/sha256`, { method: "POST", body }))
      // SHA-256("abc"), FIPS 180-2's first example.
      expect(yield* Effect.promise(() => response.text())).toBe(
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n"
      )
    }))

  it.live("a streamed response body is chunked for HTTP/1.1 and ends with the connection for HTTP/1.0", () =>
    Effect.gen(function* () {
      const numbers: Route = () =>
        Effect.succeed({ status: 200, body: Stream.map(Stream.range(1, 3), (n) => Bytes.fromString(`${n}\n`)) })
      const s = yield* server({ routes: new Map([["/numbers", new Map([["GET", numbers]])]]) })
      const p11 = yield* peer(s.port)
      p11.write(get("/numbers"))
      yield* awaitResponses(p11, 1)
      const [chunked] = responses(p11, [])
      expect(chunked!.chunked).toBe(true)
      expect(Bytes.toString(chunked!.body)).toBe("1\n2\n3\n")

      const p10 = yield* peer(s.port)
      p10.write("GET /numbers HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
      yield* within("the server closes", () => p10.ended)
      const [whole] = responses(p10, [])
      expect(whole!.chunked).toBe(false)
      expect(whole!.headers.has("content-length")).toBe(false)
      expect(whole!.headers.get("connection")).toBe("close")
      expect(Bytes.toString(whole!.body)).toBe("1\n2\n3\n")
    }))

  it.live("GET /metrics serves the process's metrics in Prometheus text, counters named *_total", () =>
    Effect.gen(function* () {
      const s = yield* server()
      const base = `http://127.0.0.1:${s.port}`
      yield* Effect.promise(() => fetch(`${base}/`).then((r) => r.text()))
      const response = yield* Effect.promise(() => fetch(`${base}/metrics`))
      expect(response.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8")
      const text = yield* Effect.promise(() => response.text())
      const types = new Map(
        [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!] as const)
      )
      // sluice's own metrics are there, with their Prometheus names.
      expect(types.get("sluice_connections_total")).toBe("counter")
      expect(types.get("sluice_connections_open")).toBe("gauge")
      expect(types.get("sluice_received_bytes_total")).toBe("counter")
      expect(types.get("sluice_sent_bytes_total")).toBe("counter")
      for (const [name, type] of types) {
        if (type === "counter") expect(name).toMatch(/_total$/)
        else expect(name).not.toMatch(/_total$/)
      }
      const open = /^sluice_connections_open (\d+)$/m.exec(text)
      expect(Number(open![1])).toBeGreaterThanOrEqual(1)
    }))

  it.live("a route that dies gets 500 and a close, with or without a body; a broken stream just closes", () =>
    Effect.gen(function* () {
      const boom: Route = () => Effect.die(new Error("boom"))
      const broken: Route = () =>
        Effect.succeed({
          status: 200,
          body: Stream.concat(Stream.make(Bytes.fromString("partial")), Stream.die(new Error("broken")))
        })
      const s = yield* server({
        routes: new Map([...routes, ["/boom", new Map([["GET", boom], ["POST", boom]])], [
          "/broken",
          new Map([["GET", broken]])
        ]])
      })
      for (const request of [get("/boom"), post("/boom", "body")]) {
        const p = yield* peer(s.port)
        // The request after it is not answered: the connection closes after the 500.
        p.write(request + get("/"))
        yield* within("the server closes", () => p.ended)
        const got = responses(p, [])
        expect(got.map((r) => r.status)).toEqual([500])
        expect(got[0]!.headers.get("connection")).toBe("close")
      }
      const p = yield* peer(s.port)
      p.write(get("/broken") + get("/"))
      yield* within("the server closes", () => p.ended)
      // The head and the first chunk went out; the last chunk never does, and nothing follows.
      const text = Bytes.toString(p.received())
      expect(text).toMatch(/^HTTP\/1\.1 200 OK\r\n/)
      expect(text.endsWith("7\r\npartial\r\n")).toBe(true)
      expect(parseResponses(p.received()).responses.length).toBe(0)
    }))

  it.live("duplicate Content-Length values that agree are one length", () =>
    Effect.gen(function* () {
      const s = yield* server()
      const p = yield* peer(s.port)
      p.write("POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 3\r\nContent-Length: 3, 3\r\n\r\nabc" + get("/"))
      yield* awaitResponses(p, 2)
      expect(responses(p, []).map((r) => Bytes.toString(r.body))).toEqual(["abc", hello])
    }))
})
