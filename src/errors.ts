import { statfsSync } from "node:fs"
import { dirname } from "node:path"
import { Data } from "effect"

/**
 * Process exit codes (DESIGN §4). They are part of the public contract: scripts and CI branch on them,
 * so a value here never changes meaning.
 */
export const ExitCode = {
  ok: 0,
  usage: 2,
  invalid: 3,
  notFound: 4,
  unavailable: 5,
  integrity: 6,
  buildFailed: 7,
  flashRefused: 8,
  flashMismatch: 9,
  busy: 10,
  internal: 70,
  interrupted: 130,
} as const
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode]

/**
 * Codes of warnings a successful result carries (`warnings[]` in `--json`): stable like error codes, and
 * kept in this one table with them.
 */
export const WarningCode = {
  /** A `-name` in packages removed nothing: another package pulled `name` back in. */
  removalWithoutEffect: "removal_without_effect",
  /** A profile names a package that its release renamed or dropped (the package changes table, docs/asu.md). */
  packageRenamed: "package_renamed",
  /** A shared cache could not be asked (down, too slow, refusing credentials): nodes were built here. */
  cacheUnavailable: "cache_unavailable",
  /** A shared-cache entry was refused (signature, digest, tree, truncated): the node was built here. */
  substituteRefused: "substitute_refused",
  /** A node built here could not be pushed to the shared cache; the build itself succeeded. */
  cachePushFailed: "cache_push_failed",
} as const
export type WarningCode = (typeof WarningCode)[keyof typeof WarningCode]

/** One located problem in a YAML or config file: what an editor or a person jumps to. */
export interface Diagnostic {
  readonly file: string
  readonly line: number
  readonly column: number
  /** Field path inside the document, e.g. `files[2].mode`; empty for the document itself. */
  readonly path: string
  readonly message: string
  readonly hint?: string | undefined
}

export const formatDiagnostic = (d: Diagnostic): string =>
  `${d.file}:${d.line}:${d.column}: ${d.path ? `${d.path}: ` : ""}${d.message}${d.hint ? ` — ${d.hint}` : ""}`

export type ProfileErrorCode =
  | "profile_yaml_syntax"
  | "profile_unknown_key"
  | "profile_invalid_value"
  | "profile_missing_field"
  | "profile_invalid_package"
  | "profile_parent_missing"
  | "profile_extends_cycle"
  | "profile_secret_reference_invalid"
  | "profile_secret_undefined"
  | "profile_secret_inline"
  | "profile_kind_mismatch"
  | "profile_path_escape"
  | "profile_link_dangling"
  | "profile_overlay_missing"
  | "profile_invalid_id"
  | "profile_too_large"

/** A profile that cannot be loaded or resolved. Carries every problem found, first one first. */
export class ProfileInvalidError extends Data.TaggedError("ProfileInvalidError")<{
  readonly code: ProfileErrorCode
  readonly diagnostics: ReadonlyArray<Diagnostic>
}> {
  readonly exitCode = ExitCode.invalid
  override get message(): string {
    return this.diagnostics.map(formatDiagnostic).join("\n")
  }
}

export class ConfigInvalidError extends Data.TaggedError("ConfigInvalidError")<{
  readonly source: string
  readonly detail: string
}> {
  readonly code = "config_invalid"
  readonly exitCode = ExitCode.invalid
  override get message(): string {
    return `invalid configuration (${this.source}): ${this.detail}`
  }
}

export class SecretUnavailableError extends Data.TaggedError("SecretUnavailableError")<{
  readonly profile: string
  readonly secret: string
  readonly reference: string
  readonly reason: string
}> {
  readonly code = "secret_unavailable"
  readonly exitCode = ExitCode.invalid
  override get message(): string {
    return `secret \`${this.secret}\` of profile ${this.profile} (${this.reference}) is unavailable: ${this.reason}`
  }
}

/**
 * A secret whose `env:` variable is not set. `source` is the profile id (or `graph.config.ts`), `field` the
 * field that names the variable (`secrets.wifi_key`, `secretsKey`).
 */
export class SecretMissingError extends Data.TaggedError("SecretMissingError")<{
  readonly source: string
  readonly field: string
  readonly variable: string
}> {
  readonly code = "secret_missing"
  readonly exitCode = ExitCode.invalid
  /** Why it cannot be read, as the other secret errors say it. */
  get reason(): string {
    return `environment variable ${this.variable} is not set`
  }
  override get message(): string {
    const where = this.source.endsWith(".ts") ? this.source : `profile ${this.source}`
    return `${where}: ${this.field} names the environment variable ${this.variable}, which is not set (set it to the secret's value)`
  }
}

/** A secret whose value cannot be used safely: not a regular file, too large, or too short to redact. */
export class SecretInvalidError extends Data.TaggedError("SecretInvalidError")<{
  readonly profile: string
  readonly secret: string
  readonly reference: string
  readonly reason: string
}> {
  readonly code = "secret_invalid"
  readonly exitCode = ExitCode.invalid
  override get message(): string {
    return `secret \`${this.secret}\` of profile ${this.profile} (${this.reference}) is refused: ${this.reason}`
  }
}

