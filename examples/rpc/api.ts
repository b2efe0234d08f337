/**
 * A small user service, declared once with effect/rpc and shared by the server and its clients:
 *
 * - `Greet`: a plain call.
 * - `GetUser`: a call with a declared error, `UserNotFound`, that the caller can `catchTag`.
 * - `Count`: a streaming call, the numbers 1 to `to`, pulled only as fast as the caller consumes them.
 * - `Sleep`: a slow call, answered after `millis`; interrupting it (or a time-out on the caller's side)
 *   interrupts the handler on the server.
 *
 * `CatchDefects` (from `sluice/rpc`) answers a handler that dies with a typed `RpcDefect` for that call.
 */
import { Schema } from "effect"
import { Rpc, RpcGroup } from "effect/rpc"
import { CatchDefects } from "../../src/rpc.ts"

export class User extends Schema.Class<User>("User")({
  id: Schema.Int,
  name: Schema.String
}) {}

export class UserNotFound extends Schema.TaggedError<UserNotFound>()("UserNotFound", {
  id: Schema.Int
}) {}

export class Api extends RpcGroup.make(
  Rpc.make("Greet", { payload: { name: Schema.String }, success: Schema.String }),
  Rpc.make("GetUser", { payload: { id: Schema.Int }, success: User, error: UserNotFound }),
  Rpc.make("Count", {
    payload: { to: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 1_000_000 })) },
    success: Schema.Int,
    stream: true
  }),
  Rpc.make("Sleep", {
    payload: { millis: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 60_000 })) },
    success: Schema.Int
  })
).middleware(CatchDefects) {}
