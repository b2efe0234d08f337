/**
 * The reference for `npm run bench:http` on Deno: `Deno.serve` answering `GET /` with
 * `hello, world!\n`, as the HTTP example does (`Date` and `Content-Length` are Deno's own).
 *
 * `PORT=8081 deno run -A bench/protocols/http-deno.ts` (HOST default 127.0.0.1).
 */
const Deno = (globalThis as unknown as {
  Deno: {
    env: { get(name: string): string | undefined }
    serve(
      options: { port: number; hostname: string; onListen?: () => void },
      handler: () => Response
    ): unknown
  }
}).Deno

const body = "hello, world!\n"
Deno.serve(
  { port: Number(Deno.env.get("PORT") ?? 8081), hostname: Deno.env.get("HOST") ?? "127.0.0.1", onListen: () => {} },
  () => new Response(body, { headers: { "Content-Type": "text/plain; charset=utf-8" } })
)
