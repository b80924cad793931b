import { Effect, Schema } from "effect"
import { fetchBytes } from "../builder/upstream.js"
import { AppConfig } from "../config/appConfig.js"
import { DownloadError } from "../errors.js"
import { branchOf, packageChangesData } from "./packageChanges.js"

/*
 * What upstream's download server publishes that ASU validates against (asu-api.md §4): the versions
 * (`/.versions.json`), a version's targets (`.targets.json`) and a target's device profiles
 * (`profiles.json`). Fetched through owrt's one HTTP client and kept for a few minutes per process.
 */

const VersionsJson = Schema.Struct({
  stable_version: Schema.String,
  oldstable_version: Schema.String,
  upcoming_version: Schema.optional(Schema.NullOr(Schema.String)),
  versions_list: Schema.Array(Schema.String),
})
export type VersionsJson = typeof VersionsJson.Type

const TargetsJson = Schema.Record({ key: Schema.String, value: Schema.String })

const ProfileEntry = Schema.Struct({
  supported_devices: Schema.optional(Schema.Array(Schema.String)),
  titles: Schema.optional(Schema.Array(Schema.Unknown)),
  device_packages: Schema.optional(Schema.Array(Schema.String)),
})

/** A target's profiles.json: what is validated against, and the rest kept as it came (merged into bodies). */
const ProfilesJson = Schema.Struct({
  version_code: Schema.String,
  profiles: Schema.Record({ key: Schema.String, value: ProfileEntry }),
})
export type ProfilesJson = typeof ProfilesJson.Type & Record<string, unknown>

const cacheSeconds = 300
const cache = new Map<string, { readonly at: number; readonly value: unknown }>()

/** The download-server path of a version: `snapshots` or `releases/<version>`. */
export const versionPath = (version: string): string =>
  version.toUpperCase() === "SNAPSHOT" ? "snapshots" : `releases/${version}`

const getJson = <A, I>(
  path: string,
  schema: Schema.Schema<A, I>,
): Effect.Effect<A | undefined, DownloadError, AppConfig> =>
  Effect.gen(function* () {
    const config = yield* AppConfig
    const url = `${config.upstream}/${path}`
    const hit = cache.get(url)
    if (hit && Date.now() - hit.at < cacheSeconds * 1000) return hit.value as A | undefined
    const bytes = yield* fetchBytes(url)
    if (bytes === undefined) {
      cache.set(url, { at: Date.now(), value: undefined })
      return undefined
    }
    const value = yield* Effect.try({
      try: () => JSON.parse(Buffer.from(bytes).toString("utf8")) as unknown,
      catch: () => new DownloadError({ url, detail: "not valid JSON", attempts: 1 }),
    })
    const decoded = yield* Schema.decodeUnknown(schema)(value).pipe(
      Effect.mapError(
        (error) => new DownloadError({ url, detail: `unexpected content: ${error.message}`, attempts: 1 }),
      ),
    )
    // Extra fields of profiles.json (arch_packages, linux_kernel, …) are kept for the finished body.
    const kept = (typeof value === "object" && value !== null ? { ...value, ...decoded } : decoded) as A
    cache.set(url, { at: Date.now(), value: kept })
    return kept
  })

export const upstreamVersions = getJson(".versions.json", VersionsJson)

/** The branches this server builds: those of the package changes table. */
export const supportedBranches = (): ReadonlyArray<string> => Object.keys(packageChangesData.branches)

/**
 * The versions requests may name, as upstream lists them: published versions of supported branches, the
 * upcoming one, `<branch>-SNAPSHOT` of each release branch and `SNAPSHOT`.
 */
export const supportedVersions = Effect.map(upstreamVersions, (versions) => {
  const branches = supportedBranches()
  const list = (versions?.versions_list ?? []).filter((v) => branches.includes(branchOf(v)))
  if (versions?.upcoming_version) list.push(versions.upcoming_version)
  for (const branch of branches) if (branch !== "SNAPSHOT") list.push(`${branch}-SNAPSHOT`)
  list.push("SNAPSHOT")
  return [...new Set(list)].sort().reverse()
})

/** target → architecture of a version, or undefined when the version has no `.targets.json`. */
export const upstreamTargets = (version: string) =>
  getJson(`${versionPath(version)}/.targets.json`, TargetsJson)

export const upstreamProfiles = (version: string, target: string) =>
  getJson(`${versionPath(version)}/targets/${target}/profiles.json`, ProfilesJson) as Effect.Effect<
    ProfilesJson | undefined,
    DownloadError,
    AppConfig
  >
