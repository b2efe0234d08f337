/**
 * Records a CPU profile of a running process through its V8 inspector, for runtimes without a
 * `--cpu-prof` flag (Deno): start the server with `--inspect=127.0.0.1:9229`, put load on it, and run
 *
 *   bun bench/inspector-profile.ts [--port 9229] [--seconds 5] [--interval-us 200] [--out server.cpuprofile]
 *
 * It samples for `--seconds` and writes a `.cpuprofile` (the Chrome DevTools format, which
 * `bun bench/cpuprofile.ts` summarises, as it does the files of `bun --cpu-prof` and `node --cpu-prof`).
 */
import { writeFileSync } from "node:fs"
import { option } from "./lib/args.ts"

const port = Number(option("--port", "9229"))
const seconds = Number(option("--seconds", "5"))
const intervalUs = Number(option("--interval-us", "200"))
const out = option("--out", "server.cpuprofile")

const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json() as Array<{
  readonly webSocketDebuggerUrl?: string
}>
const url = targets.find((t) => t.webSocketDebuggerUrl !== undefined)?.webSocketDebuggerUrl
if (url === undefined) throw new Error(`no inspector target on 127.0.0.1:${port}`)

const socket = new WebSocket(url)
const pending = new Map<number, (result: unknown) => void>()
let nextId = 1
const call = (method: string, params: Record<string, unknown> = {}): Promise<unknown> =>
  new Promise((resolve) => {
    const id = nextId++
    pending.set(id, resolve)
    socket.send(JSON.stringify({ id, method, params }))
  })
socket.addEventListener("message", (event) => {
  const message = JSON.parse(String(event.data)) as { id?: number; result?: unknown; error?: unknown }
  if (message.id === undefined) return
  if (message.error !== undefined) throw new Error(`inspector: ${JSON.stringify(message.error)}`)
  pending.get(message.id)?.(message.result)
  pending.delete(message.id)
})
await new Promise<void>((resolve, reject) => {
  socket.addEventListener("open", () => resolve())
  socket.addEventListener("error", () => reject(new Error(`cannot connect to ${url}`)))
})

await call("Profiler.enable")
await call("Profiler.setSamplingInterval", { interval: intervalUs })
await call("Profiler.start")
await new Promise((resolve) => setTimeout(resolve, seconds * 1000))
const { profile } = await call("Profiler.stop") as { profile: unknown }
writeFileSync(out, JSON.stringify(profile))
console.log(`${out}: ${seconds} s of samples every ${intervalUs} us`)
socket.close()
