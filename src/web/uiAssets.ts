import { createHash } from "node:crypto"
import { readdirSync, readFileSync } from "node:fs"
import { extname, join } from "node:path"
import { packageRoot } from "../packageRoot.js"

export interface UiAsset {
  readonly body: Buffer
  readonly contentType: string
  readonly etag: string
}

const types: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
}

/**
 * The web UI's files (plain HTML, CSS and JS modules, no build step), read once at start from the package:
 * the bundle in dist/ and the sources in src/ find them the same way. Served by name only, so no URL can
 * name anything else.
 */
export const loadUiAssets = (dir = join(packageRoot, "src", "web", "ui")): ReadonlyMap<string, UiAsset> =>
  new Map(
    readdirSync(dir)
      .filter((name) => types[extname(name)] !== undefined)
      .map((name) => {
        const body = readFileSync(join(dir, name))
        const etag = `"${createHash("sha256").update(body).digest("hex").slice(0, 32)}"`
        return [
          name,
          { body, contentType: types[extname(name)] ?? "application/octet-stream", etag },
        ] as const
      }),
  )
