import { createReadStream } from "node:fs"
import { type HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { decideRange, etagMatches } from "./byteRange.js"

/*
 * A file answered on @effect/platform (the ASU `/store/` files, the `--downloads` tree): `If-None-Match` → 304,
 * one `Range` (`If-Range` honoured) → 206 or 416, HEAD without a body, the bytes streamed from disk.
 */
export const fileResponse = (
  request: HttpServerRequest.HttpServerRequest,
  file: { readonly path: string; readonly size: number },
  options: {
    readonly etag: string
    readonly contentType: string
    /** Sent with every answer (cache policy, `nosniff`, a `Content-Disposition`). */
    readonly headers: Readonly<Record<string, string>>
  },
): HttpServerResponse.HttpServerResponse => {
  const headers = { ...options.headers, etag: options.etag, "accept-ranges": "bytes" }
  if (etagMatches(request.headers["if-none-match"], options.etag))
    return HttpServerResponse.empty({ status: 304, headers })
  const ifRange = request.headers["if-range"]
  const range =
    ifRange !== undefined && ifRange !== options.etag
      ? { kind: "full" as const }
      : decideRange(request.headers.range, file.size)
  if (range.kind === "unsatisfiable")
    return HttpServerResponse.empty({
      status: 416,
      headers: { ...headers, "content-range": `bytes */${file.size}` },
    })
  const [start, end] = range.kind === "partial" ? [range.start, range.end] : [0, file.size - 1]
  const responseHeaders = {
    ...headers,
    "content-type": options.contentType,
    "content-length": String(Math.max(0, end - start + 1)),
    ...(range.kind === "partial" ? { "content-range": `bytes ${start}-${end}/${file.size}` } : {}),
  }
  const status = range.kind === "partial" ? 206 : 200
  if (request.method === "HEAD" || file.size === 0)
    return HttpServerResponse.raw("", { status, headers: responseHeaders })
  return HttpServerResponse.raw(createReadStream(file.path, { start, end }), {
    status,
    headers: responseHeaders,
  })
}
