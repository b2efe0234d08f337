import type { Address } from "../Transport.ts"

/** The address of a TCP host and port, or of a Unix socket when `path` is given (and not empty). */
export const makeAddress = (
  host: string | null | undefined,
  port: number | null | undefined,
  path?: string | undefined
): Address =>
  path !== undefined && path !== "" ? { _tag: "Unix", path } : { _tag: "Tcp", host: host ?? "", port: port ?? 0 }

/** `host:port`, `[v6]:port`, or the socket path. */
export const formatAddress = (address: Address): string =>
  address._tag === "Unix"
    ? address.path
    : address.host.includes(":")
    ? `[${address.host}]:${address.port}`
    : `${address.host}:${address.port}`
