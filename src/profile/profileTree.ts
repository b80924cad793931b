import { createHash } from "node:crypto"
import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  readSync,
  realpathSync,
} from "node:fs"
import { basename, join, posix, relative, sep } from "node:path"
import { Effect } from "effect"
import { GitError } from "../errors.js"
import { childProcess } from "../process/lazyBuiltin.js"

/** A file or symlink of an overlay directory. Modes are normalised to 0644/0755, as git records them. */
export interface TreeEntry {
  /** Path relative to the listed directory, with `/` separators. */
  readonly path: string
  readonly kind: "file" | "symlink"
  readonly mode: number
  /** SHA-256 of the content (files) or of the link target (symlinks). */
  readonly sha256: string
  readonly size: number
  readonly linkTarget?: string | undefined
}

/** A profile file's text, or its size when that is over the limit asked for (then it is not read). */
export type TextRead =
  | { readonly _tag: "text"; readonly text: string }
  | { readonly _tag: "tooLarge"; readonly size: number }

/** Bounds on an overlay directory: walking stops at the first one exceeded. */
export interface OverlayLimits {
  readonly files: number
  readonly fileBytes: number
  readonly totalBytes: number
}

/** An overlay directory over its limits: `reason` says which, naming the file when one is to blame. */
export interface OverlayTooLarge {
  readonly _tag: "tooLarge"
  readonly reason: string
}

/**
 * Where profile files come from: the working tree, or a git commit of the repository holding `profiles/`.
 * Paths are relative to the profiles directory, with `/` separators.
 */
export interface ProfileTree {
  /** `worktree`, or `git:<full commit id>`. */
  readonly source: string
  readonly listProfileFiles: () => Effect.Effect<ReadonlyArray<string>, GitError>
  /** Reads a profile file, unless it is larger than `maxBytes` (then only its size is reported). */
  readonly readText: (path: string, maxBytes: number) => Effect.Effect<TextRead | undefined, GitError>
  /**
   * Every file and symlink below `dir`, sorted by path; `undefined` when `dir` is not a directory;
   * `tooLarge` as soon as `limits` are exceeded (no file over the limit is read).
   */
  readonly walk: (
    dir: string,
    limits: OverlayLimits,
  ) => Effect.Effect<ReadonlyArray<TreeEntry> | OverlayTooLarge | undefined, GitError>
  /** Reads the bytes of an entry found by `walk`. */
  readonly readBytes: (path: string) => Effect.Effect<Uint8Array | undefined, GitError>
  /** True when `dir` resolves (following symlinks) inside the profiles directory. */
  readonly staysInside: (dir: string) => boolean
  /** How diagnostics name a profile file, when not as `<profiles directory>/<file>`. */
  readonly displayPath?: ((file: string) => string | undefined) | undefined
}

const isProfileFile = (name: string) => /\.ya?ml$/.test(name)

const sha256 = (data: Uint8Array | string) => createHash("sha256").update(data).digest("hex")

/** Reads at most `maxBytes` of a file through one descriptor, so a file that grows meanwhile stays bounded. */
const readBounded = (path: string, maxBytes: number): TextRead | undefined => {
  let fd: number
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK)
  } catch {
    return undefined
  }
  try {
    const stat = fstatSync(fd)
    if (!stat.isFile()) return undefined
    if (stat.size > maxBytes) return { _tag: "tooLarge", size: stat.size }
    // Room for the size fstat reported and one byte more, so that a file that grew since is noticed; it
    // grows (up to one byte over the limit) only for such a file, instead of every read taking the limit.
    let buffer = Buffer.allocUnsafe(Math.min(stat.size, maxBytes) + 1)
    let length = 0
    for (;;) {
      if (length === buffer.length) {
        if (length > maxBytes) break
        const larger = Buffer.allocUnsafe(Math.min(buffer.length * 2, maxBytes + 1))
        buffer.copy(larger, 0, 0, length)
        buffer = larger
      }
      const wanted = buffer.length - length
      const read = readSync(fd, buffer, length, wanted, null)
      length += read
      // A regular file reads short only at its end: no second read to hear that it is over.
      if (read < wanted) break
    }
    if (length > maxBytes) return { _tag: "tooLarge", size: length }
    return { _tag: "text", text: buffer.subarray(0, length).toString("utf8") }
  } catch {
    return undefined
  } finally {
    closeSync(fd)
  }
}

const overlayTooLarge = (reason: string): OverlayTooLarge => ({ _tag: "tooLarge", reason })

const mib = (bytes: number) => `${Math.round((bytes / (1024 * 1024)) * 10) / 10} MiB`

