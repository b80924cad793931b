import { existsSync, readdirSync, readFileSync, statSync } from "node:fs"
import { isAbsolute, join, resolve } from "node:path"
import { Effect, Schema } from "effect"
import { InternalError } from "../errors.js"
import { zlib } from "../process/lazyBuiltin.js"
import { closestMatch } from "../text/closestMatch.js"

/*
 * The packages an Image Builder can install: its package feeds, as its package manager reads them.
 *
 * - The feeds are the builder's `repositories.conf` (opkg: `src[/gz] <name> <url>`) or `repositories`
 *   (apk: one URL per line); without one, its `packages/` directory.
 * - A local feed (`file:` URL, as the builder's own `packages/`) is read from its index: `Packages` or
 *   `Packages.gz` (opkg's format, name/version/depends/provides/description), else `index.json`
 *   (`{"packages": {name: version}}`, published next to `packages.adb` for apk).
 * - Remote feeds are what opkg downloaded into the builder's lists directory (`dl/<feed name>`) during a
 *   build: present in a build instance after make ran, not in a stored builder, whose tree is never written.
 *
 * Later feeds do not replace a name an earlier feed has, as for the package managers.
 */

export const IndexedPackageSchema = Schema.Struct({
  name: Schema.String,
  version: Schema.String,
  description: Schema.NullOr(Schema.String),
})
export type IndexedPackage = typeof IndexedPackageSchema.Type

export interface PackageIndex {
  readonly packages: ReadonlyArray<IndexedPackage>
  /** Names other packages provide (`nftables` by `nftables-json`), each with its providers. */
  readonly provided: ReadonlyMap<string, ReadonlyArray<string>>
  /** How many feeds the builder lists, and how many of them could be read here. */
  readonly feeds: { readonly listed: number; readonly read: number }
}

interface Feed {
  readonly name: string | undefined
  /** Directory of a local feed, or undefined for a remote one. */
  readonly dir: string | undefined
}

/**
 * The feeds a builder's repositories file lists (comments and options skipped): a build's own file (with
 * the feeds its profile added) when one of the trees it wrote holds one, else the builder's.
 */
const feedsOf = (builder: string, written: ReadonlyArray<string>): ReadonlyArray<Feed> => {
  const conf = [...written, builder]
    .flatMap((tree) => [join(tree, "repositories.conf"), join(tree, "repositories")])
    .find((f) => existsSync(f))
  if (conf === undefined) return [{ name: "imagebuilder", dir: join(builder, "packages") }]
  const feeds: Array<Feed> = []
  for (const raw of readFileSync(conf, "utf8").split("\n")) {
    const line = raw.trim()
    if (line === "" || line.startsWith("#") || line.startsWith("option ")) continue
    const opkg = /^src(?:\/gz)?\s+(\S+)\s+(\S+)/.exec(line)
    const name = opkg?.[1]
    const url = opkg?.[2] ?? (line.includes(" ") ? undefined : line)
    if (url === undefined) continue
    const local = /^file:(?:\/\/)?(.*)$/.exec(url)?.[1]
    if (local === undefined) {
      feeds.push({ name, dir: undefined })
      continue
    }
    const path = local.replace(/\/(?:packages\.adb|Packages(?:\.gz)?)$/, "")
    feeds.push({ name, dir: isAbsolute(path) ? path : resolve(builder, path) })
  }
  return feeds
}

interface Paragraph {
  readonly name: string
  readonly version: string
  readonly description: string | null
  readonly provides: ReadonlyArray<string>
}

/** opkg's `Packages` format: paragraphs of `Field: value`, continuation lines indented. */
export const parsePackagesText = (text: string): ReadonlyArray<Paragraph> => {
  const out: Array<Paragraph> = []
  for (const block of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>()
    let last: string | undefined
    for (const line of block.split("\n")) {
      const field = /^([A-Za-z0-9-]+):\s?(.*)$/.exec(line)
      if (field?.[1] !== undefined && !/^\s/.test(line)) {
        last = field[1]
        fields.set(last, field[2] ?? "")
      } else if (last !== undefined && /^\s/.test(line) && fields.get(last) === "") {
        fields.set(last, line.trim())
      }
    }
    const name = fields.get("Package")
    if (!name) continue
    const provides = (fields.get("Provides") ?? "")
      .split(",")
      .map((p) =>
        p
          .trim()
          .replace(/\s*\(.*\)$/, "")
          .replace(/=.*$/, ""),
      )
      .filter(Boolean)
    out.push({
      name,
      version: fields.get("Version") ?? "",
      description: fields.get("Description")?.trim() || null,
      provides,
    })
  }
  return out
}