export class ProfileNotFoundError extends Data.TaggedError("ProfileNotFoundError")<{
  readonly profile: string
  readonly known: ReadonlyArray<string>
  readonly suggestion?: string | undefined
}> {
  readonly code = "profile_not_found"
  readonly exitCode = ExitCode.notFound
  override get message(): string {
    const hint = this.suggestion ? ` — did you mean \`${this.suggestion}\`?` : ""
    return `no profile \`${this.profile}\`${hint} (known: ${this.known.join(", ") || "none"})`
  }
}

export class RevisionNotFoundError extends Data.TaggedError("RevisionNotFoundError")<{
  readonly profile: string
  readonly rev: string
  readonly detail: string
}> {
  readonly code = "revision_not_found"
  readonly exitCode = ExitCode.notFound
  override get message(): string {
    return `${this.profile}@${this.rev}: ${this.detail}`
  }
}

export class RevisionAmbiguousError extends Data.TaggedError("RevisionAmbiguousError")<{
  readonly profile: string
  readonly rev: string
  readonly candidates: ReadonlyArray<string>
}> {
  readonly code = "revision_ambiguous"
  readonly exitCode = ExitCode.usage
  override get message(): string {
    return `${this.profile}@${this.rev} is ambiguous: it matches ${this.candidates.join(", ")}; give more characters`
  }
}

export class UsageError extends Data.TaggedError("UsageError")<{ readonly detail: string }> {
  readonly code = "usage"
  readonly exitCode = ExitCode.usage
  override get message(): string {
    return this.detail
  }
}

export class DatabaseError extends Data.TaggedError("DatabaseError")<{
  readonly operation: string
  readonly cause: unknown
  /** The database file, when known (named by `store_full`). */
  readonly file?: string | undefined
}> {
  /** SQLITE_FULL: the disk (or quota) is full, which is `store_full`, not a database fault. */
  readonly noSpace = noSpaceIn(this.cause, this.file)
  get code(): "database_error" | "store_full" {
    return this.noSpace ? "store_full" : "database_error"
  }
  get exitCode(): ExitCode {
    return this.noSpace ? storeFullExitCode : ExitCode.internal
  }
  override get message(): string {
    if (this.noSpace) return storeFullMessage(this.noSpace, `database ${this.operation}`)
    return `database ${this.operation} failed: ${describeCause(this.cause)}`
  }
}

export class DatabaseBusyError extends Data.TaggedError("DatabaseBusyError")<{
  readonly operation: string
  readonly file: string
}> {
  readonly code = "database_busy"
  readonly exitCode = ExitCode.busy
  override get message(): string {
    return `database ${this.file} stayed locked by another process during ${this.operation}; try again`
  }
}

/**
 * The records' PostgreSQL database (`database: postgres://…`) could not be reached, refused the login, or
 * dropped the connection. The URL is shown without its password.
 */
export class DatabaseUnavailableError extends Data.TaggedError("DatabaseUnavailableError")<{
  readonly url: string
  readonly operation: string
  readonly detail: string
}> {
  readonly code = "database_unavailable"
  readonly exitCode = ExitCode.unavailable
  override get message(): string {
    return `database ${this.url} (${this.operation}): ${this.detail}`
  }
}

export class GitError extends Data.TaggedError("GitError")<{
  readonly args: ReadonlyArray<string>
  readonly detail: string
}> {
  readonly code = "git_failed"
  readonly exitCode = ExitCode.internal
  override get message(): string {
    return `git ${this.args.join(" ")} failed: ${this.detail}`
  }
}

export class InternalError extends Data.TaggedError("InternalError")<{ readonly cause: unknown }> {
  /** ENOSPC/EDQUOT from a file operation or a tool: a full disk is `store_full`, not a bug. */
  readonly noSpace = noSpaceIn(this.cause)
  get code(): "internal" | "store_full" {
    return this.noSpace ? "store_full" : "internal"
  }
  get exitCode(): ExitCode {
    return this.noSpace ? storeFullExitCode : ExitCode.internal
  }
  override get message(): string {
    if (this.noSpace) return storeFullMessage(this.noSpace, describeCause(this.cause))
    return `internal error: ${describeCause(this.cause)}`
  }
}

/**
 * A full disk (or quota) is "unavailable" (exit 5), like the network when offline: a resource owrt needs is
 * missing on this machine, the profile and upstream are not to blame (not 6 or 7), it is no bug (not 70),
 * and retrying will not help until someone acts (free space: `owrt store gc`, `owrt builders prune`).
 */
export const storeFullExitCode = ExitCode.unavailable

/** Where space ran out and how much is left there now. */
export interface NoSpace {
  readonly path: string | undefined
  readonly freeBytes: number | undefined
}

/**
 * The store this process opened (set when its database opens): where a full disk is reported when the
 * failing operation did not name a path (a bare `write`).
 */
export const storeLocation: { path: string | undefined } = { path: undefined }

const noSpaceCodes = new Set(["ENOSPC", "EDQUOT", "SQLITE_FULL"])
const noSpaceText = /No space left on device|Disk quota exceeded|database or disk is full/i

/** Bytes available to this process on the file system holding `path` (its nearest existing ancestor). */
export const freeBytesAt = (path: string): number | undefined => {
  let current = path
  for (let depth = 0; depth < 64; depth++) {
    try {
      const stats = statfsSync(current)
      return stats.bavail * stats.bsize
    } catch {
      const parent = dirname(current)
      if (parent === current) return undefined
      current = parent
    }
  }
  return undefined
}