export const worktreeProfileTree = (profilesDir: string): ProfileTree => {
  const absolute = (path: string) => join(profilesDir, ...path.split("/"))
  return {
    source: "worktree",
    listProfileFiles: () =>
      Effect.sync(() => {
        try {
          return readdirSync(profilesDir, { withFileTypes: true })
            .filter((entry) => entry.isFile() && isProfileFile(entry.name))
            .map((entry) => entry.name)
            .sort()
        } catch {
          return []
        }
      }),
    readText: (path, maxBytes) => Effect.sync(() => readBounded(absolute(path), maxBytes)),
    readBytes: (path) =>
      Effect.sync(() => {
        try {
          return readFileSync(absolute(path))
        } catch {
          return undefined
        }
      }),
    staysInside: (dir) => {
      try {
        const root = realpathSync(profilesDir)
        const real = realpathSync(absolute(dir))
        const rel = relative(root, real)
        return rel === "" || (!rel.startsWith(`..${sep}`) && rel !== ".." && !rel.startsWith(sep))
      } catch {
        return true // a missing directory is reported as missing, not as an escape
      }
    },
    walk: (dir, limits) =>
      Effect.sync(() => {
        const root = absolute(dir)
        try {
          if (!lstatSync(root).isDirectory()) return undefined
        } catch {
          return undefined
        }
        const entries: Array<TreeEntry> = []
        // Directories count too: a tree of empty directories costs as much to walk as one of files.
        let visited = 0
        let total = 0
        const visit = (relativeDir: string): OverlayTooLarge | undefined => {
          for (const entry of readdirSync(join(root, relativeDir), { withFileTypes: true })) {
            const rel = relativeDir === "" ? entry.name : `${relativeDir}/${entry.name}`
            const full = join(root, rel)
            if (++visited > limits.files)
              return overlayTooLarge(`more than ${limits.files} files and directories`)
            if (entry.isDirectory()) {
              const problem = visit(rel)
              if (problem) return problem
            } else if (entry.isSymbolicLink()) {
              const target = readlinkSync(full)
              entries.push({
                path: rel,
                kind: "symlink",
                mode: 0o777,
                sha256: sha256(target),
                size: target.length,
                linkTarget: target,
              })
            } else if (entry.isFile()) {
              const stat = lstatSync(full)
              if (stat.size > limits.fileBytes)
                return overlayTooLarge(`${rel} is ${mib(stat.size)}; the limit is ${mib(limits.fileBytes)}`)
              total += stat.size
              if (total > limits.totalBytes)
                return overlayTooLarge(`its files add up to more than ${mib(limits.totalBytes)}`)
              const content = readFileSync(full)
              entries.push({
                path: rel,
                kind: "file",
                mode: (stat.mode & 0o111) !== 0 ? 0o755 : 0o644,
                sha256: sha256(content),
                size: content.length,
              })
            }
            // Sockets, fifos and devices cannot be part of an overlay; they are skipped, as git would.
          }
          return undefined
        }
        const problem = visit("")
        if (problem) return problem
        return entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
      }),
  }
}

const runGit = (cwd: string, args: ReadonlyArray<string>, input?: string): Effect.Effect<Buffer, GitError> =>
  Effect.async<Buffer, GitError>((resume) => {
    const child = childProcess().execFile(
      "git",
      args as Array<string>,
      { cwd, encoding: "buffer", maxBuffer: 1 << 30, env: { ...process.env, GIT_OPTIONAL_LOCKS: "0" } },
      (error, stdout, stderr) => {
        if (error) {
          resume(Effect.fail(new GitError({ args, detail: stderr.toString("utf8").trim() || error.message })))
        } else {
          resume(Effect.succeed(stdout))
        }
      },
    )
    if (input !== undefined) child.stdin?.end(input)
  })

/** The repository holding `dir`, and the path of `dir` inside it (with `/`, no trailing slash). */
export const gitLocation = (
  dir: string,
): Effect.Effect<{ readonly top: string; readonly prefix: string }, GitError> =>
  runGit(dir, ["rev-parse", "--show-toplevel", "--show-prefix"]).pipe(
    Effect.map((out) => {
      const [top = "", prefix = ""] = out.toString("utf8").split("\n")
      return { top, prefix: prefix.replace(/\/$/, "") }
    }),
  )

/** Resolves a commit-ish to a full commit id, or `undefined` when it names no commit. */
export const resolveCommit = (dir: string, commitish: string): Effect.Effect<string | undefined, GitError> =>
  commitish.startsWith("-")
    ? Effect.succeed(undefined)
    : runGit(dir, ["rev-parse", "--verify", "--quiet", "--end-of-options", `${commitish}^{commit}`]).pipe(
        Effect.map((out) => out.toString("utf8").trim() || undefined),
        Effect.catchAll(() => Effect.succeed(undefined)),
      )

interface GitBlobEntry {
  readonly mode: string
  readonly object: string
  readonly path: string
  /** Bytes of a blob (`ls-tree -l`); 0 for trees. */
  readonly size: number
}

