/**
 * The HTTP example (examples/http/server.ts) as a process on Bun, Deno and Node, against peers
 * nobody here wrote: curl (keep-alive reuse, chunked and plain uploads, Expect: 100-continue, HEAD,
 * HTTP/1.0), wrk (50 connections, zero errors), and promtool (the /metrics text is valid).
 */
import { describe, expect, it } from "@effect/vitest"
import * as childProcess from "node:child_process"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { type ExampleProcess, runtimes, startExample } from "../util/example.ts"
import { require } from "../util/peers.ts"

const hello = "hello, world!\n"

const run = (program: string, args: ReadonlyArray<string>, input?: Uint8Array) => {
  const result = childProcess.spawnSync(program, args, { input, timeout: 60_000, maxBuffer: 64 * 1024 * 1024 })
  if (result.error !== undefined) throw result.error
  return { status: result.status, stdout: Buffer.from(result.stdout), stderr: result.stderr.toString() }
}

/** curl with a hard time limit: a server that stalls fails the call instead of hanging the test. */
const curl = (args: ReadonlyArray<string>) =>
  run(require("curl"), ["--silent", "--show-error", "--max-time", "20", ...args])

const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex")

/** 200 KB of bytes that are not all alike, in a temporary file for curl's `--data-binary @file`. */
const upload = (() => {
  const bytes = new Uint8Array(200 * 1024)
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 2654435761) >>> 24
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "sluice-http-")), "body.bin")
  fs.writeFileSync(file, bytes)
  return { bytes, file }
})()

const withServer = async (runtime: (typeof runtimes)[number], f: (server: ExampleProcess) => void): Promise<void> => {
  const server = await startExample(runtime, "examples/http/server.ts")
  try {
    f(server)
  } finally {
    expect(await server.stop()).toBe(0)
  }
}

describe("the HTTP example under curl, wrk and promtool", () => {
  for (const runtime of runtimes) {
    describe(runtime, () => {
      it("curl reuses one connection for two URLs in one command", () =>
        withServer(runtime, (server) => {
          const url = `http://127.0.0.1:${server.port}/`
          const result = curl(["--verbose", url, url])
          expect(result.status).toBe(0)
          expect(result.stdout.toString()).toBe(hello + hello)
          expect(result.stderr).toMatch(/Re-using existing connection/)
        }))

      it("curl uploads 200 KB to POST /echo chunked and plain, and gets it back", () =>
        withServer(runtime, (server) => {
          const url = `http://127.0.0.1:${server.port}/echo`
          const chunked = curl([
            "--verbose",
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
            `@${upload.file}`,
            url
          ])
          expect(chunked.status).toBe(0)
          expect(chunked.stderr).toMatch(/> Transfer-Encoding: chunked/)
          expect(chunked.stderr).toMatch(/< Transfer-Encoding: chunked/)
          expect(sha256(chunked.stdout)).toBe(sha256(upload.bytes))
          const plain = curl(["--verbose", "--data-binary", `@${upload.file}`, url])
          expect(plain.status).toBe(0)
          expect(plain.stderr).toMatch(new RegExp(`< Content-Length: ${upload.bytes.length}`, "i"))
          expect(sha256(plain.stdout)).toBe(sha256(upload.bytes))
        }))

      it("curl's Expect: 100-continue gets 100 Continue before it sends the body", () =>
        withServer(runtime, (server) => {
          // curl waits up to 30 s for the 100 before sending the body anyway; --max-time 20 cuts that.
          const result = curl([
            "--verbose",
            "--expect100-timeout",
            "30",
            "-H",
            "Expect: 100-continue",
            "--data-binary",
            `@${upload.file}`,
            `http://127.0.0.1:${server.port}/sha256`
          ])
          expect(result.status).toBe(0)
          expect(result.stderr).toMatch(/< HTTP\/1\.1 100 Continue/)
          expect(result.stdout.toString()).toBe(`${sha256(upload.bytes)}\n`)
        }))

      it("curl HEAD gets the headers of GET and no body; --http1.0 gets a response and a close", () =>
        withServer(runtime, (server) => {
          const url = `http://127.0.0.1:${server.port}/`
          const head = curl(["--head", url])
          expect(head.status).toBe(0)
          const text = head.stdout.toString()
          expect(text).toMatch(/^HTTP\/1\.1 200 OK\r\n/)
          expect(text).toMatch(/\r\nContent-Length: 14\r\n/)
          expect(text).toMatch(/\r\nDate: /)
          expect(text.endsWith("\r\n\r\n")).toBe(true)
          const old = curl(["--verbose", "--http1.0", url])
          expect(old.status).toBe(0)
          expect(old.stderr).toMatch(/> GET \/ HTTP\/1\.0/)
          expect(old.stderr).toMatch(/< Connection: close/)
          expect(old.stdout.toString()).toBe(hello)
        }))

      it("wrk -c 50 -d 5 -t 2 on GET /: every response 2xx, no socket errors", () =>
        withServer(runtime, (server) => {
          const result = run(require("wrk"), ["-c", "50", "-d", "5", "-t", "2", `http://127.0.0.1:${server.port}/`])
          const output = result.stdout.toString()
          expect(result.status).toBe(0)
          expect(output).not.toMatch(/Socket errors/)
          expect(output).not.toMatch(/Non-2xx/)
          const requests = /(\d+) requests in/.exec(output)
          expect(Number(requests?.[1])).toBeGreaterThan(1000)
        }))

      it("promtool check metrics accepts GET /metrics", () =>
        withServer(runtime, (server) => {
          const base = `http://127.0.0.1:${server.port}`
          expect(curl([`${base}/`]).stdout.toString()).toBe(hello)
          const metrics = curl([`${base}/metrics`])
          expect(metrics.status).toBe(0)
          const text = metrics.stdout.toString()
          expect(text).toMatch(/^sluice_connections_total \d+$/m)
          const check = run(require("promtool"), ["check", "metrics"], metrics.stdout)
          expect(check.stdout.toString() + check.stderr).toBe("")
          expect(check.status).toBe(0)
        }))
    })
  }
})
