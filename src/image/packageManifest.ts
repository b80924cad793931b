import { sha256Hex } from "../text/digest.js"

/** `name - version` lines (opkg) or `name version` lines (apk), as `make manifest` prints them. */
export const parsePackageManifest = (text: string): ReadonlyArray<{ name: string; version: string }> =>
  text
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line.length > 0)
    .map((line) => {
      const match = /^(\S+) - (\S+)$/.exec(line) ?? /^(\S+) (\S+)$/.exec(line)
      return { name: match?.[1] ?? line, version: match?.[2] ?? "" }
    })

/**
 * Upstream ASU's EXTRA_IMAGE_NAME: the first 12 hex digits of the SHA-256 of the manifest's package names,
 * deduplicated, sorted and joined with spaces.
 */
export const manifestHash = (manifest: string): string =>
  packagesHash(parsePackageManifest(manifest).map((p) => p.name))

/** Upstream's `get_packages_hash`: 12 hex digits of the SHA-256 of the names, deduplicated, sorted, spaced. */
export const packagesHash = (names: ReadonlyArray<string>): string =>
  sha256Hex([...new Set(names)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).join(" ")).slice(0, 12)