/** A no-space condition anywhere in a cause chain (error codes, or a tool's "No space left on device"). */
export const noSpaceIn = (cause: unknown, fallbackPath?: string): NoSpace | undefined => {
  let current: unknown = cause
  for (let depth = 0; depth < 5 && typeof current === "object" && current !== null; depth++) {
    const fields = current as { code?: unknown; path?: unknown; message?: unknown; stderr?: unknown }
    const text = `${String(fields.message ?? "")}\n${fields.stderr === undefined ? "" : String(fields.stderr)}`
    if ((typeof fields.code === "string" && noSpaceCodes.has(fields.code)) || noSpaceText.test(text)) {
      const path =
        typeof fields.path === "string"
          ? fields.path
          : (pathInNoSpaceMessage(text) ?? fallbackPath ?? storeLocation.path)
      return { path, freeBytes: path === undefined ? undefined : freeBytesAt(path) }
    }
    current = "cause" in current ? (current as { cause: unknown }).cause : undefined
  }
  return undefined
}

/** The path a tool names on its "No space left on device" line (`cp: error writing '/x': No space…`). */
export const pathInNoSpaceMessage = (text: string): string | undefined => {
  for (const line of text.split("\n")) {
    if (!noSpaceText.test(line)) continue
    // The curly quotes are escaped: the bundle stays ASCII (bin/owrt.cjs reads it as latin1, see bundle.mjs).
    const quoted = /['\u2018"`](\/[^'\u2019"`]+)['\u2019"`]/.exec(line)
    if (quoted?.[1]) return quoted[1]
    const bare = /(\/[^\s:]+):/.exec(line)
    if (bare?.[1]) return bare[1]
  }
  return undefined
}

const formatFree = (bytes: number | undefined): string =>
  bytes === undefined
    ? "free space unknown"
    : bytes >= 1024 ** 3
      ? `${(bytes / 1024 ** 3).toFixed(1)} GiB free`
      : `${(bytes / 1024 ** 2).toFixed(1)} MiB free`

const storeFullMessage = (space: NoSpace, during: string): string =>
  `no space left on the file system of ${space.path ?? "the store"} (${formatFree(space.freeBytes)}) during ${during}; free space (owrt store gc, owrt builders prune) or give the store more room, then run again`

/**
 * The disk holding the store (or a build's scratch space) is full: fetching, building, publishing or
 * recording stopped. Nothing partial was published; the build's locks were released.
 */
export class StoreFullError extends Data.TaggedError("StoreFullError")<{
  readonly path: string
  readonly freeBytes: number | undefined
  readonly operation: string
}> {
  readonly code = "store_full"
  readonly exitCode = storeFullExitCode
  override get message(): string {
    return storeFullMessage({ path: this.path, freeBytes: this.freeBytes }, this.operation)
  }
}

/** A one-line account of a cause, following nested causes (driver errors wrap the useful message). */
export class NotPublishedError extends Data.TaggedError("NotPublishedError")<{
  readonly what: "release" | "target" | "builder"
  readonly release: string
  readonly target?: string | undefined
  readonly url: string
}> {
  get code(): "release_not_published" | "target_not_published" | "builder_not_published" {
    return `${this.what}_not_published`
  }
  readonly exitCode = ExitCode.unavailable
  override get message(): string {
    const subject =
      this.what === "release"
        ? `release ${this.release} is not published upstream (yet)`
        : this.what === "target"
          ? `target ${this.target} is not published for release ${this.release}`
          : `no Image Builder is published for ${this.release} ${this.target}`
    return `${subject} (${this.url})`
  }
}

export class OfflineError extends Data.TaggedError("OfflineError")<{ readonly detail: string }> {
  readonly code = "offline_not_cached"
  readonly exitCode = ExitCode.unavailable
  override get message(): string {
    return `offline, and ${this.detail} is not cached; run once online first`
  }
}

export class DownloadError extends Data.TaggedError("DownloadError")<{
  readonly url: string
  readonly detail: string
  readonly attempts: number
}> {
  readonly code = "download_failed"
  readonly exitCode = ExitCode.integrity
  override get message(): string {
    return `download of ${this.url} failed after ${this.attempts} attempt(s): ${this.detail}`
  }
}

export class ChecksumMismatchError extends Data.TaggedError("ChecksumMismatchError")<{
  readonly url: string
  readonly expected: string
  readonly actual: string
  /** Where the expected digest comes from; the signed sha256sums unless said. */
  readonly against?: string | undefined
}> {
  readonly code = "checksum_mismatch"
  readonly exitCode = ExitCode.integrity
  override get message(): string {
    return `${this.url}: SHA-256 ${this.actual} does not match ${this.against ?? "the signed sha256sums"} (${this.expected}); nothing was stored`
  }
}

export class SignatureError extends Data.TaggedError("SignatureError")<{
  readonly kind: "unknown_key" | "invalid" | "missing"
  readonly url: string
  readonly keyId?: string | undefined
  readonly keyring: string
  readonly detail?: string | undefined
  /** For `unknown_key`: a keyring file that explains the miss (named by the signer's id, or holding its key). */
  readonly keyringFile?: { readonly name: string; readonly keyId: string } | undefined
}> {
  get code(): "signature_unknown_key" | "signature_invalid" | "signature_missing" {
    return `signature_${this.kind}`
  }
  readonly exitCode = ExitCode.integrity
  override get message(): string {
    const file = this.keyringFile
    if (this.kind === "unknown_key" && file !== undefined && file.name === this.keyId) {
      return `${this.url} is signed by key ${this.keyId}, but the keyring file ${this.keyring}/${file.name} holds another key, ${file.keyId}; put key ${this.keyId}'s usign public key in that file if you trust it (and key ${file.keyId} in a file named ${file.keyId})`
    }
    if (this.kind === "unknown_key" && file !== undefined) {
      return `${this.url} is signed by key ${this.keyId}, which the keyring ${this.keyring} holds in a file named ${file.name}; a key is trusted only from a file named by its id: rename that file to ${this.keyId}`
    }
    if (this.kind === "unknown_key") {
      return `${this.url} is signed by key ${this.keyId}, which is not in the keyring ${this.keyring}; add the key (a usign public key file named ${this.keyId}) if you trust it`
    }
    if (this.kind === "missing") return `${this.url} has no usable signature: ${this.detail ?? "missing"}`
    return `${this.url}: signature by key ${this.keyId} does not verify${this.detail ? ` (${this.detail})` : ""}; the file was altered or the key is wrong`
  }
}

