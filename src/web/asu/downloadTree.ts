import { realpathSync, statSync } from "node:fs"
import { extname, join, sep } from "node:path"
import { HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect } from "effect"
import { UsageError } from "../../errors.js"
import { fileResponse } from "../fileResponse.js"

/*
 * `owrt serve --downloads DIR`: a download tree (and, if it holds one, the Firmware Selector's own pages) under
 * /downloads/ of the same origin as the ASU API, so a self-hosted Firmware Selector needs no CORS at all
 * (`image_url: "/downloads"`, `asu_url: ""` in its config.js). Files only, never outside DIR (symbolic links
 * are resolved and must stay inside), `index.html` for a directory, ETag from size and modification time,
 * single byte ranges, `nosniff`.
 */

export const downloadsPrefix = "/downloads/"

const contentTypes: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".txt": "text/plain; charset=utf-8",
  ".manifest": "text/plain; charset=utf-8",
  ".buildinfo": "text/plain; charset=utf-8",
  ".sig": "text/plain; charset=utf-8",
}

/** The tree's real path, checked once at start: a directory that exists. */
export const openDownloadTree = (dir: string): Effect.Effect<string, UsageError> =>
  Effect.try({
    try: () => {
      const real = realpathSync(dir)
      if (!statSync(real).isDirectory()) throw new Error("not a directory")
      return real
    },
    catch: (cause) =>
      new UsageError({
        detail: `--downloads ${dir}: ${cause instanceof Error ? cause.message : String(cause)}`,
      }),
  })

const notFound = () => HttpServerResponse.unsafeJson({ detail: "Not Found" }, { status: 404 })

/** The file a request path names inside `root`, or undefined (outside it, missing, not a file). */
const resolveFile = (root: string, urlPath: string) => {
  let segments: Array<string>
  try {
    segments = urlPath
      .slice(downloadsPrefix.length)
      .split("/")
      .map((s) => decodeURIComponent(s))
  } catch {
    return undefined
  }
  if (segments.some((s) => s === "." || s === ".." || /[\\\0]/.test(s) || s.includes("/"))) return undefined
  try {
    let real = realpathSync(join(root, ...segments))
    if (real !== root && !real.startsWith(root + sep)) return undefined
    let stat = statSync(real)
    if (stat.isDirectory()) {
      real = realpathSync(join(real, "index.html"))
      if (!real.startsWith(root + sep)) return undefined
      stat = statSync(real)
    }
    return stat.isFile() ? { path: real, size: stat.size, mtimeMs: stat.mtimeMs } : undefined
  } catch {
    return undefined
  }
}

export const downloadTreeFile = (root: string | undefined) =>
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    if (root === undefined) return notFound()
    // The raw path, not a normalised URL: `..` must reach the check, not be folded away before it.
    const raw = request.url
    const path = raw.includes("?") ? raw.slice(0, raw.indexOf("?")) : raw
    if (!path.startsWith(downloadsPrefix)) return notFound()
    const file = resolveFile(root, path)
    if (file === undefined) return notFound()
    return fileResponse(request, file, {
      etag: `W/"${file.size.toString(16)}-${Math.floor(file.mtimeMs).toString(16)}"`,
      contentType: contentTypes[extname(file.path).toLowerCase()] ?? "application/octet-stream",
      headers: { "cache-control": "public, max-age=60", "x-content-type-options": "nosniff" },
    })
  })
