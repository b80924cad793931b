import { isIP } from "node:net"

/** Whether `host` is this machine only: `localhost`, 127.0.0.0/8 or ::1. */
export const isLoopbackAddress = (host: string): boolean => {
  const bare = host.replace(/^\[(.*)\]$/, "$1").toLowerCase()
  if (bare === "localhost") return true
  if (isIP(bare) === 4) return bare.startsWith("127.")
  return bare === "::1" || bare === "::ffff:127.0.0.1"
}

/**
 * Whether a request's `Host` header names this machine (or the address the server was bound to). Used
 * only when no token is set: then a page on another site that re-points its own name at 127.0.0.1 (DNS
 * rebinding) must not reach the API.
 */
export const isLoopbackHost = (header: string | undefined, boundHost: string): boolean => {
  if (header === undefined) return true
  const name = header.startsWith("[") ? header.slice(0, header.indexOf("]") + 1) : header.replace(/:\d+$/, "")
  return isLoopbackAddress(name) || name.toLowerCase() === boundHost.toLowerCase()
}
