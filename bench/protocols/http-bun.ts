/**
 * The reference for `npm run bench:http` on Bun: `Bun.serve` answering `GET /` with `hello, world!\n`,
 * as the HTTP example does (`Date` and `Content-Length` are Bun's own).
 *
 * `PORT=8081 bun bench/protocols/http-bun.ts` (HOST default 127.0.0.1).
 */
const env = (globalThis as unknown as { process: { env: Record<string, string | undefined> } }).process.env
const Bun = (globalThis as unknown as {
  Bun: { serve(options: { port: number; hostname: string; fetch: () => Response }): unknown }
}).Bun

const body = "hello, world!\n"
Bun.serve({
  port: Number(env.PORT ?? 8081),
  hostname: env.HOST ?? "127.0.0.1",
  fetch: () => new Response(body, { headers: { "Content-Type": "text/plain; charset=utf-8" } })
})
