import { createHash, createHmac } from "node:crypto"
import { lstatSync, readdirSync, readFileSync, readlinkSync } from "node:fs"
import { join } from "node:path"
import { Schema } from "effect"

/** One entry of a tree listing: what `store verify` compares, kept as JSON in the store path's row. */
export const TreeFileSchema = Schema.Struct({
  path: Schema.String,
  kind: Schema.Literal("file", "symlink", "dir"),
  mode: Schema.Number,
  size: Schema.Number,
  sha256: Schema.optional(Schema.String),
  linkTarget: Schema.optional(Schema.String),
})
export type TreeFile = typeof TreeFileSchema.Type

const decodeListing = Schema.decodeUnknownEither(Schema.parseJson(Schema.Array(TreeFileSchema)))

/** A listing read back from the database; one that does not decode is empty (the tree then counts as drifted). */
export const parseListing = (json: string): ReadonlyArray<TreeFile> => {
  const decoded = decodeListing(json)
  return decoded._tag === "Right" ? decoded.right : []
}

export interface TreeDigest {
  /** SHA-256 over the sorted listing (path, kind, permission bits, size, content digest or link target). */
  readonly digest: string
  readonly files: number
  readonly bytes: number
  readonly entries: ReadonlyArray<TreeFile>
}

/**
 * Walks a directory tree (not following links) and digests it; the same tree gives the same digest. With
 * `key`, file contents are digested with HMAC-SHA256 under it: for trees holding secret values, whose plain
 * digests in the database would let anyone test guesses. With `listingOnly`, file contents are not read:
 * for fixed-output trees whose content was verified as it arrived (a builder from a signed archive).
 */
export const treeDigest = (root: string, key?: Uint8Array, listingOnly = false): TreeDigest => {
  const sha256File = (path: string): string =>
    (key ? createHmac("sha256", key) : createHash("sha256")).update(readFileSync(path)).digest("hex")
  const entries: Array<TreeFile> = []
  const visit = (relative: string) => {
    const names = readdirSync(join(root, relative)).sort()
    for (const name of names) {
      const path = relative === "" ? name : `${relative}/${name}`
      const full = join(root, path)
      const stat = lstatSync(full)
      const mode = stat.mode & 0o7777
      if (stat.isSymbolicLink())
        entries.push({ path, kind: "symlink", mode: 0o777, size: 0, linkTarget: readlinkSync(full) })
      else if (stat.isDirectory()) {
        entries.push({ path, kind: "dir", mode, size: 0 })
        visit(path)
      } else if (stat.isFile())
        entries.push({
          path,
          kind: "file",
          mode,
          size: stat.size,
          ...(listingOnly ? {} : { sha256: sha256File(full) }),
        })
    }
  }
  visit("")
  const hash = createHash("sha256")
  let bytes = 0
  let files = 0
  for (const e of entries) {
    hash.update(`${e.kind}\0${e.path}\0${e.mode.toString(8)}\0${e.size}\0${e.sha256 ?? e.linkTarget ?? ""}\n`)
    if (e.kind === "file") {
      files += 1
      bytes += e.size
    }
  }
  return { digest: hash.digest("hex"), files, bytes, entries }
}

/** Paths whose entry differs between two listings (changed, added or removed). */
export const treeDifferences = (
  expected: ReadonlyArray<TreeFile>,
  actual: ReadonlyArray<TreeFile>,
): ReadonlyArray<string> => {
  const line = (e: TreeFile) => `${e.kind}:${e.mode}:${e.size}:${e.sha256 ?? e.linkTarget ?? ""}`
  const before = new Map(expected.map((e) => [e.path, line(e)]))
  const after = new Map(actual.map((e) => [e.path, line(e)]))
  const differing = new Set<string>()
  for (const [path, value] of before) if (after.get(path) !== value) differing.add(path)
  for (const path of after.keys()) if (!before.has(path)) differing.add(path)
  return [...differing].sort()
}
