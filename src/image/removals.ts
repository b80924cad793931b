import { existsSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { Schema } from "effect"
import { WarningCode } from "../errors.js"
import { subdirectories } from "./packageIndex.js"

/*
 * A `-name` entry in packages only takes `name` off the Image Builder's top-level package list; a package
 * that depends on it installs it again (reference §3). That removal had no effect, silently: the image
 * holds what the profile says it does not. make-image reads the package database the build left in its
 * staging root (opkg's `usr/lib/opkg/status`, apk's `lib/apk/db/installed`) and records such removals with
 * the packages that pulled the name back in; realize turns them into warnings.
 */

export const RemovalWithoutEffectSchema = Schema.Struct({
  /** The name the profile removes (`-ppp` → `ppp`). */
  package: Schema.String,
  /** Installed packages of that name or providing it. */
  installed: Schema.Array(Schema.String),
  /** Installed packages that depend on it. */
  pulledInBy: Schema.Array(Schema.String),
})
export type RemovalWithoutEffect = typeof RemovalWithoutEffectSchema.Type

/** make-image writes its findings here, next to bin/ and build.log, when there are any. */
export const removalsFile = "owrt-removals.json"

export interface InstalledPackage {
  readonly name: string
  readonly depends: ReadonlyArray<string>
  readonly provides: ReadonlyArray<string>
}

/** A dependency entry without version constraint or ABI qualifier: `kmod-ppp (>= 1)`, `libc>=1.2`. */
const depName = (entry: string) =>
  entry
    .trim()
    .replace(/\s*\(.*\)$/, "")
    .replace(/[<>=~].*$/, "")
    .trim()

/** opkg's status file: paragraphs with `Package:`, `Depends:` (`a, b | c`), `Provides:`. */
const parseOpkgStatus = (text: string): ReadonlyArray<InstalledPackage> =>
  text
    .split(/\n\s*\n/)
    .map((block) => {
      const field = (name: string) => new RegExp(`^${name}: ?(.*)$`, "m").exec(block)?.[1] ?? ""
      return {
        name: field("Package").trim(),
        depends: field("Depends").split(/[,|]/).map(depName).filter(Boolean),
        provides: field("Provides").split(",").map(depName).filter(Boolean),
      }
    })
    .filter((p) => p.name !== "")

/** apk's installed database: `P:name`, `D:dep dep …`, `p:provided …` lines per package. */
const parseApkInstalled = (text: string): ReadonlyArray<InstalledPackage> =>
  text
    .split(/\n\s*\n/)
    .map((block) => {
      const field = (letter: string) => new RegExp(`^${letter}:(.*)$`, "m").exec(block)?.[1] ?? ""
      return {
        name: field("P").trim(),
        depends: field("D")
          .split(/\s+/)
          .filter((d) => d !== "" && !d.startsWith("!"))
          .map(depName)
          .filter(Boolean),
        provides: field("p").split(/\s+/).map(depName).filter(Boolean),
      }
    })
    .filter((p) => p.name !== "")

/**
 * The packages installed in the staging root a build left in `tree` (`build_dir/target-*∕root-*`), or
 * undefined when there is none.
 */
export const readInstalledPackages = (tree: string): ReadonlyArray<InstalledPackage> | undefined => {
  for (const target of subdirectories(join(tree, "build_dir"))) {
    for (const root of subdirectories(target)) {
      if (!/\/root-[^/]+$/.test(root)) continue
      const opkg = join(root, "usr/lib/opkg/status")
      if (existsSync(opkg)) return parseOpkgStatus(readFileSync(opkg, "utf8"))
      const apk = join(root, "lib/apk/db/installed")
      if (existsSync(apk)) return parseApkInstalled(readFileSync(apk, "utf8"))
    }
  }
  return undefined
}

/** The `-name` entries of `selection` whose name is installed all the same, and what pulled it in. */
export const removalsWithoutEffect = (
  selection: ReadonlyArray<string>,
  installed: ReadonlyArray<InstalledPackage>,
): ReadonlyArray<RemovalWithoutEffect> =>
  selection
    .filter((entry) => entry.startsWith("-"))
    .map((entry) => entry.slice(1))
    .flatMap((name) => {
      const present = installed.filter((p) => p.name === name || p.provides.includes(name))
      if (present.length === 0) return []
      const names = new Set([name, ...present.flatMap((p) => [p.name, ...p.provides])])
      const pulledInBy = installed
        .filter((p) => !present.includes(p) && p.depends.some((d) => names.has(d)))
        .map((p) => p.name)
        .sort()
      return [{ package: name, installed: present.map((p) => p.name).sort(), pulledInBy }]
    })

/** One warning of a realize result (`warnings[]`). */
export const RealizeWarningSchema = Schema.Struct({
  code: Schema.Literal(WarningCode.removalWithoutEffect).annotations({
    description: "Stable snake_case warning code",
  }),
  message: Schema.String,
  package: Schema.String.annotations({ description: "The package the profile removes (`-name`)" }),
  pulledInBy: Schema.Array(Schema.String).annotations({
    description: "Installed packages that depend on it (empty when not known)",
  }),
})
export type RealizeWarning = typeof RealizeWarningSchema.Type

const list = (names: ReadonlyArray<string>) => names.map((n) => `\`${n}\``).join(", ")

export const removalWarning = (removal: RemovalWithoutEffect): RealizeWarning => {
  const as =
    removal.installed.length === 1 && removal.installed[0] === removal.package
      ? `\`${removal.package}\` is still installed`
      : `\`${removal.package}\` is still installed as ${list(removal.installed)}`
  const why =
    removal.pulledInBy.length > 0
      ? `, pulled in by ${list(removal.pulledInBy)} (which depend${removal.pulledInBy.length === 1 ? "s" : ""} on it); remove ${removal.pulledInBy.length === 1 ? "that" : "those"} too, or keep it`
      : ", pulled in by another package's dependency"
  return {
    code: WarningCode.removalWithoutEffect,
    message: `\`-${removal.package}\` has no effect: ${as}${why}`,
    package: removal.package,
    pulledInBy: removal.pulledInBy,
  }
}

/**
 * Warnings of a realized artifact set: the removals make-image recorded; for a set made before make-image
 * recorded them, the removed names its package manifest still lists (without what pulled them in).
 */
export const realizeWarnings = (manifest: {
  readonly inputs: { readonly packages: ReadonlyArray<string> }
  readonly packages: ReadonlyArray<{ readonly name: string }>
  readonly removalsWithoutEffect?: ReadonlyArray<RemovalWithoutEffect> | undefined
}): ReadonlyArray<RealizeWarning> => {
  if (manifest.removalsWithoutEffect !== undefined) return manifest.removalsWithoutEffect.map(removalWarning)
  const installed = new Set(manifest.packages.map((p) => p.name))
  return manifest.inputs.packages
    .filter((entry) => entry.startsWith("-") && installed.has(entry.slice(1)))
    .map((entry) => removalWarning({ package: entry.slice(1), installed: [entry.slice(1)], pulledInBy: [] }))
}
