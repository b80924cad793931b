import { chmodSync, lstatSync, readdirSync, rmSync, statSync } from "node:fs"
import { join } from "node:path"
import { Effect } from "effect"
import { InternalError } from "../errors.js"
import { fsPromises } from "../process/lazyBuiltin.js"
import { publishedMode, type TreeFile } from "./treeDigest.js"

/*
 * Published store paths are read-only, as in Nix: files 0444 (0555 when executable), directories 0555 —
 * or owner-only (0400, 0500) when the path holds secret values. A stray write (an editor, a script, a
 * hard-linked image opened for writing) then fails instead of silently changing a cached output, which
 * `realize` would go on answering as a cache hit until `store verify`. The digest is taken before this,
 * so keys and digests do not depend on it; `store verify` and `audit` compare modes as publishing leaves
 * them. Removing a path (gc, prune, a rebuild's replaced output) makes its directories writable first.
 */

const missing = (error: unknown) => (error as NodeJS.ErrnoException).code === "ENOENT"

/** The mode a published path's root directory has. */
export const publishedRootMode = (ownerOnly: boolean): number => publishedMode("dir", 0, ownerOnly)

/** Whether a store path's directory is readable by its owner only: it holds secret values. */
export const isPrivateStorePath = (path: string): boolean => (statSync(path).mode & 0o077) === 0

/**
 * Makes every entry below `root` read-only (its root directory too, with `includeRoot`). Asynchronous,
 * entry by entry: a builder holds tens of thousands of files, and the server goes on answering meanwhile.
 * An entry that vanishes meanwhile is skipped (a rebuild replaced the path).
 */
export const makeReadOnly = (
  root: string,
  options: { readonly ownerOnly: boolean; readonly includeRoot: boolean },
): Effect.Effect<void, InternalError> =>
  Effect.tryPromise({
    try: async (signal) => {
      const visit = async (dir: string): Promise<void> => {
        let names: Array<string>
        try {
          names = await fsPromises().readdir(dir)
        } catch (error) {
          if (missing(error)) return
          throw error
        }
        for (const name of names) {
          signal.throwIfAborted()
          const path = join(dir, name)
          try {
            const stat = await fsPromises().lstat(path)
            if (stat.isSymbolicLink()) continue
            const kind = stat.isDirectory() ? "dir" : "file"
            // Contents first: a directory made read-only stays readable and searchable by its owner.
            if (kind === "dir") await visit(path)
            const wanted = publishedMode(kind, stat.mode, options.ownerOnly)
            if ((stat.mode & 0o7777) !== wanted) await fsPromises().chmod(path, wanted)
          } catch (error) {
            if (!missing(error)) throw error
          }
        }
      }
      await visit(root)
      if (options.includeRoot) await fsPromises().chmod(root, publishedRootMode(options.ownerOnly))
    },
    catch: (cause) => new InternalError({ cause }),
  })

/**
 * `makeReadOnly` for a tree whose listing was just taken (`treeDigest`, relative paths, exact modes) and that
 * nothing else writes to (a private work directory under its lock): no walk, no `lstat` — each entry that
 * is not yet read-only is changed, many at once (order does not matter: changing a mode needs ownership,
 * not a writable directory).
 */
export const makeListedReadOnly = (
  root: string,
  entries: ReadonlyArray<TreeFile>,
  ownerOnly: boolean,
): Effect.Effect<void, InternalError> =>
  Effect.tryPromise({
    try: async (signal) => {
      const changes = entries.filter(
        (e) => e.kind !== "symlink" && publishedMode(e.kind, e.mode, ownerOnly) !== e.mode,
      )
      const batch = 64
      for (let i = 0; i < changes.length; i += batch) {
        signal.throwIfAborted()
        await Promise.all(
          changes
            .slice(i, i + batch)
            .map((e) => fsPromises().chmod(join(root, e.path), publishedMode(e.kind, e.mode, ownerOnly))),
        )
      }
    },
    catch: (cause) => new InternalError({ cause }),
  })

/**
 * A stored path made read-only if it is not yet (a path published by an older owrt, or one holding secrets
 * that is still readable by others): what a cache hit does before it hands the path out. One `stat` when
 * it already is. A path that holds secrets stays owner-only.
 */
export const ensureReadOnly = (path: string, ownerOnly: boolean): Effect.Effect<void, InternalError> =>
  Effect.suspend(() => {
    let mode: number
    try {
      mode = statSync(path).mode & 0o7777
    } catch (cause) {
      return Effect.fail(new InternalError({ cause }))
    }
    const private_ = ownerOnly || (mode & 0o077) === 0
    return mode === publishedRootMode(private_)
      ? Effect.void
      : makeReadOnly(path, { ownerOnly: private_, includeRoot: true })
  })

/** Lets the owner write to `path` again (a directory to be renamed away or emptied). */
export const makeWritable = (path: string): void => {
  const stat = lstatSync(path)
  if (!stat.isSymbolicLink() && (stat.mode & 0o700) !== 0o700) chmodSync(path, (stat.mode & 0o7777) | 0o700)
}

/**
 * Removes a directory tree that may hold read-only directories (a store path, or scratch space holding
 * one); one that is already gone is fine. Without privileges, entries of a read-only directory cannot be
 * removed: its directories are made writable first, when the plain removal is refused.
 */
export const removeTree = (path: string): void => {
  try {
    rmSync(path, { recursive: true, force: true, maxRetries: 3 })
    return
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code !== "EACCES" && code !== "EPERM") throw error
  }
  const visit = (dir: string) => {
    makeWritable(dir)
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.isDirectory()) visit(join(dir, entry.name))
    }
  }
  try {
    if (lstatSync(path).isDirectory()) visit(path)
  } catch (error) {
    if (!missing(error)) throw error
  }
  rmSync(path, { recursive: true, force: true, maxRetries: 3 })
}
