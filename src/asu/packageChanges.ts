import { Schema } from "effect"
import { WarningCode } from "../errors.js"
import data from "./packageChanges.json" with { type: "json" }

/*
 * Package renames and additions across OpenWrt releases (asu-api.md §8), from the one data file
 * packageChanges.json. Applied to an ASU request's packages before it compiles to a profile, and
 * published per branch in overview.json (owut reads them there).
 */

export const PackageChange = Schema.Struct({
  source: Schema.String,
  target: Schema.optional(Schema.String),
  revision: Schema.Number,
  mandatory: Schema.optional(Schema.Boolean),
})
export type PackageChange = typeof PackageChange.Type

const PackageChangesData = Schema.Struct({
  branches: Schema.Record({
    key: Schema.String,
    value: Schema.Struct({ branch_off_rev: Schema.NullOr(Schema.Number) }),
  }),
  changes: Schema.Array(PackageChange),
  additions: Schema.Array(
    Schema.Struct({
      branch: Schema.String,
      target: Schema.String,
      devices: Schema.optional(Schema.Array(Schema.String)),
      add: Schema.Array(Schema.String),
    }),
  ),
  languagePacks: Schema.Array(
    Schema.Struct({ from: Schema.String, prefix: Schema.String, replacement: Schema.String }),
  ),
})

/** The table, checked against its Schema when first used: a broken data file fails loudly, not silently. */
export const packageChangesData = Schema.decodeUnknownSync(PackageChangesData)(data)

/**
 * The branch a version belongs to, as upstream's `get_branch` derives it: `23.05.5` → `23.05`,
 * `23.05-SNAPSHOT` → `23.05`, `24.10.0-rc1` → `24.10`, `SNAPSHOT` → `SNAPSHOT`.
 */
export const branchOf = (version: string): string => {
  if (version.toUpperCase() === "SNAPSHOT") return "SNAPSHOT"
  if (version in packageChangesData.branches) return version
  if (version.toUpperCase().endsWith("-SNAPSHOT")) return version.slice(0, version.lastIndexOf("-"))
  const dot = version.lastIndexOf(".")
  return dot === -1 ? version : version.slice(0, dot)
}

/** The changes a branch takes: those made before it branched off; snapshots take all. */
export const changesForBranch = (branch: string): ReadonlyArray<PackageChange> => {
  const off = packageChangesData.branches[branch]?.branch_off_rev
  return off === null || off === undefined
    ? branch.toUpperCase() === "SNAPSHOT"
      ? packageChangesData.changes
      : []
    : packageChangesData.changes.filter((c) => c.revision <= off)
}

/** The package `name` is called in `version`, when it was renamed or dropped there (else undefined). */
export const renamedIn = (
  version: string,
  name: string,
): { readonly replacement: string | null; readonly revision: number } | undefined => {
  const change = changesForBranch(branchOf(version)).find((c) => c.source === name)
  return change ? { replacement: change.target ?? null, revision: change.revision } : undefined
}

export interface PackageChangeInput {
  readonly version: string
  readonly target: string
  /** The canonical device profile. */
  readonly device: string
  readonly packages: ReadonlyArray<string>
}

/**
 * A request's packages after the table: renames and drops of the branch, additions for the
 * release/target/device, language packs renamed, `luci-i18n-*-en` dropped. Order is kept; a rename to a
 * package already requested does not duplicate it.
 */
export const applyPackageChanges = (input: PackageChangeInput): ReadonlyArray<string> => {
  const branch = branchOf(input.version)
  const renames = new Map(changesForBranch(branch).map((c) => [c.source, c.target ?? null]))
  const out: Array<string> = []
  const push = (name: string) => {
    if (!out.includes(name)) out.push(name)
  }
  for (const requested of input.packages) {
    const removal = requested.startsWith("-")
    const name = removal ? requested.slice(1) : requested
    let renamed: string | null = renames.has(name) ? (renames.get(name) ?? null) : name
    if (renamed === null) continue
    if (/^luci-i18n-.+-en$/.test(renamed)) continue
    for (const pack of packageChangesData.languagePacks) {
      // Python compares the strings: "SNAPSHOT" >= "24.10", as upstream relies on.
      if (input.version >= pack.from && renamed.startsWith(pack.prefix)) {
        renamed = `${pack.replacement}${renamed.slice(renamed.lastIndexOf("-") + 1)}`
      }
    }
    push(removal ? `-${renamed}` : renamed)
  }
  for (const addition of packageChangesData.additions) {
    if (addition.branch !== branch || addition.target !== input.target) continue
    if (addition.devices && !addition.devices.includes(input.device)) continue
    for (const name of addition.add) push(name)
  }
  return out
}

/** A warning about a profile's package that its release renamed or dropped. */
export interface PackageRenamedWarning {
  readonly code: typeof WarningCode.packageRenamed
  readonly message: string
  readonly package: string
  /** The package's name in the release, or null when it was dropped. */
  readonly replacement: string | null
}

/** Warnings for the packages (and `-name` removals) of a profile of `release` that the release renamed. */
export const renamedPackageWarnings = (
  release: string,
  packages: ReadonlyArray<string>,
): ReadonlyArray<PackageRenamedWarning> =>
  packages.flatMap((entry) => {
    const name = entry.replace(/^-/, "")
    const renamed = renamedIn(release, name)
    if (!renamed) return []
    const written = entry.startsWith("-") ? "-" : ""
    return [
      {
        code: WarningCode.packageRenamed,
        package: name,
        replacement: renamed.replacement,
        message:
          renamed.replacement === null
            ? `\`${entry}\`: ${name} was dropped in r${renamed.revision}, before ${branchOf(release)}; remove it`
            : `\`${entry}\`: ${name} is \`${renamed.replacement}\` since r${renamed.revision}, before ${branchOf(release)}; write \`${written}${renamed.replacement}\``,
      },
    ]
  })