export class UnsafeArchiveError extends Data.TaggedError("UnsafeArchiveError")<{
  readonly url: string
  readonly entry: string
  readonly reason: string
}> {
  readonly code = "archive_unsafe"
  readonly exitCode = ExitCode.integrity
  override get message(): string {
    return `${this.url} is refused: entry \`${this.entry}\`: ${this.reason}; nothing was stored`
  }
}

export class ArchiveCorruptError extends Data.TaggedError("ArchiveCorruptError")<{
  readonly url: string
  readonly detail: string
}> {
  readonly code = "archive_corrupt"
  readonly exitCode = ExitCode.integrity
  override get message(): string {
    return `${this.url} could not be unpacked: ${this.detail}; nothing was stored`
  }
}

export class LockTimeoutError extends Data.TaggedError("LockTimeoutError")<{
  readonly lock: string
  readonly holder: string
  readonly seconds: number
}> {
  readonly code = "lock_timeout"
  readonly exitCode = ExitCode.busy
  override get message(): string {
    return `waited ${this.seconds}s for ${this.lock}, still held by ${this.holder}`
  }
}

/** A device profile a "did you mean" offers, with the title `make info` gives it. */
export interface DeviceSuggestion {
  readonly id: string
  readonly title: string | null
}

export class DeviceProfileUnknownError extends Data.TaggedError("DeviceProfileUnknownError")<{
  readonly profile: string
  readonly device: string
  /** `<release> <target>`, as `owrt builders devices` takes them. */
  readonly builder: string
  /** Only spelling-level neighbours (case, separators, a typo in a word): never other hardware. */
  readonly suggestions: ReadonlyArray<DeviceSuggestion>
}> {
  readonly code = "device_profile_unknown"
  readonly exitCode = ExitCode.invalid
  override get message(): string {
    const hint =
      this.suggestions.length > 0
        ? ` — did you mean ${this.suggestions.map((s) => `\`${s.id}\`${s.title ? ` (${s.title})` : ""}`).join(" or ")}?`
        : ""
    return `profile ${this.profile}: device \`${this.device}\` is not a device profile of ${this.builder}${hint} (list them: owrt builders devices ${this.builder})`
  }
}

/**
 * One reason a package selection cannot be installed, as opkg or apk gave it. `package` is the package the
 * package manager failed on; `requestedAs` the entry of the selection that pulled it in, when another.
 */
export type PackageProblem =
  | {
      readonly kind: "unknown"
      readonly package: string
      /** A close name in the builder's package index, or the package's new name after a rename. */
      readonly suggestion?: string | undefined
      readonly renamed?: boolean | undefined
    }
  | {
      readonly kind: "dependency"
      readonly package: string
      readonly missing: ReadonlyArray<string>
      readonly requestedAs?: string | undefined
    }
  | {
      readonly kind: "conflict"
      readonly package: string
      readonly with: string
      readonly requestedAs?: string | undefined
      /** `-name` entries that resolve it. */
      readonly fix: ReadonlyArray<string>
    }
  | {
      readonly kind: "file_clash"
      readonly package: string
      /** The installed package that owns the files. */
      readonly owner: string
      /** Paths in the image. */
      readonly files: ReadonlyArray<string>
      readonly requestedAs?: string | undefined
      readonly fix: ReadonlyArray<string>
    }
  | { readonly kind: "cannot_install"; readonly package: string }

const quote = (name: string) => `\`${name}\``

