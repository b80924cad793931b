import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import type { ResolvedRepositories } from "../profile/profileSchema.js"
import { secretPlaceholder } from "../profile/secrets.js"
import { sha256Hex } from "../text/digest.js"
import { usignPublicKeyId } from "../text/usignKey.js"

/*
 * A profile's (or an ASU request's) own package feeds, written into a build's private instance of the Image
 * Builder before make runs: its repositories file (opkg `repositories.conf`, `src/gz <name> <url>`; apk
 * `repositories`, one URL per line) and the feeds' keys in its `keys/` (a usign key as `keys/<key id>`, as
 * opkg and upstream ASU name it; a PEM key as `keys/<16 hex of its SHA-256>.pem` for apk). The stored builder
 * is never changed.
 */

/**
 * append: after the builder's own feeds (one of the same name replaced); replace: instead of its remote ones
 * (its local packages/ stays). Without feeds, the builder's file is left as it is.
 */
export type CustomRepositories = ResolvedRepositories

/** Whether the builder lists its feeds for apk (`repositories`) rather than opkg (`repositories.conf`). */
const usesApk = (builder: string) =>
  existsSync(join(builder, "repositories")) && !existsSync(join(builder, "repositories.conf"))

const isLocal = (line: string) => /(^|\s)file:/.test(line)

/** The builder's repositories file with the custom feeds: its name and content. */
export const repositoriesFile = (
  builder: string,
  custom: CustomRepositories,
  secrets: ReadonlyMap<string, string> = new Map(),
): { readonly name: string; readonly content: string } => {
  const apk = usesApk(builder)
  const name = apk ? "repositories" : "repositories.conf"
  const path = join(builder, name)
  const own = existsSync(path) ? readFileSync(path, "utf8").split("\n") : []
  // A private feed's credentials, from its secret (checked to hold URL characters only).
  const urlOf = (url: string) =>
    url.replace(secretPlaceholder, (whole, secret: string) => secrets.get(secret) ?? whole)
  const added = custom.feeds.map((feed) => (apk ? urlOf(feed.url) : `src/gz ${feed.name} ${urlOf(feed.url)}`))
  // Keys alone replace nothing: without feeds of its own a build keeps the builder's.
  if (custom.mode === "append" || custom.feeds.length === 0) {
    // A feed named as one of the builder's replaces it (opkg keeps one list per name).
    const names = new Set(custom.feeds.map((feed) => feed.name))
    const kept = own.filter((line) => {
      const named = /^\s*src(?:\/gz)?\s+(\S+)\s/.exec(line)?.[1]
      return line.trim() !== "" && (named === undefined || !names.has(named))
    })
    return { name, content: `${[...kept, ...added].join("\n")}\n` }
  }
  // replace: the custom feeds, then the builder's local feed (its target packages) and its options.
  const local = own.filter((line) => isLocal(line.trim()) && !line.trim().startsWith("#"))
  const fallback = apk ? ["file:packages/packages.adb"] : ["src imagebuilder file:packages"]
  const options = apk ? [] : ["option check_signature"]
  return {
    name,
    content: `${[...added, ...(local.length > 0 ? local : fallback), ...options].join("\n")}\n`,
  }
}

/** A usign key file's key line (the one after its `untrusted comment:`). */
const keyLine = (text: string) =>
  text
    .split("\n")
    .find((line) => !line.startsWith("untrusted comment:"))
    ?.trim()

/** The key files a build's `keys/` gets: name and content. */
export const repositoryKeyFiles = (
  keys: ReadonlyArray<string>,
): ReadonlyArray<{ readonly name: string; readonly content: string }> =>
  keys.map((raw) => {
    const key = raw.trim()
    if (key.startsWith("-----BEGIN"))
      return { name: `${sha256Hex(key).slice(0, 16)}.pem`, content: `${key}\n` }
    // Profiles and ASU requests accept only usign or PEM keys.
    const id = usignPublicKeyId(key) ?? sha256Hex(key).slice(0, 16)
    return { name: id, content: `untrusted comment: ${id}\n${key}\n` }
  })

/**
 * Writes the repositories file and keys into `tree`, the build's writable view of the builder `builder`. A key
 * never replaces one the builder ships under the same name (its own feeds stay verified by its own keys): such
 * a key is left out and named in the answer, for the build log.
 */
export const writeCustomRepositories = (
  builder: string,
  tree: string,
  custom: CustomRepositories,
  secrets: ReadonlyMap<string, string> = new Map(),
): { readonly keysLeftOut: ReadonlyArray<string> } => {
  const file = repositoriesFile(builder, custom, secrets)
  writeFileSync(join(tree, file.name), file.content)
  const keys = repositoryKeyFiles(custom.keys)
  if (keys.length === 0) return { keysLeftOut: [] }
  mkdirSync(join(tree, "keys"), { recursive: true })
  const keysLeftOut: Array<string> = []
  for (const key of keys) {
    const shipped = join(builder, "keys", key.name)
    if (existsSync(shipped)) {
      if (keyLine(readFileSync(shipped, "utf8")) !== keyLine(key.content)) keysLeftOut.push(key.name)
      continue
    }
    writeFileSync(join(tree, "keys", key.name), key.content, { mode: 0o644 })
  }
  return { keysLeftOut }
}
