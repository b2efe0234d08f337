/**
 * The reference for `npm run bench:http` on Node: `node:http` answering `GET /` with
 * `hello, world!\n`, as the HTTP example does (`Date` and `Content-Length` are Node's own).
 *
 * `PORT=8081 node --import tsx bench/protocols/http-node.ts` (HOST default 127.0.0.1).
 */
import * as http from "node:http"
import process from "node:process"

const body = "hello, world!\n"
http
  .createServer((_request, response) => {
    response.setHeader("Content-Type", "text/plain; charset=utf-8")
    response.end(body)
  })
  .listen(Number(process.env.PORT ?? 8081), process.env.HOST ?? "127.0.0.1")