const fixText = (fix: ReadonlyArray<string>, keep: string): string =>
  fix.length === 1
    ? `; add \`-${fix[0]}\` to packages to use ${keep} instead`
    : fix.length > 1
      ? `; add ${fix.map((f) => `\`-${f}\``).join(" or ")} to packages`
      : "; keep only one of them in packages"

const via = (problem: { readonly requestedAs?: string | undefined }) =>
  problem.requestedAs ? ` (needed by ${quote(problem.requestedAs)})` : ""

export const describePackageProblem = (p: PackageProblem): string => {
  switch (p.kind) {
    case "unknown":
      return `no package ${quote(p.package)} in the builder's package feeds${
        p.suggestion === undefined
          ? ""
          : p.renamed
            ? ` — it is called ${quote(p.suggestion)} in this release`
            : ` — did you mean ${quote(p.suggestion)}?`
      }`
    case "dependency":
      return `${quote(p.package)}${via(p)} depends on ${p.missing.map(quote).join(", ")}, which no package feed of the builder provides`
    case "conflict":
      return `${quote(p.package)}${via(p)} conflicts with ${quote(p.with)}${fixText(p.fix, quote(p.fix[0] === p.with ? p.package : p.with))}`
    case "file_clash": {
      const [first, ...more] = p.files
      const files = `${first ?? "the same files"}${more.length > 0 ? ` (and ${more.length} more file${more.length > 1 ? "s" : ""})` : ""}`
      return `${quote(p.package)}${via(p)} and ${quote(p.owner)} both install ${files}${fixText(p.fix, quote(p.fix[0] === p.owner ? p.package : p.owner))}`
    }
    case "cannot_install":
      return `cannot install ${quote(p.package)}`
  }
}

export class PackageSelectionError extends Data.TaggedError("PackageSelectionError")<{
  readonly profile: string
  readonly problems: ReadonlyArray<PackageProblem>
  /** The last lines of make's output, for a selection the problems do not explain. */
  readonly detail: string
  /** The build record whose log holds make's full output. */
  readonly buildId?: number | undefined
  /** Package feeds the package manager left out (a signature that did not verify, a download that failed). */
  readonly feedsLeftOut?: ReadonlyArray<string> | undefined
}> {
  readonly code = "package_selection_invalid"
  readonly exitCode = ExitCode.buildFailed
  override get message(): string {
    const reasons = this.problems.map(describePackageProblem).join("; ")
    const feeds =
      this.feedsLeftOut === undefined || this.feedsLeftOut.length === 0
        ? ""
        : `; package feeds left out: ${this.feedsLeftOut.join("; ")}`
    const log = this.buildId === undefined ? "" : ` (full log: owrt builds log ${this.buildId})`
    return `profile ${this.profile}: impossible package selection: ${reasons || this.detail}${feeds}${log}`
  }
}

export class ImageTooBigError extends Data.TaggedError("ImageTooBigError")<{
  readonly profile: string
  readonly images: ReadonlyArray<{ readonly name: string; readonly size: number; readonly limit: number }>
}> {
  readonly code = "image_too_big"
  readonly exitCode = ExitCode.buildFailed
  override get message(): string {
    const list = this.images.map((i) => `${i.name} (${i.size} > ${i.limit} bytes)`).join(", ")
    return `profile ${this.profile}: image too big for the device, so the Image Builder deleted it: ${list}; remove packages or files`
  }
}

export class ImageMissingError extends Data.TaggedError("ImageMissingError")<{
  readonly profile: string
  readonly missing: ReadonlyArray<string>
  readonly detail: string
}> {
  readonly code = "image_missing"
  readonly exitCode = ExitCode.buildFailed
  override get message(): string {
    return `profile ${this.profile}: expected images were not produced: ${this.missing.join(", ") || "none listed"} (${this.detail})`
  }
}

export class BuildFailedError extends Data.TaggedError("BuildFailedError")<{
  readonly profile: string
  readonly step: string
  readonly exit: number | null
  readonly logTail: string
  readonly timedOut?: boolean | undefined
}> {
  get code(): "build_failed" | "build_timeout" {
    return this.timedOut ? "build_timeout" : "build_failed"
  }
  readonly exitCode = ExitCode.buildFailed
  override get message(): string {
    const how = this.timedOut ? "timed out" : `exited with ${this.exit}`
    return `profile ${this.profile}: \`${this.step}\` ${how}${this.logTail ? `\n${this.logTail}` : ""}`
  }
}

/**
 * A Raspberry Pi OS base image that cannot be used: it does not decompress (truncated, not xz/zstd), or its
 * partition table is not the boot FAT + root ext4 layout Raspberry Pi OS images have. Nothing is stored.
 */
export class BaseImageInvalidError extends Data.TaggedError("BaseImageInvalidError")<{
  readonly image: string
  readonly detail: string
}> {
  readonly code = "base_image_invalid"
  readonly exitCode = ExitCode.integrity
  override get message(): string {
    return `base image ${this.image} is refused: ${this.detail}; nothing was stored`
  }
}

export class ArtifactVerificationError extends Data.TaggedError("ArtifactVerificationError")<{
  readonly profile: string
  readonly detail: string
}> {
  readonly code = "artifact_verification_failed"
  readonly exitCode = ExitCode.integrity
  override get message(): string {
    return `profile ${this.profile}: artifacts do not check out: ${this.detail}`
  }
}

export class AuditMismatchError extends Data.TaggedError("AuditMismatchError")<{
  readonly profile: string
  readonly differing: ReadonlyArray<string>
}> {
  readonly code = "audit_mismatch"
  readonly exitCode = ExitCode.integrity
  override get message(): string {
    return `profile ${this.profile} is not reproducible: ${this.differing.length} file(s) differ: ${this.differing.join(", ")}`
  }
}

