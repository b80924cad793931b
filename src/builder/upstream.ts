import { Duration, Effect, Either, Schedule, Schema } from "effect"
import type { ArchiveResolution } from "../db/builderRecords.js"
import { DownloadError, NotPublishedError, SignatureError } from "../errors.js"
import { httpGetBytes } from "./httpGet.js"
import { keyringFiles, loadKeyring } from "./keyring.js"
import { parseSignature, verifySignature } from "./usign.js"

/*
 * The download server's layout (reference §1): /.versions.json, /releases/<ver>/.targets.json and, per
 * target, a signed sha256sums naming the Image Builder archive.
 */

export const isSnapshot = (release: string) => release.toLowerCase() === "snapshot"

export const targetUrl = (upstream: string, release: string, target: string): string =>
  isSnapshot(release)
    ? `${upstream}/snapshots/targets/${target}`
    : `${upstream}/releases/${release}/targets/${target}`

const VersionsJson = Schema.Struct({ versions_list: Schema.Array(Schema.String) })
const TargetsJson = Schema.Record({ key: Schema.String, value: Schema.String })

/** The Image Builder archive a release/target resolves to, as the signed sha256sums names it. */
export type BuilderArchive = ArchiveResolution

export interface FetchPolicy {
  readonly attempts: number
  readonly timeout: Duration.DurationInput
}

export const defaultFetchPolicy: FetchPolicy = { attempts: 4, timeout: Duration.seconds(60) }

/** Retry delays: 0.5 s, 1 s, 2 s … with jitter, so many clients do not retry in step. */
export const retrySchedule = (attempts: number) =>
  Schedule.exponential(Duration.millis(500)).pipe(
    Schedule.jittered,
    Schedule.intersect(Schedule.recurs(attempts - 1)),
  )

const isTransientStatus = (status: number) => status === 408 || status === 429 || status >= 500

class Transient {
  readonly _tag = "Transient"
  constructor(readonly detail: string) {}
}

/**
 * GETs a small file: `undefined` for 404/410 (not published), the bytes otherwise. Network errors and
 * transient statuses are retried with backoff; what still fails is a `DownloadError`.
 */
export const fetchBytes = (
  url: string,
  policy: FetchPolicy = defaultFetchPolicy,
): Effect.Effect<Uint8Array | undefined, DownloadError> => {
  let attempts = 0
  const once = Effect.gen(function* () {
    attempts += 1
    const response = yield* httpGetBytes(url, Duration.toMillis(policy.timeout)).pipe(
      Effect.mapError((error) => new Transient(error.detail)),
    )
    if (response.status === 404 || response.status === 410) return undefined
    if (isTransientStatus(response.status))
      return yield* Effect.fail(new Transient(`HTTP ${response.status}`))
    if (response.status !== 200) {
      return yield* Effect.fail(new DownloadError({ url, detail: `HTTP ${response.status}`, attempts }))
    }
    return response.body
  })
  return once.pipe(
    Effect.retry({ schedule: retrySchedule(policy.attempts), while: (error) => error instanceof Transient }),
    Effect.mapError((error) =>
      error instanceof Transient ? new DownloadError({ url, detail: error.detail, attempts }) : error,
    ),
  )
}

const decodeJson = <A, I>(schema: Schema.Schema<A, I>, url: string, bytes: Uint8Array) =>
  Effect.try({
    try: () => JSON.parse(Buffer.from(bytes).toString("utf8")) as unknown,
    catch: () => new DownloadError({ url, detail: "not valid JSON", attempts: 1 }),
  }).pipe(
    Effect.flatMap((value) =>
      Schema.decodeUnknown(schema)(value).pipe(
        Effect.mapError(
          (error) => new DownloadError({ url, detail: `unexpected content: ${error.message}`, attempts: 1 }),
        ),
      ),
    ),
  )

/** Lines `<sha256> *<path>` of a sha256sums file. */
export const parseSha256Sums = (text: string): ReadonlyMap<string, string> => {
  const sums = new Map<string, string>()
  for (const line of text.split("\n")) {
    const match = /^([0-9a-f]{64}) [ *]?(.+)$/.exec(line.trim())
    if (match?.[1] && match[2]) sums.set(match[2], match[1])
  }
  return sums
}

const imageBuilderPattern = /^openwrt-imagebuilder-[^/]*\.Linux-x86_64\.tar\.(?:zst|xz)$/

/** The signed index of a target: sha256sums and its usign signature, as the download server serves them. */
export interface SignedSums {
  readonly sums: Uint8Array
  readonly sig: Uint8Array
}

/** A resolution, with the signed index it came from (absent when the signature check was skipped). */
export interface ResolvedArchive {
  readonly archive: BuilderArchive
  readonly signed: SignedSums | undefined
}

