import type { PackageProblem } from "../errors.js"

/*
 * What opkg (22.03–24.10) and apk (25.x) say when a package selection cannot be installed, read back into
 * reasons a person can act on. The formats are theirs, verbatim:
 *
 * opkg ("Collected errors:" at the end; "Unknown package" is printed at once, before them)
 *   Unknown package 'foo'.
 *    * pkg_hash_check_unresolved: cannot find dependency collectd for luci-app-statistics
 *    * satisfy_dependencies_for: Cannot satisfy the following dependencies for luci-app-statistics:
 *    * 	collectd
 *    * check_conflicts_for: The following packages conflict with wpad-basic-mbedtls:
 *    * check_conflicts_for: 	wpad-openssl
 *    * check_data_file_clashes: Package dnsmasq wants to install file /…/root-ath79/usr/sbin/dnsmasq
 *    	But that file is already provided by package  * dnsmasq-full
 *    * opkg_install_cmd: Cannot install package dnsmasq.
 *
 * apk
 *   ERROR: unable to select packages:
 *     foo (no such package):
 *       required by: world[foo]
 *     collectd (no such package):
 *       required by: luci-app-statistics-25.1-r1[collectd]
 *     wpad-basic-mbedtls-2025.06.16-r2:
 *       conflicts: wpad-openssl-2025.06.16-r2[wpad-basic-mbedtls]
 *       satisfies: world[wpad-basic-mbedtls]
 *   ERROR: dnsmasq-2.91-r4: trying to overwrite usr/sbin/dnsmasq owned by dnsmasq-full-2.91-r4.
 */

/** A `PackageProblem` without its `fix`. */
type Unfixed<P> = P extends { readonly fix: unknown } ? Omit<P, "fix"> : P

/**
 * A problem as read, before the fixes (which need the selection) and an unknown package's suggestion
 * (which needs the package index) are worked out.
 */
export type ParsedProblem =
  | { readonly kind: "unknown"; readonly package: string }
  | Unfixed<Exclude<PackageProblem, { readonly kind: "unknown" }>>

/** `name-version` as apk prints a package: the name ends before the first `-` followed by a digit. */
export const apkPackageName = (nameVersion: string): string =>
  /^(.+?)-\d/.exec(nameVersion)?.[1] ?? nameVersion

/** A path inside the image: opkg names the file under the builder's staging root (`…/root-<board>/…`). */
const imagePath = (file: string): string => {
  const staged = /\/build_dir\/[^/]+\/root-[^/]+(\/.*)$/.exec(file)?.[1]
  if (staged !== undefined) return staged
  return file.startsWith("/") ? file : `/${file}`
}

/** Mutable problem while reading: dependencies and clashes gather several lines. */
type Draft =
  | { kind: "unknown"; package: string }
  | { kind: "dependency"; package: string; missing: Array<string>; requestedAs?: string }
  | { kind: "conflict"; package: string; with: string; requestedAs?: string }
  | { kind: "file_clash"; package: string; owner: string; files: Array<string>; requestedAs?: string }
  | { kind: "cannot_install"; package: string }