export class StoreDriftError extends Data.TaggedError("StoreDriftError")<{
  readonly paths: ReadonlyArray<{ readonly path: string; readonly files: ReadonlyArray<string> }>
}> {
  readonly code = "store_drift"
  readonly exitCode = ExitCode.integrity
  override get message(): string {
    return `${this.paths.length} store path(s) changed since they were made (now invalid; the next realize rebuilds them): ${this.paths
      .map((p) => `${p.path} [${p.files.slice(0, 5).join(", ")}${p.files.length > 5 ? ", …" : ""}]`)
      .join("; ")}`
  }
}

export class NotFoundError extends Data.TaggedError("NotFoundError")<{
  readonly what: string
  readonly detail: string
}> {
  readonly code = "not_found"
  readonly exitCode = ExitCode.notFound
  override get message(): string {
    return `${this.what}: ${this.detail}`
  }
}

/**
 * An ASU build request the server will not build (asu-api.md §4): `detail` is upstream's text, which ASU
 * clients show as it is (HTTP 400 `{"detail", "status"}`).
 */
export class AsuRequestRejectedError extends Data.TaggedError("AsuRequestRejectedError")<{
  readonly detail: string
}> {
  readonly code = "asu_request_rejected"
  readonly exitCode = ExitCode.usage
  override get message(): string {
    return this.detail
  }
}

/** More ASU builds are waiting than the server accepts (`max_pending_jobs`; HTTP 529 as upstream). */
export class AsuQueueFullError extends Data.TaggedError("AsuQueueFullError")<{
  readonly queued: number
}> {
  readonly code = "asu_queue_full"
  readonly exitCode = ExitCode.busy
  override get message(): string {
    return `server overload, queue contains too many build requests: ${this.queued}`
  }
}

/** A pre-flight safety check said no: nothing was written. `code` names the check (flash_*). */
export class FlashRefusedError extends Data.TaggedError("FlashRefusedError")<{
  readonly code: string
  readonly device: string
  readonly reason: string
}> {
  readonly exitCode = ExitCode.flashRefused
  override get message(): string {
    return this.reason
  }
}

/** What a `--verify-only` compared the card with, and what the records say was last written to it. */
export interface VerifyOnlyContext {
  readonly image: string
  /** The last write to this card recorded in this store, if any. */
  readonly lastWrite?:
    | {
        readonly flashId: number
        readonly status: string
        /** It wrote this very image (same SHA-256) and finished writing. */
        readonly sameImage: boolean
      }
    | undefined
}

/**
 * What was read back from the card is not what was written (or the card failed a write): the card is
 * suspect. Offsets are bytes from the start of the device. A `--verify-only` check (`verifyOnly`) finds
 * the card holding different data: that makes it suspect only when the records say this image was the
 * last one written to it (`flash_verify_mismatch`); otherwise the card simply holds something else
 * (`flash_card_differs`).
 */
export class FlashMismatchError extends Data.TaggedError("FlashMismatchError")<{
  readonly device: string
  readonly firstBadOffset: number
  readonly badBytes: number
  readonly detail: string
  readonly verifyOnly?: VerifyOnlyContext | undefined
}> {
  /** Whether this mismatch says the card failed to keep what was written to it. */
  get suspect(): boolean {
    return this.verifyOnly === undefined || this.verifyOnly.lastWrite?.sameImage === true
  }
  get code(): "flash_verify_mismatch" | "flash_card_differs" {
    return this.suspect ? "flash_verify_mismatch" : "flash_card_differs"
  }
  readonly exitCode = ExitCode.flashMismatch
  override get message(): string {
    const where = `first difference at byte ${this.firstBadOffset}, ${this.badBytes} byte(s) differ (${this.detail})`
    if (this.verifyOnly === undefined) {
      return `${this.device} does not hold what was written: ${where}; the card is recorded as suspect — do not trust it`
    }
    const last = this.verifyOnly.lastWrite
    const verdict =
      last === undefined
        ? "no write to this card is recorded in this store, so it is not marked suspect"
        : last.sameImage
          ? `the last write to it recorded here (flash #${last.flashId}) was of this image, so the card did not keep it: it is recorded as suspect — do not trust it`
          : last.status === "succeeded" || last.status === "mismatch"
            ? `the last write to it recorded here (flash #${last.flashId}) was of another image, so it is not marked suspect`
            : `the last write to it recorded here (flash #${last.flashId}) ended ${last.status}, so it is not marked suspect`
    return `the card ${this.device} holds different data than ${this.verifyOnly.image}: ${where}; ${verdict}`
  }
}

/** Writing to or reading from the card failed at the device level (removed, I/O error). */
export class FlashIoError extends Data.TaggedError("FlashIoError")<{
  readonly device: string
  readonly operation: string
  readonly offset: number
  readonly cause: unknown
}> {
  readonly code = "flash_io_error"
  readonly exitCode = ExitCode.flashMismatch
  override get message(): string {
    return `${this.operation} ${this.device} failed at byte ${this.offset}: ${describeCause(this.cause)}; the card is recorded as suspect`
  }
}

/** The image to flash cannot be read or is not an image (corrupt gzip, empty, unknown artifact). */
export class FlashImageError extends Data.TaggedError("FlashImageError")<{
  readonly source: string
  readonly detail: string
}> {
  readonly code = "flash_image_invalid"
  readonly exitCode = ExitCode.invalid
  override get message(): string {
    return `${this.source}: ${this.detail}`
  }
}

