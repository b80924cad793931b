import type { TreeFile } from "../store/treeDigest.js"

/*
 * What changed in the staged overlay (the tree passed to the Image Builder as FILES=) between two
 * realizations: entries added, removed and changed, compared by the listings recorded when each tree was
 * stored (path, kind, mode, size, content digest or link target). The digests of one store are taken
 * under its sealing key, so two listings of the same store compare without revealing any content.
 */

/** One entry of a staged tree as a diff shows it; modes are octal strings (`"0644"`). */
export interface OverlayEntry {
  readonly path: string
  readonly kind: TreeFile["kind"]
  /** Permission bits as staged; null for a symbolic link, which has none of its own. */
  readonly mode: string | null
  /** Bytes of a file; 0 for a directory or a link. */
  readonly size: number
  readonly linkTarget: string | null
}

/** What differs in an entry present in both trees. */
export type OverlayAspect = "kind" | "content" | "mode" | "target"

export interface OverlayEntryChange {
  readonly path: string
  readonly from: OverlayEntry
  readonly to: OverlayEntry
  readonly changes: ReadonlyArray<OverlayAspect>
}

export interface OverlayChanges {
  readonly added: ReadonlyArray<OverlayEntry>
  readonly removed: ReadonlyArray<OverlayEntry>
  readonly changed: ReadonlyArray<OverlayEntryChange>
  /** Entries identical in both trees. */
  readonly unchanged: number
}

/** Octal permission bits, four digits: what `ls -l` readers and profile YAML (`mode: '0644'`) write. */
export const octalMode = (mode: number): string => (mode & 0o7777).toString(8).padStart(4, "0")

export const overlayEntry = (entry: TreeFile): OverlayEntry => ({
  path: entry.path,
  kind: entry.kind,
  mode: entry.kind === "symlink" ? null : octalMode(entry.mode),
  size: entry.size,
  linkTarget: entry.linkTarget ?? null,
})

/** The aspects in which two listed entries of one path differ (none: the same entry). */
export const entryDifferences = (from: TreeFile, to: TreeFile): ReadonlyArray<OverlayAspect> => {
  if (from.kind !== to.kind) return ["kind"]
  const changes: Array<OverlayAspect> = []
  if (from.kind === "file" && (from.size !== to.size || from.sha256 !== to.sha256)) changes.push("content")
  if (from.kind === "symlink" && from.linkTarget !== to.linkTarget) changes.push("target")
  if (from.kind !== "symlink" && (from.mode & 0o7777) !== (to.mode & 0o7777)) changes.push("mode")
  return changes
}

const byPath = (a: { readonly path: string }, b: { readonly path: string }) =>
  a.path < b.path ? -1 : a.path > b.path ? 1 : 0

/** The overlay changes from the listing `from` to the listing `to`, each list sorted by path. */
export const overlayChanges = (
  from: ReadonlyArray<TreeFile>,
  to: ReadonlyArray<TreeFile>,
): OverlayChanges => {
  const before = new Map(from.map((e) => [e.path, e]))
  const after = new Map(to.map((e) => [e.path, e]))
  const added: Array<OverlayEntry> = []
  const removed: Array<OverlayEntry> = []
  const changed: Array<OverlayEntryChange> = []
  let unchanged = 0
  for (const [path, entry] of before) {
    const now = after.get(path)
    if (now === undefined) {
      removed.push(overlayEntry(entry))
      continue
    }
    const changes = entryDifferences(entry, now)
    if (changes.length === 0) unchanged += 1
    else changed.push({ path, from: overlayEntry(entry), to: overlayEntry(now), changes })
  }
  for (const [path, entry] of after) if (!before.has(path)) added.push(overlayEntry(entry))
  return {
    added: added.sort(byPath),
    removed: removed.sort(byPath),
    changed: changed.sort(byPath),
    unchanged,
  }
}
