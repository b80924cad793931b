import { Effect } from "effect"
import { fetchBytes } from "../builder/upstream.js"
import { AppConfig } from "../config/appConfig.js"
import type { DownloadError } from "../errors.js"
import { type ProfilesJson, upstreamProfiles } from "./upstreamCatalog.js"

/*
 * The package indexes and per-profile documents ASU serves under /json/v1/ (asu-api.md §1), read from the
 * download server as upstream reads them: a feed's `Packages` (opkg) or `index.json` (apk), kept for ten
 * minutes per process. owut reads the target and architecture indexes to see what it can upgrade.
 */

/** `snapshots` or `releases/<version>`: the only download-server paths the routes take. */
export const isVersionPath = (path: string): boolean =>
  /^(snapshots|releases\/[0-9A-Za-z][0-9A-Za-z.-]*)$/.test(path)

const isName = (name: string) => /^[\w][\w.-]*$/.test(name)

const cacheSeconds = 600
const texts = new Map<string, { readonly at: number; readonly text: string | undefined }>()

/** A file of the download server as text; undefined when it has none. */
const fetchText = (path: string): Effect.Effect<string | undefined, DownloadError, AppConfig> =>
  Effect.gen(function* () {
    const config = yield* AppConfig
    const url = `${config.upstream}/${path}`
    const hit = texts.get(url)
    if (hit && Date.now() - hit.at < cacheSeconds * 1000) return hit.text
    const bytes = yield* fetchBytes(url)
    const text = bytes === undefined ? undefined : Buffer.from(bytes).toString("utf8")
    texts.set(url, { at: Date.now(), text })
    return text
  })

export interface FeedIndex {
  readonly architecture: string
  readonly packages: Readonly<Record<string, string>>
}

/**
 * An opkg `Packages` file as name → version, its architecture that of its first package. A package
 * whose name carries its ABI version (`libubox20240329`) is listed under its plain name, as upstream does.
 */
export const parsePackagesFile = (text: string): FeedIndex => {
  const packages: Record<string, string> = {}
  let architecture = ""
  for (const chunk of text.trim().split(/\n\s*\n/)) {
    const fields = new Map<string, string>()
    for (const line of chunk.split("\n")) {
      const match = /^([A-Za-z0-9-]+):\s?(.*)$/.exec(line)
      if (match?.[1] !== undefined) fields.set(match[1], (match[2] ?? "").trim())
    }
    const name = fields.get("Package")
    const version = fields.get("Version")
    if (name === undefined || version === undefined) continue
    if (architecture === "") architecture = fields.get("Architecture") ?? ""
    const abi = fields.get("ABIVersion")
    packages[abi && name.endsWith(abi) ? name.slice(0, -abi.length) : name] = version
  }
  return { architecture, packages }
}

/** An apk feed's `index.json` as upstream publishes it; undefined when it is not one. */
const parseApkIndex = (text: string): (FeedIndex & Record<string, unknown>) | undefined => {
  try {
    const value = JSON.parse(text) as unknown
    if (typeof value !== "object" || value === null) return undefined
    const { architecture, packages } = value as { architecture?: unknown; packages?: unknown }
    if (typeof architecture !== "string" || typeof packages !== "object" || packages === null)
      return undefined
    for (const version of Object.values(packages)) if (typeof version !== "string") return undefined
    return value as FeedIndex & Record<string, unknown>
  } catch {
    return undefined
  }
}

/** A feed directory's index: its `Packages`, or (apk releases and snapshots) its `index.json`. */
const feedIndex = (dir: string) =>
  Effect.gen(function* () {
    const packages = yield* fetchText(`${dir}/Packages`)
    if (packages !== undefined) return parsePackagesFile(packages)
    const apk = yield* fetchText(`${dir}/index.json`)
    return apk === undefined ? undefined : parseApkIndex(apk)
  })

