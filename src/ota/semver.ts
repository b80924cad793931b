/*
 * Semantic versions (semver.org 2.0.0) as OTA tags: a release's tag is its version. A leading `v` is
 * accepted (`v1.2.0` is 1.2.0; OtaFlux silently drops such tags). Build metadata is ignored for ordering.
 */

export interface SemVer {
  readonly major: number
  readonly minor: number
  readonly patch: number
  /** Dot-separated pre-release identifiers; empty for a release. */
  readonly prerelease: ReadonlyArray<string>
  /** The text it was read from (the tag). */
  readonly text: string
}

const pattern =
  /^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/

export const parseSemVer = (text: string): SemVer | undefined => {
  const match = pattern.exec(text)
  if (!match) return undefined
  const [, major = "0", minor = "0", patch = "0", pre] = match
  const numbers = [Number(major), Number(minor), Number(patch)]
  if (!numbers.every(Number.isSafeInteger)) return undefined
  return {
    major: Number(major),
    minor: Number(minor),
    patch: Number(patch),
    prerelease: pre === undefined ? [] : pre.split("."),
    text,
  }
}

const numeric = /^\d+$/

const compareIdentifiers = (a: string, b: string): number => {
  const an = numeric.test(a)
  const bn = numeric.test(b)
  if (an && bn) return Math.sign(Number(a) - Number(b))
  if (an) return -1
  if (bn) return 1
  return a < b ? -1 : a > b ? 1 : 0
}

/** Precedence as semver.org §11: a release outranks its pre-releases. */
export const compareSemVer = (a: SemVer, b: SemVer): number => {
  for (const key of ["major", "minor", "patch"] as const)
    if (a[key] !== b[key]) return Math.sign(a[key] - b[key])
  if (a.prerelease.length === 0 || b.prerelease.length === 0)
    return Math.sign(b.prerelease.length - a.prerelease.length)
  for (let i = 0; i < Math.max(a.prerelease.length, b.prerelease.length); i++) {
    const x = a.prerelease[i]
    const y = b.prerelease[i]
    if (x === undefined) return -1
    if (y === undefined) return 1
    const order = compareIdentifiers(x, y)
    if (order !== 0) return order
  }
  return 0
}

/**
 * Whether a version is offered on `channel`: releases on every channel; a pre-release only on the channel
 * its first identifier names (`1.3.0-beta.2` on `beta`), or on every channel with `any`.
 */
export const onChannel = (version: SemVer, channel: string): boolean =>
  version.prerelease.length === 0 || channel === "any" || version.prerelease[0] === channel

/** The highest version of `tags` offered on `channel`, or undefined. */
export const latestVersion = (tags: ReadonlyArray<string>, channel: string): SemVer | undefined => {
  let best: SemVer | undefined
  for (const tag of tags) {
    const version = parseSemVer(tag)
    if (version === undefined || !onChannel(version, channel)) continue
    if (best === undefined || compareSemVer(version, best) > 0) best = version
  }
  return best
}

/** The version without a leading `v` (what `/version` answers). */
export const versionText = (version: SemVer): string => version.text.replace(/^v/, "")
