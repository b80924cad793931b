import { sha256Hex } from "../text/digest.js"
import type { BuildRequest } from "./buildRequest.js"

/*
 * The request hash, the job id (asu-api.md §3): upstream's `get_request_hash`, character for character.
 * It concatenates Python `str()` and `json.dumps()` renderings, so those are reproduced here: a request
 * hashes the same on an owrt server as on upstream's, and a client that computed it finds its job.
 */

/** Python's `repr()` of a str: single quotes unless the text has `'` and no `"`; escapes as CPython writes them. */
export const pythonRepr = (text: string): string => {
  const quote = text.includes("'") && !text.includes('"') ? '"' : "'"
  let out = quote
  for (const ch of text) {
    const code = ch.codePointAt(0) ?? 0
    if (ch === quote || ch === "\\") out += `\\${ch}`
    else if (ch === "\n") out += "\\n"
    else if (ch === "\r") out += "\\r"
    else if (ch === "\t") out += "\\t"
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, "0")}`
    else if (code >= 0x80 && code < 0xa0) out += `\\x${code.toString(16).padStart(2, "0")}`
    else out += ch
  }
  return out + quote
}

/** Python's `str()` of a list of str: `[]`, `['a', 'b']`. */
export const pythonListRepr = (items: ReadonlyArray<string>): string =>
  `[${items.map(pythonRepr).join(", ")}]`

/** Python's `str()` of a dict of str to str, in insertion order: `{}`, `{'a': 'b'}`. */
export const pythonDictRepr = (map: Readonly<Record<string, string>>): string =>
  `{${Object.entries(map)
    .map(([k, v]) => `${pythonRepr(k)}: ${pythonRepr(v)}`)
    .join(", ")}}`

/** A JSON string as Python's `json.dumps` writes it (`ensure_ascii`: everything past ASCII as \uXXXX). */
const pythonJsonString = (text: string): string =>
  JSON.stringify(text).replace(
    /[\u007f-\uffff]/g,
    (ch) => `\\u${(ch.charCodeAt(0) ?? 0).toString(16).padStart(4, "0")}`,
  )

/** `json.dumps(map, sort_keys=True)` of a dict of str to str: `", "` and `": "` between items. */
export const pythonJsonDumpsSorted = (map: Readonly<Record<string, string>>): string =>
  `{${Object.keys(map)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .map((k) => `${pythonJsonString(k)}: ${pythonJsonString(map[k] ?? "")}`)
    .join(", ")}}`

/** sha256 of the sorted, de-duplicated package names without a leading `+`, joined by spaces. */
export const packagesHash = (packages: ReadonlyArray<string>): string =>
  sha256Hex(
    [...new Set(packages.map((p) => p.replace(/^\+/, "")))]
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
      .join(" "),
  )

/** The full 64 hex digits (upstream truncated to 32 before GHSA-r3gq-96h6-3v7q). */
export const requestHash = (request: BuildRequest): string => {
  const versions = request.packages_versions ?? {}
  const names = Object.keys(versions)
  return sha256Hex(
    [
      request.distro,
      request.version,
      request.version_code,
      request.target,
      request.profile.replace(/,/g, "_"),
      packagesHash(names.length > 0 ? names : (request.packages ?? [])),
      sha256Hex(pythonJsonDumpsSorted(versions)),
      request.diff_packages ? "True" : "False",
      request.filesystem ?? "",
      sha256Hex(request.defaults ?? ""),
      request.rootfs_size_mb === null ? "None" : String(request.rootfs_size_mb),
      pythonListRepr(request.repository_keys),
      pythonDictRepr(request.repositories),
      request.repositories_mode,
    ].join(""),
  )
}
