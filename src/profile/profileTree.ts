import { execFile } from "node:child_process"
import { createHash } from "node:crypto"
import { lstatSync, readdirSync, readFileSync, readlinkSync, realpathSync } from "node:fs"
import { join, posix, relative, sep } from "node:path"
import { Effect } from "effect"
import { GitError } from "../errors.js"

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

/**
 * Where profile files come from: the working tree, or a git commit of the repository holding `profiles/`.
 * Paths are relative to the profiles directory, with `/` separators.
 */
export interface ProfileTree {
  /** `worktree`, or `git:<full commit id>`. */
  readonly source: string
  readonly listProfileFiles: () => Effect.Effect<ReadonlyArray<string>, GitError>
  readonly readText: (path: string) => Effect.Effect<string | undefined, GitError>
  /** Every file and symlink below `dir`, sorted by path; `undefined` when `dir` is not a directory. */
  readonly walk: (dir: string) => Effect.Effect<ReadonlyArray<TreeEntry> | undefined, GitError>
  /** Reads the bytes of an entry found by `walk`. */
  readonly readBytes: (path: string) => Effect.Effect<Uint8Array | undefined, GitError>
  /** True when `dir` resolves (following symlinks) inside the profiles directory. */
  readonly staysInside: (dir: string) => boolean
}

const isProfileFile = (name: string) => /\.ya?ml$/.test(name)

const sha256 = (data: Uint8Array | string) => createHash("sha256").update(data).digest("hex")

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
    readText: (path) =>
      Effect.sync(() => {
        try {
          return readFileSync(absolute(path), "utf8")
        } catch {
          return undefined
        }
      }),
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
    walk: (dir) =>
      Effect.sync(() => {
        const root = absolute(dir)
        try {
          if (!lstatSync(root).isDirectory()) return undefined
        } catch {
          return undefined
        }
        const entries: Array<TreeEntry> = []
        const visit = (relativeDir: string) => {
          for (const entry of readdirSync(join(root, relativeDir), { withFileTypes: true })) {
            const rel = relativeDir === "" ? entry.name : `${relativeDir}/${entry.name}`
            const full = join(root, rel)
            if (entry.isDirectory()) visit(rel)
            else if (entry.isSymbolicLink()) {
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
        }
        visit("")
        return entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
      }),
  }
}

const runGit = (cwd: string, args: ReadonlyArray<string>, input?: string): Effect.Effect<Buffer, GitError> =>
  Effect.async<Buffer, GitError>((resume) => {
    const child = execFile(
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
}

export const gitProfileTree = (profilesDir: string, commit: string): Effect.Effect<ProfileTree, GitError> =>
  Effect.gen(function* () {
    const { top, prefix } = yield* gitLocation(profilesDir)
    const inRepo = (path: string) => (prefix === "" ? path : `${prefix}/${path}`)
    const lsTree = (path: string, recursive: boolean) =>
      runGit(top, ["ls-tree", "-z", "--full-tree", ...(recursive ? ["-r"] : []), commit, "--", path]).pipe(
        Effect.map((out) =>
          out
            .toString("utf8")
            .split("\0")
            .filter((line) => line.length > 0)
            .map((line): GitBlobEntry & { type: string } => {
              const tab = line.indexOf("\t")
              const [mode = "", type = "", object = ""] = line.slice(0, tab).split(" ")
              return { mode, type, object, path: line.slice(tab + 1) }
            }),
        ),
      )
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
              .filter((e) => e.type === "blob")
              .map((e) => posix.basename(e.path))
              .filter(isProfileFile)
              .sort(),
          ),
        ),
      readText: (path) =>
        catBlob(`${commit}:${inRepo(path)}`).pipe(
          Effect.map((bytes) => (bytes ? Buffer.from(bytes).toString("utf8") : undefined)),
        ),
      readBytes: (path) => catBlob(`${commit}:${inRepo(path)}`),
      // Git stores symlinks as links, never follows them: a committed directory is always inside.
      staysInside: () => true,
      walk: (dir) =>
        Effect.gen(function* () {
          const base = inRepo(dir)
          const listed = yield* lsTree(`${base}/`, true)
          const files = listed.filter((e) => e.type === "blob")
          if (files.length === 0) return undefined
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