/**
 * The Image Builder archive a signed sha256sums names, after checking its usign signature against the
 * keyring (fail closed). Where the two files came from does not matter — the download server or a shared
 * cache — only that a key of the keyring signed them. `sig` undefined is the explicit, unsafe opt-out.
 */
export const archiveFromSignedSums = (options: {
  readonly upstream: string
  readonly release: string
  readonly target: string
  readonly keyring: string
  readonly sums: Uint8Array
  readonly sig: Uint8Array | undefined
  readonly skipSignature: boolean
}): Effect.Effect<BuilderArchive, NotPublishedError | SignatureError> =>
  Effect.gen(function* () {
    const { upstream, release, target, keyring, sums, sig } = options
    const base = targetUrl(upstream, release, target)
    const sumsUrl = `${base}/sha256sums`
    let signedBy = "unverified"
    if (!options.skipSignature) {
      const sigUrl = `${sumsUrl}.sig`
      if (sig === undefined)
        return yield* new SignatureError({
          kind: "missing",
          url: sigUrl,
          keyring,
          detail: "no sha256sums.sig",
        })
      const parsed = parseSignature(Buffer.from(sig).toString("utf8"))
      if (!parsed.ok)
        return yield* new SignatureError({ kind: "missing", url: sigUrl, keyring, detail: parsed.reason })
      const key = loadKeyring(keyring).get(parsed.value.keyId)
      if (!key) {
        const signer = parsed.value.keyId
        // A file named by the signer's id that holds another key, else the signer's key under another name.
        const files = keyringFiles(keyring)
        const misfiled =
          files.find((f) => f.name === signer && f.keyId !== signer) ?? files.find((f) => f.keyId === signer)
        return yield* new SignatureError({
          kind: "unknown_key",
          url: sumsUrl,
          keyId: signer,
          keyring,
          keyringFile: misfiled,
        })
      }
      const valid = Either.try(() => verifySignature(sums, parsed.value, key))
      if (Either.isLeft(valid) || !valid.right) {
        return yield* new SignatureError({
          kind: "invalid",
          url: sumsUrl,
          keyId: parsed.value.keyId,
          keyring,
        })
      }
      signedBy = parsed.value.keyId
    }

    const entries = parseSha256Sums(Buffer.from(sums).toString("utf8"))
    const found = [...entries].find(([path]) => imageBuilderPattern.test(path))
    if (!found) return yield* new NotPublishedError({ what: "builder", release, target, url: sumsUrl })
    const [name, sha256] = found
    return { upstream, release, target, name, url: `${base}/${name}`, sha256, signedBy }
  })

/**
 * Resolves release + target to the Image Builder archive and its SHA-256 through the download server,
 * checking the usign signature of sha256sums against the keyring (fail closed). `skipSignature` is the
 * explicit, unsafe opt-out.
 */
export const resolveBuilderArchive = (options: {
  readonly upstream: string
  readonly release: string
  readonly target: string
  readonly keyring: string
  readonly skipSignature: boolean
  readonly policy?: FetchPolicy
}): Effect.Effect<ResolvedArchive, DownloadError | NotPublishedError | SignatureError> =>
  Effect.gen(function* () {
    const { upstream, release, target } = options
    const policy = options.policy ?? defaultFetchPolicy
    const base = targetUrl(upstream, release, target)
    const sumsUrl = `${base}/sha256sums`
    const targetsUrl = `${upstream}/releases/${release}/.targets.json`
    // The three small files are independent: ask for them at once (one round trip, not three).
    const [targets, sums, sig] = yield* Effect.all(
      [
        isSnapshot(release) ? Effect.succeed(undefined) : fetchBytes(targetsUrl, policy),
        fetchBytes(sumsUrl, policy),
        options.skipSignature ? Effect.succeed(undefined) : fetchBytes(`${sumsUrl}.sig`, policy),
      ],
      { concurrency: "unbounded" },
    )
    if (!isSnapshot(release)) {
      if (targets === undefined) {
        const versionsUrl = `${upstream}/.versions.json`
        const versions = yield* fetchBytes(versionsUrl, policy)
        const listed =
          versions !== undefined &&
          (yield* decodeJson(VersionsJson, versionsUrl, versions)).versions_list.includes(release)
        if (!listed) return yield* new NotPublishedError({ what: "release", release, url: targetsUrl })
      } else {
        const map = yield* decodeJson(TargetsJson, targetsUrl, targets)
        if (!(target in map))
          return yield* new NotPublishedError({ what: "target", release, target, url: targetsUrl })
      }
    }
    if (sums === undefined)
      return yield* new NotPublishedError({ what: "target", release, target, url: sumsUrl })
    const archive = yield* archiveFromSignedSums({ ...options, sums, sig })
    return { archive, signed: sig === undefined || options.skipSignature ? undefined : { sums, sig } }
  })