/** `owrt serve` asked to listen beyond this machine without a token: anyone on the network could build. */
export class ServeTokenRequiredError extends Data.TaggedError("ServeTokenRequiredError")<{
  readonly host: string
}> {
  readonly code = "serve_token_required"
  readonly exitCode = ExitCode.usage
  override get message(): string {
    return `refusing to listen on ${this.host} without a token: every client on the network could build and download; pass --token <secret> (or OWRT_SERVE_TOKEN), or bind to 127.0.0.1`
  }
}

export const describeCause = (cause: unknown): string => {
  const parts: Array<string> = []
  let current: unknown = cause
  for (let depth = 0; depth < 5 && current !== undefined && current !== null; depth++) {
    const text =
      current instanceof Error || (typeof current === "object" && "message" in current)
        ? String((current as { message: unknown }).message).trim()
        : typeof current === "string"
          ? current
          : JSON.stringify(current)
    if (text && !parts.includes(text)) parts.push(text)
    current =
      typeof current === "object" && "cause" in current ? (current as { cause: unknown }).cause : undefined
  }
  return parts.join(": ") || "unknown cause"
}

/** A shared-cache entry or signing key that fails the signature check: the entry is refused, never stored. */
export class CacheSignatureError extends Data.TaggedError("CacheSignatureError")<{
  readonly kind: "untrusted" | "invalid" | "missing" | "key_invalid"
  /** What was checked: `oci://host/repo:tag` for an entry, a file or `env:` reference for a key. */
  readonly subject: string
  readonly keyName?: string | undefined
  readonly detail?: string | undefined
}> {
  get code():
    | "cache_signature_untrusted"
    | "cache_signature_invalid"
    | "cache_signature_missing"
    | "cache_key_invalid" {
    return this.kind === "key_invalid" ? "cache_key_invalid" : `cache_signature_${this.kind}`
  }
  readonly exitCode = ExitCode.integrity
  override get message(): string {
    if (this.kind === "untrusted")
      return `${this.subject} is signed by key ${this.keyName}, which is not in cache.trustedKeys; refused`
    if (this.kind === "missing") return `${this.subject} carries no signature; refused`
    if (this.kind === "key_invalid")
      return `${this.subject} is not a usable cache key (expected \`name:base64\`): ${this.detail ?? "malformed"}`
    return `${this.subject}: signature by key ${this.keyName} does not verify${this.detail ? ` (${this.detail})` : ""}; the entry was altered`
  }
}

/** A shared-cache registry that cannot be used: down, too slow, refusing the credentials, or answering nonsense. */
export class CacheRegistryError extends Data.TaggedError("CacheRegistryError")<{
  readonly kind: "unavailable" | "timeout" | "auth" | "protocol"
  /** `oci://host/repo`. */
  readonly registry: string
  readonly detail: string
}> {
  get code():
    | "cache_registry_unavailable"
    | "cache_registry_timeout"
    | "cache_registry_auth"
    | "cache_registry_protocol" {
    return `cache_registry_${this.kind}`
  }
  readonly exitCode = ExitCode.unavailable
  override get message(): string {
    const what =
      this.kind === "unavailable"
        ? "cannot be reached"
        : this.kind === "timeout"
          ? "stopped answering (cache timeout)"
          : this.kind === "auth"
            ? "refused the credentials (cache.credentials)"
            : "gave an unexpected answer"
    return `shared cache ${this.registry} ${what}: ${this.detail}`
  }
}

/**
 * A shared-cache entry whose content does not match what its signed manifest says: a blob whose bytes do
 * not have its digest, a truncated blob, an unsafe or malformed tar, or a tree that unpacks to another
 * digest. Refused; nothing of it is stored.
 */
export class CacheEntryError extends Data.TaggedError("CacheEntryError")<{
  readonly kind: "digest_mismatch" | "truncated" | "unsafe" | "tree_mismatch" | "malformed"
  /** `oci://host/repo:tag`, or a blob in it. */
  readonly subject: string
  readonly detail: string
}> {
  get code():
    | "cache_entry_digest_mismatch"
    | "cache_entry_truncated"
    | "cache_entry_unsafe"
    | "cache_entry_tree_mismatch"
    | "cache_entry_malformed" {
    return `cache_entry_${this.kind}`
  }
  readonly exitCode = ExitCode.integrity
  override get message(): string {
    return `${this.subject} is refused: ${this.detail}; nothing of it was stored`
  }
}

/** `--require-substitutes`: a node that no configured cache holds would have to be built here. */
export class SubstituteMissingError extends Data.TaggedError("SubstituteMissingError")<{
  readonly node: string
  readonly substituters: ReadonlyArray<string>
}> {
  readonly code = "cache_substitute_missing"
  readonly exitCode = ExitCode.unavailable
  override get message(): string {
    const where = this.substituters.length > 0 ? this.substituters.join(", ") : "no substituter is configured"
    return `${this.node} is not in the shared cache (${where}) and --require-substitutes forbids building it here`
  }
}

/** The build farm's database cannot be reached or answered with an error (`executor`, `owrt worker`). */
export class FarmUnavailableError extends Data.TaggedError("FarmUnavailableError")<{
  readonly url: string
  readonly detail: string
}> {
  readonly code = "farm_unavailable"
  readonly exitCode = ExitCode.unavailable
  override get message(): string {
    return `build farm database ${this.url}: ${this.detail}`
  }
}

