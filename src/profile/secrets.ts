import { createHmac, randomBytes } from "node:crypto"
import { linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from "node:fs"
import { homedir } from "node:os"
import { dirname, isAbsolute, join, resolve } from "node:path"
import { Effect } from "effect"
import { SecretUnavailableError } from "../errors.js"

/*
 * Secrets never live in a profile: a profile names them (`secrets: {wifi_key: env:HOME_WIFI_KEY}`) and
 * uses them as `${secret:wifi_key}` in inline files and first-boot scripts, or as a whole inline file
 * (`secret: wg_private`). Values are read only when an image is staged.
 *
 * A build key must still change when a secret's value changes, without the key revealing the value. A
 * plain hash of a short secret (a Wi-Fi passphrase) can be brute-forced from the key, so keys carry an
 * HMAC-SHA256 of the value under a sealing key that never leaves the machine: the store's own
 * `secrets.key` (random, mode 0600), or the key named by `secretsKey` in graph.config.ts, which machines
 * that must agree on keys (CI and developers) share.
 */

export const secretPlaceholder = /\$\{secret:([A-Za-z_][A-Za-z0-9_]*)\}/g

export type SecretReference =
  | { readonly kind: "env"; readonly variable: string }
  | { readonly kind: "file"; readonly path: string }

export const parseSecretReference = (reference: string): SecretReference =>
  reference.startsWith("env:")
    ? { kind: "env", variable: reference.slice(4) }
    : { kind: "file", path: reference.slice(5) }

/** Secret names a text refers to through `${secret:NAME}` placeholders. */
export const referencedSecrets = (text: string): ReadonlyArray<string> =>
  [...text.matchAll(secretPlaceholder)].map((match) => match[1] ?? "")

const expandHome = (path: string) =>
  path === "~" || path.startsWith("~/") ? join(homedir(), path.slice(1)) : path

/** Reads a secret's value. `file:` paths are relative to `baseDir` (the profiles directory). */
export const readSecret = (options: {
  readonly profile: string
  readonly name: string
  readonly reference: string
  readonly baseDir: string
  readonly env: Readonly<Record<string, string | undefined>>
}): Effect.Effect<string, SecretUnavailableError> => {
  const parsed = parseSecretReference(options.reference)
  const fail = (reason: string) =>
    new SecretUnavailableError({
      profile: options.profile,
      secret: options.name,
      reference: options.reference,
      reason,
    })
  if (parsed.kind === "env") {
    const value = options.env[parsed.variable]
    return value === undefined
      ? Effect.fail(fail(`environment variable ${parsed.variable} is not set`))
      : Effect.succeed(value)
  }
  const path = expandHome(parsed.path)
  const absolute = isAbsolute(path) ? path : resolve(options.baseDir, path)
  return Effect.try({
    try: () => readFileSync(absolute, "utf8").replace(/\r?\n$/, ""),
    catch: (error) =>
      fail(`cannot read ${absolute}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`),
  })
}

/** Keyed fingerprint of a secret value: changes with the value, reveals nothing without the sealing key. */
export const secretFingerprint = (sealingKey: Uint8Array, name: string, value: string): string =>
  createHmac("sha256", sealingKey).update(`owrt-secret-v1\0${name}\0${value}`).digest("hex")

/** The store's own sealing key, made on first use (random, readable only by its owner). */
export const storeSealingKey = (storeDir: string): Effect.Effect<Uint8Array> =>
  Effect.sync(() => {
    const file = join(storeDir, "secrets.key")
    const existing = readKey(file)
    if (existing) return existing
    mkdirSync(dirname(file), { recursive: true })
    // Written whole to a private name, then linked into place: another process sees no key or a whole one.
    const temporary = `${file}.${process.pid}.${randomBytes(4).toString("hex")}`
    writeFileSync(temporary, randomBytes(32), { mode: 0o600, flag: "wx" })
    try {
      linkSync(temporary, file)
    } catch {
      // Another process linked its key first; use theirs.
    } finally {
      unlinkSync(temporary)
    }
    const key = readKey(file)
    if (!key) throw new Error(`${file} is not a 32-byte key`)
    return key
  })

const readKey = (file: string): Uint8Array | undefined => {
  try {
    const key = readFileSync(file)
    return key.length === 32 ? key : undefined
  } catch {
    return undefined
  }
}

/** Replaces every secret value in a text (a build log, an error message) by a marker naming the secret. */
export const redactSecrets = (text: string, values: ReadonlyMap<string, string>): string => {
  let redacted = text
  for (const [name, value] of values) {
    if (value.length > 0) redacted = redacted.split(value).join(`<secret:${name}>`)
  }
  return redacted
}