const readFeed = (dir: string): ReadonlyArray<Paragraph> | undefined => {
  const plain = join(dir, "Packages")
  if (existsSync(plain)) return parsePackagesText(readFileSync(plain, "utf8"))
  const gz = join(dir, "Packages.gz")
  if (existsSync(gz)) return parsePackagesText(zlib().gunzipSync(readFileSync(gz)).toString("utf8"))
  const json = join(dir, "index.json")
  if (existsSync(json)) {
    const parsed = JSON.parse(readFileSync(json, "utf8")) as { packages?: Record<string, unknown> }
    return Object.entries(parsed.packages ?? {}).map(([name, version]) => ({
      name,
      version: typeof version === "string" ? version : "",
      description: null,
      provides: [],
    }))
  }
  return undefined
}

/** opkg's downloaded list of a remote feed, named after the feed, in a tree's `dl/`. */
const readDownloadedList = (trees: ReadonlyArray<string>, name: string | undefined) => {
  if (name === undefined) return undefined
  for (const tree of trees) {
    const file = join(tree, "dl", name)
    if (existsSync(file) && statSync(file).isFile()) {
      const text = readFileSync(file, "utf8")
      if (text.startsWith("Package:")) return parsePackagesText(text)
    }
  }
  return undefined
}

/**
 * The package index of the builder tree `builder`; `written` are trees a build wrote into (an instance),
 * where opkg keeps the lists of the remote feeds it downloaded.
 */
export const readPackageIndexSync = (builder: string, written: ReadonlyArray<string> = []): PackageIndex => {
  const byName = new Map<string, IndexedPackage>()
  const provided = new Map<string, Array<string>>()
  const feeds = feedsOf(builder, written)
  let read = 0
  for (const feed of feeds) {
    const entries =
      feed.dir !== undefined ? readFeed(feed.dir) : readDownloadedList([...written, builder], feed.name)
    if (entries === undefined) continue
    read++
    for (const entry of entries) {
      if (byName.has(entry.name)) continue
      byName.set(entry.name, { name: entry.name, version: entry.version, description: entry.description })
      for (const name of entry.provides) {
        if (name === entry.name) continue
        const list = provided.get(name) ?? []
        list.push(entry.name)
        provided.set(name, list)
      }
    }
  }
  const packages = [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  return { packages, provided, feeds: { listed: feeds.length, read } }
}

export const readPackageIndex = (
  builder: string,
  written: ReadonlyArray<string> = [],
): Effect.Effect<PackageIndex, InternalError> =>
  Effect.try({
    try: () => readPackageIndexSync(builder, written),
    catch: (cause) => new InternalError({ cause }),
  })

/**
 * Packages renamed between releases (reference §5): a selection written for another release asks for the
 * old name. Old name → new name.
 */
const renames: ReadonlyMap<string, string> = new Map([
  ["firewall", "firewall4"],
  ["auc", "owut"],
  ["luci-app-opkg", "luci-app-package-manager"],
  ["opkg", "apk-mbedtls"],
  ["libustream-wolfssl", "libustream-mbedtls"],
  ["wpad-basic-wolfssl", "wpad-basic-mbedtls"],
  ["wpad-wolfssl", "wpad-mbedtls"],
  ["px5g-wolfssl", "px5g-mbedtls"],
])

/** What to offer for a package name the index does not have: its new name, or a close name. */
export const suggestPackage = (
  index: PackageIndex,
  name: string,
): { readonly name: string; readonly renamed: boolean } | undefined => {
  const names = new Set(index.packages.map((p) => p.name))
  const renamed = renames.get(name)
  if (renamed !== undefined && names.has(renamed)) return { name: renamed, renamed: true }
  const close = closestMatch(name, [...names, ...index.provided.keys()])
  return close === undefined || close === name ? undefined : { name: close, renamed: false }
}

/** Directories under `dir`, for finding the builder's staging root without knowing the board's name. */
export const subdirectories = (dir: string): ReadonlyArray<string> => {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => join(dir, e.name))
  } catch {
    return []
  }
}