export const gitProfileTree = (profilesDir: string, commit: string): Effect.Effect<ProfileTree, GitError> =>
  Effect.gen(function* () {
    const { top, prefix } = yield* gitLocation(profilesDir)
    const inRepo = (path: string) => (prefix === "" ? path : `${prefix}/${path}`)
    const lsTree = (path: string, recursive: boolean) =>
      runGit(top, [
        "ls-tree",
        "-z",
        "-l",
        "--full-tree",
        ...(recursive ? ["-r"] : []),
        commit,
        "--",
        path,
      ]).pipe(
        Effect.map((out) =>
          out
            .toString("utf8")
            .split("\0")
            .filter((line) => line.length > 0)
            .map((line): GitBlobEntry & { type: string } => {
              const tab = line.indexOf("\t")
              const [mode = "", type = "", object = "", size = ""] = line.slice(0, tab).split(/ +/)
              return { mode, type, object, size: Number(size) || 0, path: line.slice(tab + 1) }
            }),
        ),
      )
    // Sizes of the profile files, from the listing: a file over the limit is never read.
    const profileSizes = new Map<string, number>()
    const catBlob = (spec: string) =>
      runGit(top, ["cat-file", "blob", spec]).pipe(
        Effect.map((buffer): Uint8Array | undefined => buffer),
        Effect.catchAll(() => Effect.succeed(undefined)),
      )
    return {
      source: `git:${commit}`,
      listProfileFiles: () =>
        lsTree(prefix === "" ? "." : `${prefix}/`, false).pipe(
          Effect.map((entries) =>
            entries
              .filter((e) => e.type === "blob" && isProfileFile(posix.basename(e.path)))
              .map((e) => {
                const name = posix.basename(e.path)
                profileSizes.set(name, e.size)
                return name
              })
              .sort(),
          ),
        ),
      readText: (path, maxBytes) => {
        const size = profileSizes.get(path)
        if (size !== undefined && size > maxBytes) return Effect.succeed({ _tag: "tooLarge", size } as const)
        return catBlob(`${commit}:${inRepo(path)}`).pipe(
          Effect.map((bytes): TextRead | undefined =>
            bytes === undefined
              ? undefined
              : bytes.length > maxBytes
                ? { _tag: "tooLarge", size: bytes.length }
                : { _tag: "text", text: Buffer.from(bytes).toString("utf8") },
          ),
        )
      },
      readBytes: (path) => catBlob(`${commit}:${inRepo(path)}`),
      // Git stores symlinks as links, never follows them: a committed directory is always inside.
      staysInside: () => true,
      walk: (dir, limits) =>
        Effect.gen(function* () {
          const base = inRepo(dir)
          const listed = yield* lsTree(`${base}/`, true)
          const files = listed.filter((e) => e.type === "blob")
          if (files.length === 0) return undefined
          if (files.length > limits.files) return overlayTooLarge(`more than ${limits.files} files`)
          let total = 0
          for (const file of files) {
            const path = file.path.slice(base.length + 1)
            if (file.size > limits.fileBytes)
              return overlayTooLarge(`${path} is ${mib(file.size)}; the limit is ${mib(limits.fileBytes)}`)
            total += file.size
            if (total > limits.totalBytes)
              return overlayTooLarge(`its files add up to more than ${mib(limits.totalBytes)}`)
          }
          const entries: Array<TreeEntry> = []
          for (const file of files) {
            const bytes = (yield* catBlob(file.object)) ?? new Uint8Array()
            const path = file.path.slice(base.length + 1)
            if (file.mode === "120000") {
              const target = Buffer.from(bytes).toString("utf8")
              entries.push({
                path,
                kind: "symlink",
                mode: 0o777,
                sha256: sha256(target),
                size: target.length,
                linkTarget: target,
              })
            } else {
              entries.push({
                path,
                kind: "file",
                mode: file.mode === "100755" ? 0o755 : 0o644,
                sha256: sha256(bytes),
                size: bytes.length,
              })
            }
          }
          return entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
        }),
    }
  })

/**
 * A tree with one more profile file, read from anywhere (`owrt profiles validate ../new.yaml`): it is
 * resolved as if it stood in the profiles directory under its own name, which it shadows there; its
 * parents and overlays are looked up in that directory. Diagnostics name it as `display`.
 */
export const withOutsideProfileFile = (tree: ProfileTree, path: string, display: string): ProfileTree => {
  const name = basename(path)
  const id = name.replace(/\.ya?ml$/, "")
  return {
    ...tree,
    listProfileFiles: () =>
      Effect.map(tree.listProfileFiles(), (files) =>
        [name, ...files.filter((f) => f.replace(/\.ya?ml$/, "") !== id)].sort(),
      ),
    readText: (file, maxBytes) =>
      file === name ? Effect.sync(() => readBounded(path, maxBytes)) : tree.readText(file, maxBytes),
    displayPath: (file) => (file === name ? display : tree.displayPath?.(file)),
  }
}