/** The kernel a target's kmods feed is named after (`kmods/<version>-<release>-<vermagic>`). */
const kernelOf = (profiles: ProfilesJson | undefined): string | undefined => {
  const kernel = profiles?.linux_kernel
  if (typeof kernel !== "object" || kernel === null) return undefined
  const { version, release, vermagic } = kernel as Record<string, unknown>
  return [version, release, vermagic].every((part) => typeof part === "string" && isName(part))
    ? `${version}-${release}-${vermagic}`
    : undefined
}

/**
 * `/json/v1/<path>/targets/<target>/<subtarget>/index.json`: the target feed's architecture and packages,
 * with its kmods feed merged in where kernel modules moved there (24.10 and later, snapshots). `{}` when
 * the download server has no such target.
 */
export const targetPackageIndex = (path: string, target: string, subtarget: string) =>
  Effect.gen(function* () {
    if (!isVersionPath(path) || !isName(target) || !isName(subtarget)) return {}
    const dir = `${path}/targets/${target}/${subtarget}`
    const index = yield* feedIndex(`${dir}/packages`)
    if (index === undefined) return {}
    const version = path === "snapshots" ? "SNAPSHOT" : path.slice("releases/".length)
    const kernel = kernelOf(yield* upstreamProfiles(version, `${target}/${subtarget}`))
    const kmods = kernel === undefined ? undefined : yield* feedIndex(`${dir}/kmods/${kernel}`)
    return kmods === undefined ? index : { ...index, packages: { ...index.packages, ...kmods.packages } }
  })

/** The feeds of a release when the download server lists none (`feeds.conf`). */
const defaultFeeds = ["base", "luci", "packages", "routing", "telephony"]

/**
 * `/json/v1/<path>/packages/<arch>-index.json`: name → version over every feed of an architecture
 * (`feeds.conf` names them), later feeds overriding earlier ones as upstream merges them.
 */
export const archPackageIndex = (path: string, arch: string) =>
  Effect.gen(function* () {
    if (!isVersionPath(path) || !isName(arch)) return {}
    const dir = `${path}/packages/${arch}`
    const conf = yield* fetchText(`${dir}/feeds.conf`)
    const listed = (conf ?? "")
      .split("\n")
      .map((line) => line.trim().split(/\s+/)[1])
      .filter((feed): feed is string => feed !== undefined && isName(feed))
    const packages: Record<string, string> = {}
    for (const feed of listed.length > 0 ? listed : defaultFeeds) {
      const index = yield* feedIndex(`${dir}/${feed}`)
      if (index !== undefined) Object.assign(packages, index.packages)
    }
    return packages
  })

/** `source_date_epoch` as upstream writes `build_at`: UTC, microseconds, `Z`. */
const buildAt = (epoch: unknown): string => {
  const seconds = typeof epoch === "number" ? epoch : Number(epoch ?? 0)
  const date = new Date((Number.isFinite(seconds) ? seconds : 0) * 1000)
  return `${date.toISOString().slice(0, 19)}.000000Z`
}

/**
 * `/json/v1/<path>/targets/<target>/<subtarget>/<profile>.json`: the target's profiles.json without its
 * profile list, merged with that one profile, plus `id` and `build_at`. `{}` when the profile is unknown.
 */
export const profileDocument = (path: string, target: string, subtarget: string, profile: string) =>
  Effect.gen(function* () {
    if (!isVersionPath(path) || !isName(target) || !isName(subtarget) || !isName(profile)) return {}
    const version = path === "snapshots" ? "SNAPSHOT" : path.slice("releases/".length)
    const profiles = yield* upstreamProfiles(version, `${target}/${subtarget}`)
    const entry = profiles?.profiles[profile]
    if (profiles === undefined || entry === undefined) return {}
    const { profiles: _all, ...metadata } = profiles
    return { ...metadata, ...entry, id: profile, build_at: buildAt(profiles.source_date_epoch) }
  })