/** A worker was given a node its own configuration does not compile to (the machines' projects differ). */
export class FarmNodeUnknownError extends Data.TaggedError("FarmNodeUnknownError")<{
  readonly graph: string
  readonly key: string
}> {
  readonly code = "farm_node_unknown"
  readonly exitCode = ExitCode.invalid
  override get message(): string {
    return `${this.graph}: this worker's project does not compile to node ${this.key} (are the coordinator's and the worker's configuration and profiles the same?)`
  }
}

/**
 * A node a farm worker failed to build: the worker's own error (same code and exit code as a local build
 * would have), with the worker's name and the end of its log.
 */
export class FarmBuildError extends Data.TaggedError("FarmBuildError")<{
  readonly node: string
  readonly worker: string
  readonly report: ErrorReport
  readonly log: string
}> {
  get code(): string {
    return this.report.code
  }
  get exitCode(): number {
    return this.report.exitCode
  }
  override get message(): string {
    const log = this.log.trim() === "" ? "" : `\nworker log (end):\n${this.log.trimEnd()}`
    return `${this.report.message} (on worker ${this.worker})${log}`
  }
}

/** Every error a command can end with. Frontends map these to exit codes and JSON, nothing else. */
export type OwrtError =
  | ProfileInvalidError
  | ConfigInvalidError
  | SecretUnavailableError
  | SecretMissingError
  | SecretInvalidError
  | ProfileNotFoundError
  | RevisionNotFoundError
  | RevisionAmbiguousError
  | UsageError
  | DatabaseError
  | DatabaseBusyError
  | DatabaseUnavailableError
  | GitError
  | InternalError
  | NotPublishedError
  | OfflineError
  | DownloadError
  | ChecksumMismatchError
  | SignatureError
  | UnsafeArchiveError
  | ArchiveCorruptError
  | StoreFullError
  | LockTimeoutError
  | DeviceProfileUnknownError
  | PackageSelectionError
  | ImageTooBigError
  | ImageMissingError
  | BuildFailedError
  | BaseImageInvalidError
  | ArtifactVerificationError
  | AuditMismatchError
  | StoreDriftError
  | NotFoundError
  | FlashRefusedError
  | FlashMismatchError
  | FlashIoError
  | FlashImageError
  | ServeTokenRequiredError
  | CacheSignatureError
  | AsuRequestRejectedError
  | AsuQueueFullError
  | CacheRegistryError
  | CacheEntryError
  | SubstituteMissingError
  | OtaVersionTakenError
  | OtaNotifyError
  | OtaSignatureError
  | FarmUnavailableError
  | FarmNodeUnknownError
  | FarmBuildError

/**
 * A version of a device's firmware is published once: publishing other bytes under a version the registry
 * already holds is refused (devices that fetched it must not see it change).
 */
export class OtaVersionTakenError extends Data.TaggedError("OtaVersionTakenError")<{
  readonly repository: string
  readonly version: string
  readonly published: string
  readonly offered: string
}> {
  readonly code = "ota_version_taken"
  readonly exitCode = ExitCode.integrity
  override get message(): string {
    return `${this.repository}:${this.version} is published already with other bytes (${this.published}, not ${this.offered}); publish a new version`
  }
}

/** The MQTT broker did not take a release notice (down, refused the credentials, no acknowledgement). */
export class OtaNotifyError extends Data.TaggedError("OtaNotifyError")<{
  readonly broker: string
  readonly detail: string
}> {
  readonly code = "ota_notify_failed"
  readonly exitCode = ExitCode.unavailable
  override get message(): string {
    return `the release notice could not be sent to ${this.broker}: ${this.detail}`
  }
}

/**
 * A release's cosign signature (ota.md §3): missing (no `sha256-<digest>.sig` tag, or no signed layer),
 * invalid (the signature does not verify with the key, or its payload binds another manifest), or a key that
 * is not an ECDSA P-256 key in PEM.
 */
export class OtaSignatureError extends Data.TaggedError("OtaSignatureError")<{
  readonly kind: "missing" | "invalid" | "key_invalid"
  /** `repository:version` of a release, or the key's file or reference. */
  readonly subject: string
  readonly detail: string
}> {
  get code(): "ota_signature_missing" | "ota_signature_invalid" | "ota_key_invalid" {
    return this.kind === "key_invalid" ? "ota_key_invalid" : `ota_signature_${this.kind}`
  }
  readonly exitCode = ExitCode.integrity
  override get message(): string {
    if (this.kind === "key_invalid") return `${this.subject} is not a usable cosign key: ${this.detail}`
    if (this.kind === "missing") return `${this.subject} is not signed: ${this.detail}`
    return `${this.subject} has no valid signature: ${this.detail}`
  }
}

/** The stable, machine-readable face of an error, as `--json` prints it. */
export interface ErrorReport {
  readonly code: string
  readonly message: string
  readonly exitCode: number
}

export const isOwrtError = (u: unknown): u is OwrtError =>
  typeof u === "object" &&
  u !== null &&
  "code" in u &&
  "exitCode" in u &&
  typeof (u as { code: unknown }).code === "string" &&
  typeof (u as { exitCode: unknown }).exitCode === "number"

export const toErrorReport = (e: OwrtError): ErrorReport => ({
  code: e.code,
  message: e.message,
  exitCode: e.exitCode,
})
