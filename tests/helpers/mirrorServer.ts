import { createReadStream, statSync } from "node:fs"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { join, normalize } from "node:path"

/** How the server misbehaves for one path: the failure modes a download must survive or report. */
export type Fault =
  | { readonly kind: "status"; readonly status: number; readonly times?: number }
  | { readonly kind: "stall"; readonly afterBytes: number; readonly times?: number }
  | { readonly kind: "truncate"; readonly afterBytes: number; readonly times?: number }
  | { readonly kind: "replace"; readonly body: Uint8Array }
  | { readonly kind: "delay"; readonly ms: number }

export interface TestMirror {
  readonly url: string
  /** Requests seen per path, in order. */
  readonly requests: Array<string>
  readonly fault: (path: string, fault: Fault | undefined) => void
  readonly close: () => Promise<void>
}

/**
 * A static HTTP server on 127.0.0.1 over a mirror directory, with faults injectable per path (a path is
 * the URL path, e.g. `/releases/23.05.5/targets/x86/64/sha256sums`).
 */
export const startTestMirror = (root: string): Promise<TestMirror> => {
  const faults = new Map<string, Fault & { used: number }>()
  const requests: Array<string> = []
  const sockets = new Set<import("node:net").Socket>()

  const serve = (request: IncomingMessage, response: ServerResponse) => {
    const path = decodeURIComponent(new URL(request.url ?? "/", "http://x").pathname)
    requests.push(path)
    const fault = faults.get(path)
    const active =
      fault &&
      (fault.kind === "replace" ||
        fault.kind === "delay" ||
        fault.used < (fault.times ?? Number.POSITIVE_INFINITY))
    if (fault && active) fault.used += 1
    if (active && fault.kind === "status") {
      response.writeHead(fault.status, { "content-type": "text/plain" })
      response.end(`injected ${fault.status}\n`)
      return
    }
    if (active && fault.kind === "replace") {
      response.writeHead(200, { "content-length": fault.body.length })
      response.end(fault.body)
      return
    }
    const file = normalize(join(root, path))
    if (!file.startsWith(normalize(root))) {
      response.writeHead(403).end()
      return
    }
    let size: number
    try {
      const stat = statSync(file)
      if (!stat.isFile()) throw new Error("not a file")
      size = stat.size
    } catch {
      response.writeHead(404, { "content-type": "text/plain" })
      response.end("not found\n")
      return
    }
    response.writeHead(200, { "content-length": size, "content-type": "application/octet-stream" })
    if (request.method === "HEAD") {
      response.end()
      return
    }
    if (active && (fault.kind === "stall" || fault.kind === "truncate")) {
      const stream = createReadStream(file, { start: 0, end: Math.max(0, fault.afterBytes - 1) })
      stream.pipe(response, { end: false })
      stream.on("end", () => {
        // Truncate: close the connection short of Content-Length. Stall: keep it open, send nothing more.
        if (fault.kind === "truncate") response.socket?.destroy()
      })
      return
    }
    const send = () => createReadStream(file).pipe(response)
    if (active && fault.kind === "delay") setTimeout(send, fault.ms)
    else send()
  }

  const server = createServer(serve)
  server.on("connection", (socket) => {
    sockets.add(socket)
    socket.on("close", () => sockets.delete(socket))
  })
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo
      resolve({
        url: `http://127.0.0.1:${port}`,
        requests,
        fault: (path, fault) => {
          if (fault) faults.set(path, { ...fault, used: 0 })
          else faults.delete(path)
        },
        close: () =>
          new Promise((done) => {
            for (const socket of sockets) socket.destroy()
            server.close(() => done())
          }),
      })
    })
  })
}
