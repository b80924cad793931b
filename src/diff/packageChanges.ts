/*
 * What changed in the installed packages between two realizations, as `nix store diff-closures` reports
 * a closure: packages added, removed, and those whose version changed. Read from the package manifests
 * the artifact sets keep (`name - version` lines the Image Builder wrote), never from the images.
 */

export interface InstalledPackage {
  readonly name: string
  readonly version: string
}

export interface PackageVersionChange {
  readonly name: string
  readonly from: string
  readonly to: string
}

export interface PackageChanges {
  readonly added: ReadonlyArray<InstalledPackage>
  readonly removed: ReadonlyArray<InstalledPackage>
  readonly changed: ReadonlyArray<PackageVersionChange>
  /** Packages installed in both, at the same version. */
  readonly unchanged: number
}

const byName = (a: { readonly name: string }, b: { readonly name: string }) =>
  a.name < b.name ? -1 : a.name > b.name ? 1 : 0

/** Installed packages by name (a manifest lists each once; should one repeat, its last line counts). */
const versions = (packages: ReadonlyArray<InstalledPackage>): ReadonlyMap<string, string> =>
  new Map(packages.map((p) => [p.name, p.version]))

/** The package changes from `from` to `to`, each list sorted by name. */
export const packageChanges = (
  from: ReadonlyArray<InstalledPackage>,
  to: ReadonlyArray<InstalledPackage>,
): PackageChanges => {
  const before = versions(from)
  const after = versions(to)
  const added: Array<InstalledPackage> = []
  const removed: Array<InstalledPackage> = []
  const changed: Array<PackageVersionChange> = []
  let unchanged = 0
  for (const [name, version] of before) {
    const now = after.get(name)
    if (now === undefined) removed.push({ name, version })
    else if (now !== version) changed.push({ name, from: version, to: now })
    else unchanged += 1
  }
  for (const [name, version] of after) if (!before.has(name)) added.push({ name, version })
  return {
    added: added.sort(byName),
    removed: removed.sort(byName),
    changed: changed.sort(byName),
    unchanged,
  }
}
