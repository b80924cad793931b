import { createHmac } from "node:crypto"
import { closeSync, constants, fstatSync, openSync, readSync } from "node:fs"
import { homedir } from "node:os"
import { isAbsolute, join, resolve } from "node:path"
import { Effect } from "effect"
import { SecretInvalidError, SecretMissingError, SecretUnavailableError } from "../errors.js"

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

/** The largest secret value read (a `file:` secret's size, an `env:` secret's length). */
export const maxSecretBytes = 64 * 1024

/**
 * The shortest secret value accepted. Values are redacted from build logs by search and replace, and a
 * short value (`luci`) also occurs in text that is not the secret (`libluci-http0`): redacting it would
 * reveal it, not redacting it would leak it. WPA2 passphrases are at least 8 characters anyway.
 */
export const minSecretLength = 8

type ReadOutcome =
  | { readonly _tag: "ok"; readonly text: string }
  | { readonly _tag: "invalid"; readonly reason: string }
  | { readonly _tag: "unavailable"; readonly reason: string }

/**
 * Reads a `file:` secret without trusting what the path names: opened non-blocking (a fifo must not hang
 * the open), refused unless the opened file is a regular file, and never read past `maxSecretBytes` (a
 * device such as /dev/zero, or a file that grows while it is read, cannot exhaust memory).
 */
const readSecretFile = (absolute: string): ReadOutcome => {
  let fd: number
  try {
    fd = openSync(absolute, constants.O_RDONLY | constants.O_NONBLOCK)
  } catch (error) {
    return {
      _tag: "unavailable",
      reason: `cannot read ${absolute}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
    }
  }
  try {
    const stat = fstatSync(fd)
    if (!stat.isFile()) {
      const kind = stat.isDirectory()
        ? "a directory"
        : stat.isFIFO()
          ? "a fifo"
          : stat.isSocket()
            ? "a socket"
            : stat.isCharacterDevice() || stat.isBlockDevice()
              ? "a device"
              : "not a regular file"
      return { _tag: "invalid", reason: `${absolute} is ${kind}: a file: secret must be a regular file` }
    }
    const tooLarge = {
      _tag: "invalid",
      reason: `${absolute} is larger than ${maxSecretBytes} bytes, the limit for a secret`,
    } as const
    if (stat.size > maxSecretBytes) return tooLarge
    const buffer = Buffer.alloc(maxSecretBytes + 1)
    let length = 0
    while (length < buffer.length) {
      const read = readSync(fd, buffer, length, buffer.length - length, null)
      if (read === 0) break
      length += read
    }
    if (length > maxSecretBytes) return tooLarge
    return {
      _tag: "ok",
      text: buffer
        .subarray(0, length)
        .toString("utf8")
        .replace(/\r?\n$/, ""),
    }
  } catch (error) {
    return {
      _tag: "unavailable",
      reason: `cannot read ${absolute}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
    }
  } finally {
    closeSync(fd)
  }
}

/**
 * Reads a secret's value. `file:` paths are relative to `baseDir` (the profiles directory). An `env:`
 * variable that is not set is `secret_missing`, naming the variable and the field (`secrets.<name>`, or
 * `field`); a value that cannot be used safely — not a regular file, larger than `maxSecretBytes`, shorter
 * than `minSecretLength` — is refused with `secret_invalid`; a file that cannot be read is `secret_unavailable`.
 */
export const readSecret = (options: {
  readonly profile: string
  readonly name: string
  readonly reference: string
  readonly baseDir: string
  readonly env: Readonly<Record<string, string | undefined>>
  /** The field naming the reference, when it is not `secrets.<name>` of a profile. */
  readonly field?: string | undefined
}): Effect.Effect<string, SecretUnavailableError | SecretMissingError | SecretInvalidError> => {
  const parsed = parseSecretReference(options.reference)
  const fields = { profile: options.profile, secret: options.name, reference: options.reference }
  const unavailable = (reason: string) => new SecretUnavailableError({ ...fields, reason })
  const invalid = (reason: string) => new SecretInvalidError({ ...fields, reason })
  const checked = (value: string, where: string) =>
    value.length > maxSecretBytes
      ? Effect.fail(invalid(`${where} is longer than ${maxSecretBytes} characters, the limit for a secret`))
      : value.length < minSecretLength
        ? Effect.fail(
            invalid(
              `the value of ${where} is too short to keep out of logs; at least ${minSecretLength} characters`,
            ),
          )
        : Effect.succeed(value)
  if (parsed.kind === "env") {
    const value = options.env[parsed.variable]
    return value === undefined
      ? Effect.fail(
          new SecretMissingError({
            source: options.profile,
            field: options.field ?? `secrets.${options.name}`,
            variable: parsed.variable,
          }),
        )
      : checked(value, `environment variable ${parsed.variable}`)
  }
  const path = expandHome(parsed.path)
  const absolute = isAbsolute(path) ? path : resolve(options.baseDir, path)
  return Effect.suspend(() => {
    const outcome = readSecretFile(absolute)
    return outcome._tag === "ok"
      ? checked(outcome.text, absolute)
      : Effect.fail(outcome._tag === "invalid" ? invalid(outcome.reason) : unavailable(outcome.reason))
  })
}

/** Keyed fingerprint of a secret value: changes with the value, reveals nothing without the sealing key. */
export const secretFingerprint = (sealingKey: Uint8Array, name: string, value: string): string =>
  createHmac("sha256", sealingKey).update(`owrt-secret-v1\0${name}\0${value}`).digest("hex")

/**
 * Replaces every secret value in a text (a build log, an error message) by a marker naming the secret.
 * Values shorter than `minSecretLength` never get here (`readSecret` refuses them): replacing a short
 * value would also mark the unrelated text that contains it, and so reveal the value.
 */
export const redactSecrets = (text: string, values: ReadonlyMap<string, string>): string => {
  let redacted = text
  for (const [name, value] of values) {
    if (value.length > 0) redacted = redacted.split(value).join(`<secret:${name}>`)
  }
  return redacted
}
