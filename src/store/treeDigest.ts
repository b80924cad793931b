import { createHash, createHmac, type Hash, type Hmac } from "node:crypto"
import { createReadStream } from "node:fs"
import { join } from "node:path"
import { Effect, Schema } from "effect"
import { InternalError } from "../errors.js"
import { fsPromises } from "../process/lazyBuiltin.js"

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

/** A file's size and the SHA-256 of its content, known without reading it back. */
export interface FileContent {
  readonly size: number
  readonly sha256: string
}

export interface TreeDigest {
  /** SHA-256 over the sorted listing (path, kind, permission bits, size, content digest or link target). */
  readonly digest: string
  readonly files: number
  readonly bytes: number
  readonly entries: ReadonlyArray<TreeFile>
}

/** The digest of a listing: what `treeDigest` returns for the tree the listing describes. */
export const listingDigest = (entries: ReadonlyArray<TreeFile>): string => {
  const hash = createHash("sha256")
  for (const e of entries) {
    hash.update(`${e.kind}\0${e.path}\0${e.mode.toString(8)}\0${e.size}\0${e.sha256 ?? e.linkTarget ?? ""}\n`)
  }
  return hash.digest("hex")
}

/**
 * The permission bits an entry has once its store path is published, as Nix does: read-only for everyone
 * (directories and executables 0555, other files 0444), or for the owner only when the path holds secret
 * values (0500, 0400). Symbolic links have no permission bits of their own.
 */
export const publishedMode = (kind: TreeFile["kind"], mode: number, ownerOnly: boolean): number => {
  if (kind === "symlink") return mode
  const bits = kind === "dir" || (mode & 0o111) !== 0 ? 0o555 : 0o444
  return ownerOnly ? bits & 0o500 : bits
}

const fileDigest = (path: string, hash: Hash | Hmac, signal: AbortSignal): Promise<string> =>
  new Promise((resolve, reject) => {
    const stream = createReadStream(path, { highWaterMark: 1024 * 1024, signal })
    stream.on("data", (chunk) => hash.update(chunk))
    stream.on("end", () => resolve(hash.digest("hex")))
    stream.on("error", reject)
  })

/**
 * Walks a directory tree (not following links) and digests it; the same tree gives the same digest. With
 * `key`, file contents are digested with HMAC-SHA256 under it: for trees holding secret values, whose plain
 * digests in the database would let anyone test guesses. With `listingOnly`, file contents are not read:
 * for fixed-output trees whose content was verified as it arrived (a builder from a signed archive).
 * Asynchronous, file by file: a server digesting a large tree goes on answering other requests meanwhile.
 */
export const treeDigest = (
  root: string,
  options: {
    readonly key?: Uint8Array | undefined
    readonly listingOnly?: boolean | undefined
    /** Content digests already known (plain SHA-256: not used with `key`), for files of the same size. */
    readonly known?: ReadonlyMap<string, FileContent> | undefined
  } = {},
): Effect.Effect<TreeDigest, InternalError> =>
  Effect.tryPromise({
    try: async (signal) => {
      const entries: Array<TreeFile> = []
      const visit = async (relative: string): Promise<void> => {
        const names = (await fsPromises().readdir(join(root, relative))).sort()
        const stats = await Promise.all(
          names.map((name) => fsPromises().lstat(join(root, relative === "" ? name : `${relative}/${name}`))),
        )
        for (const [i, name] of names.entries()) {
          signal.throwIfAborted()
          const path = relative === "" ? name : `${relative}/${name}`
          const full = join(root, path)
          const stat = stats[i]
          if (stat === undefined) continue
          const mode = stat.mode & 0o7777
          if (stat.isSymbolicLink())
            entries.push({
              path,
              kind: "symlink",
              mode: 0o777,
              size: 0,
              linkTarget: await fsPromises().readlink(full),
            })
          else if (stat.isDirectory()) {
            entries.push({ path, kind: "dir", mode, size: 0 })
            await visit(path)
          } else if (stat.isFile()) {
            const known = options.key ? undefined : options.known?.get(path)
            const content = async () =>
              known !== undefined && known.size === stat.size
                ? known.sha256
                : fileDigest(
                    full,
                    options.key ? createHmac("sha256", options.key) : createHash("sha256"),
                    signal,
                  )
            entries.push({
              path,
              kind: "file",
              mode,
              size: stat.size,
              ...(options.listingOnly ? {} : { sha256: await content() }),
            })
          }
        }
      }
      await visit("")
      let bytes = 0
      let files = 0
      for (const e of entries) {
        if (e.kind === "file") {
          files += 1
          bytes += e.size
        }
      }
      return { digest: listingDigest(entries), files, bytes, entries }
    },
    catch: (cause) => new InternalError({ cause }),
  })

/**
 * Paths whose entry differs between two listings (changed, added or removed). With `modes: "published"`,
 * permission bits are compared as publishing leaves them (`publishedMode`): a path made read-only since it
 * was listed has not changed.
 */
export const treeDifferences = (
  expected: ReadonlyArray<TreeFile>,
  actual: ReadonlyArray<TreeFile>,
  options: { readonly modes: "exact" | "published" } = { modes: "exact" },
): ReadonlyArray<string> => {
  const mode = (e: TreeFile) => (options.modes === "exact" ? e.mode : publishedMode(e.kind, e.mode, false))
  const line = (e: TreeFile) => `${e.kind}:${mode(e)}:${e.size}:${e.sha256 ?? e.linkTarget ?? ""}`
  const before = new Map(expected.map((e) => [e.path, line(e)]))
  const after = new Map(actual.map((e) => [e.path, line(e)]))
  const differing = new Set<string>()
  for (const [path, value] of before) if (after.get(path) !== value) differing.add(path)
  for (const path of after.keys()) if (!before.has(path)) differing.add(path)
  return [...differing].sort()
}