/** The package problems in make's output, in the order the package manager met them; empty when none. */
export const parsePackageProblems = (output: string): ReadonlyArray<ParsedProblem> => {
  const lines = output.split("\n").map((l) => l.replace(/\r$/, ""))
  const problems: Array<Draft> = []
  const unknown = new Set<string>()
  const dependencyOf = (pkg: string) => {
    const found = problems.find(
      (p): p is Extract<Draft, { kind: "dependency" }> => p.kind === "dependency" && p.package === pkg,
    )
    if (found) return found
    const made: Extract<Draft, { kind: "dependency" }> = { kind: "dependency", package: pkg, missing: [] }
    problems.push(made)
    return made
  }
  const addMissing = (pkg: string, dep: string) => {
    const entry = dependencyOf(pkg)
    const clean = dep.trim().replace(/\s*\*\s*$/, "")
    if (clean !== "" && !entry.missing.includes(clean)) entry.missing.push(clean)
  }
  const addClash = (pkg: string, owner: string, file: string) => {
    const found = problems.find(
      (p): p is Extract<Draft, { kind: "file_clash" }> =>
        p.kind === "file_clash" && p.package === pkg && p.owner === owner,
    )
    if (found) {
      if (!found.files.includes(file)) found.files.push(file)
    } else problems.push({ kind: "file_clash", package: pkg, owner, files: [file] })
  }
  // opkg: problems since the last "Cannot install package X" were met installing X.
  let since = 0
  let satisfyFor: string | undefined
  let conflictWith: string | undefined
  let clash: { pkg: string; file: string } | undefined
  // apk: the block of "unable to select packages"
  let apkSelect = false
  let apkName: { kind: "missing" | "conflict"; name: string } | undefined

  for (const line of lines) {
    // ---- opkg
    const unknownOpkg = /^Unknown package '([^']+)'\.?\s*$/.exec(line)
    if (unknownOpkg?.[1]) {
      if (!unknown.has(unknownOpkg[1])) problems.push({ kind: "unknown", package: unknownOpkg[1] })
      unknown.add(unknownOpkg[1])
      continue
    }
    const unresolved = /pkg_hash_check_unresolved: cannot find dependency (.+) for (\S+)\s*$/.exec(line)
    if (unresolved?.[1] && unresolved[2]) {
      addMissing(unresolved[2], unresolved[1])
      continue
    }
    const satisfy =
      /satisfy_dependencies_for: Cannot satisfy the following dependencies for (\S+?):?\s*$/.exec(line)
    if (satisfy?.[1]) {
      satisfyFor = satisfy[1]
      dependencyOf(satisfyFor)
      continue
    }
    const conflictHead = /check_conflicts_for: The following packages conflict with (\S+?):?\s*$/.exec(line)
    if (conflictHead?.[1]) {
      conflictWith = conflictHead[1]
      continue
    }
    const conflictItem = /check_conflicts_for:\s+(\S+)\s*\*?\s*$/.exec(line)
    if (conflictItem?.[1] && conflictWith !== undefined) {
      const other = conflictItem[1]
      if (!problems.some((p) => p.kind === "conflict" && p.package === conflictWith && p.with === other))
        problems.push({ kind: "conflict", package: conflictWith, with: other })
      continue
    }
    const clashHead = /check_data_file_clashes: Package (\S+) wants to install file (\S+)/.exec(line)
    if (clashHead?.[1] && clashHead[2]) {
      clash = { pkg: clashHead[1], file: imagePath(clashHead[2]) }
      continue
    }
    const clashOwner = /But that file is already provided by package\s+(?:\*\s+)?(\S+)/.exec(line)
    if (clashOwner?.[1] && clash) {
      if (clashOwner[1] !== "<no") addClash(clash.pkg, clashOwner[1], clash.file)
      clash = undefined
      continue
    }
    const cannot = /opkg_install_cmd: Cannot install package (\S+?)\.?\s*$/.exec(line)
    if (cannot?.[1]) {
      const requested = cannot[1]
      const explained = problems.slice(since).filter((p) => p.kind !== "unknown")
      for (const p of explained)
        if (p.kind !== "cannot_install" && p.package !== requested) p.requestedAs ??= requested
      if (explained.length === 0 && !unknown.has(requested))
        problems.push({ kind: "cannot_install", package: requested })
      since = problems.length
      satisfyFor = undefined
      conflictWith = undefined
      continue
    }
    if (satisfyFor !== undefined) {
      // " * \tcollectd" (sometimes "… *"): one unsatisfied dependency per line, until the next message
      const dep = /^\s*\*\s+(?![\w-]+: )(\S.*)$/.exec(line)
      if (dep?.[1]) {
        addMissing(satisfyFor, dep[1])
        continue
      }
    }

    // ---- apk
    const overwrite = /^ERROR: (\S+): trying to overwrite (\S+) owned by (\S+?)\.?\s*$/.exec(line)
    if (overwrite?.[1] && overwrite[2] && overwrite[3]) {
      addClash(apkPackageName(overwrite[1]), apkPackageName(overwrite[3]), imagePath(overwrite[2]))
      continue
    }
    if (/^ERROR: unable to select packages:/.test(line)) {
      apkSelect = true
      continue
    }
    if (apkSelect) {
      const missing = /^ {2}(\S+) \(no such package\):\s*$/.exec(line)
      if (missing?.[1]) {
        apkName = { kind: "missing", name: missing[1] }
        continue
      }
      const head = /^ {2}(\S+):\s*$/.exec(line)
      if (head?.[1]) {
        apkName = { kind: "conflict", name: apkPackageName(head[1]) }
        continue
      }
      const requiredBy = /^\s{4}required by: (.+)$/.exec(line)
      if (requiredBy?.[1] && apkName?.kind === "missing") {
        const name = apkName.name
        for (const item of requiredBy[1].trim().split(/\s+/)) {
          const by = /^(\S+?)\[/.exec(item)?.[1]
          if (by === undefined) continue
          if (by === "world") {
            if (!unknown.has(name)) problems.push({ kind: "unknown", package: name })
            unknown.add(name)
          } else addMissing(apkPackageName(by), name)
        }
        continue
      }
      const conflicts = /^\s{4}conflicts: (.+)$/.exec(line)
      if (conflicts?.[1] && apkName?.kind === "conflict") {
        const pkg = apkName.name
        for (const item of conflicts[1].trim().split(/\s+/)) {
          const other = /^(\S+?)\[/.exec(item)?.[1]
          if (other !== undefined && !problems.some((p) => p.kind === "conflict" && p.package === pkg))
            problems.push({ kind: "conflict", package: pkg, with: apkPackageName(other) })
        }
        continue
      }
      if (/^\S/.test(line)) apkSelect = false
    }
  }
  return problems.filter((p) => p.kind !== "dependency" || p.missing.length > 0)
}

/** Names of a selection's entries that add a package (`-name` entries remove one). */
const requestedNames = (selection: ReadonlyArray<string>) =>
  new Set(selection.filter((entry) => !entry.startsWith("-")))

/**
 * Problems with the fixes the selection allows: of two packages that cannot both be installed, the one
 * the selection did not ask for (a default or device package) is the one to remove with `-name`.
 */
export const withFixes = (
  problems: ReadonlyArray<ParsedProblem>,
  selection: ReadonlyArray<string>,
  suggest: (name: string) => { readonly name: string; readonly renamed: boolean } | undefined,
): ReadonlyArray<PackageProblem> => {
  const asked = requestedNames(selection)
  const isAsked = (name: string, requestedAs?: string) =>
    asked.has(name) || (requestedAs !== undefined && asked.has(requestedAs))
  const fixFor = (a: string, b: string, requestedAs?: string): ReadonlyArray<string> => {
    const askedA = isAsked(a, requestedAs)
    const askedB = asked.has(b)
    if (askedA && !askedB) return [b]
    if (askedB && !askedA) return [a]
    if (!askedA && !askedB) return [a, b]
    return []
  }
  return problems.map((p): PackageProblem => {
    switch (p.kind) {
      case "unknown": {
        const hint = suggest(p.package)
        return hint === undefined
          ? { kind: "unknown", package: p.package }
          : { kind: "unknown", package: p.package, suggestion: hint.name, renamed: hint.renamed }
      }
      case "conflict":
        return { ...p, fix: fixFor(p.package, p.with, p.requestedAs) }
      case "file_clash":
        return { ...p, fix: fixFor(p.package, p.owner, p.requestedAs) }
      default:
        return p
    }
  })
}
