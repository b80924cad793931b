import { createHash } from "node:crypto"
import {
  closeSync,
  createReadStream,
  createWriteStream,
  fchmodSync,
  ftruncateSync,
  openSync,
  readFileSync,
  writeSync,
  writevSync,
} from "node:fs"
import { chmod, lstat, mkdir, readdir, readlink, symlink } from "node:fs/promises"
import { join, posix } from "node:path"
import type { Readable } from "node:stream"
import { Effect } from "effect"
import { Header, Parser, Pax, type ReadEntry } from "tar"
import { CacheEntryError, InternalError } from "../errors.js"
import type { FileContent } from "../store/treeDigest.js"

/*
 * A store path as a deterministic tar, like a Nix NAR: entries in sorted order (a directory before its
 * content), modes kept (permission bits only), owners, names and times zero, no pax time or owner records,
 * only directories, regular files and symbolic links (anything else refuses the pack). The same tree
 * always gives the same bytes, so the same output built on two machines has the same layer digest.
 *
 * Unpacking is fail-closed: only those three kinds, no absolute paths, no `..`, no entry twice, no
 * symbolic link whose target leaves the tree, a file's data exactly its header's size, and nothing after
 * the end; the caller then checks the unpacked tree's digest against the signed one.
 */

interface Entry {
  readonly path: string
  readonly type: "Directory" | "File" | "SymbolicLink"
  readonly mode: number
  readonly size: number
  readonly linkpath?: string | undefined
}

const block = 512
/** Files up to this size are read and written in one call. */
const smallFile = 1024 * 1024
const zeroTime = new Date(0)

/** The tree under `root`, sorted, directories before their content. Refuses devices, fifos and sockets. */
const listTree = async (root: string): Promise<Array<Entry>> => {
  const entries: Array<Entry> = []
  const visit = async (relative: string): Promise<void> => {
    const names = (await readdir(relative === "" ? root : join(root, relative))).sort()
    for (const name of names) {
      const path = relative === "" ? name : `${relative}/${name}`
      const stat = await lstat(join(root, path))
      const mode = stat.mode & 0o7777
      if (stat.isDirectory()) {
        entries.push({ path, type: "Directory", mode, size: 0 })
        await visit(path)
      } else if (stat.isFile()) entries.push({ path, type: "File", mode, size: stat.size })
      else if (stat.isSymbolicLink())
        entries.push({
          path,
          type: "SymbolicLink",
          mode: 0o777,
          size: 0,
          linkpath: await readlink(join(root, path)),
        })
      else throw new Error(`${path}: not a directory, regular file or symbolic link`)
    }
  }
  await visit("")
  return entries
}

const headerOf = (entry: Entry): Buffer => {
  const path = entry.type === "Directory" ? `${entry.path}/` : entry.path
  const header = new Header({
    path,
    mode: entry.mode,
    uid: 0,
    gid: 0,
    size: entry.size,
    mtime: zeroTime,
    type: entry.type,
    linkpath: entry.linkpath ?? "",
    uname: "",
    gname: "",
  })
  const needsPax = header.encode()
  const encoded = header.block
  if (!encoded) throw new Error(`${entry.path}: cannot encode a tar header`)
  if (!needsPax) return encoded
  // Long names: a pax record with the path (and link target) only — no times, no owners.
  const pax = new Pax({ path, linkpath: entry.linkpath, size: entry.size }).encode()
  return Buffer.concat([pax, encoded])
}

export interface PackedTree {
  readonly digest: string
  readonly size: number
}

/** Writes the deterministic tar of `root` to `file`; returns its `sha256:` digest and size. */
export const packTree = (root: string, file: string): Effect.Effect<PackedTree, InternalError> =>
  Effect.tryPromise({
    try: async () => {
      const entries = await listTree(root)
      const hash = createHash("sha256")
      const out = createWriteStream(file, { mode: 0o600 })
      let size = 0
      // Output is gathered into large writes; small files are read in one call (a tree of many small files
      // is the common case: an Image Builder has ~15,000).
      let pending: Array<Buffer> = []
      let pendingBytes = 0
      const flush = async () => {
        if (pendingBytes === 0) return
        const chunk = Buffer.concat(pending, pendingBytes)
        pending = []
        pendingBytes = 0
        if (!out.write(chunk)) await new Promise<void>((resolve) => out.once("drain", () => resolve()))
      }
      const write = async (chunk: Buffer) => {
        hash.update(chunk)
        size += chunk.length
        pending.push(chunk)
        pendingBytes += chunk.length
        if (pendingBytes >= 4 * 1024 * 1024) await flush()
      }
      const closed = new Promise<void>((resolve, reject) => {
        out.once("error", reject)
        out.once("close", () => resolve())
      })
      try {
        for (const entry of entries) {
          await write(headerOf(entry))
          if (entry.type !== "File") continue
          let written = 0
          if (entry.size <= smallFile) {
            const data = readFileSync(join(root, entry.path))
            written = data.length
            await write(data)
          } else {
            for await (const chunk of createReadStream(join(root, entry.path), {
              highWaterMark: 1024 * 1024,
            })) {
              const data = chunk as Buffer
              written += data.length
              await write(data)
            }
          }
          if (written !== entry.size) throw new Error(`${entry.path} changed while it was packed`)
          const pad = (block - (entry.size % block)) % block
          if (pad > 0) await write(Buffer.alloc(pad))
        }
        await write(Buffer.alloc(block * 2))
        await flush()
      } finally {
        out.end()
        await closed
      }
      return { digest: `sha256:${hash.digest("hex")}`, size }
    },
    catch: (cause) => new InternalError({ cause }),
  })

/** Whether a link at `path` pointing at `target` stays inside the tree (relative, never above the root). */
export const linkStaysInside = (path: string, target: string): boolean => {
  if (target === "" || posix.isAbsolute(target)) return false
  const resolved = posix.normalize(posix.join(posix.dirname(path), target))
  return resolved !== ".." && !resolved.startsWith("../") && !posix.isAbsolute(resolved)
}

const safePath = (raw: string): string | undefined => {
  const trimmed = raw.replace(/\/+$/, "")
  if (trimmed === "" || posix.isAbsolute(trimmed) || trimmed.includes("\0")) return undefined
  const parts = trimmed.split("/")
  if (parts.some((part) => part === "" || part === "." || part === "..")) return undefined
  return trimmed
}

/** The block size holes are made of: a block of zeros this size, aligned in the file, is not written. */
const holeBlock = 4096
const zeros = Buffer.alloc(holeBlock)

/**
 * Writes a file's bytes in order at the current length, leaving aligned blocks of zeros unwritten (holes);
 * `finish` sets the file's size, so trailing zeros are there too.
 */
class SparseWriter {
  length = 0
  constructor(private readonly fd: number) {}

  write(chunk: Buffer): void {
    let offset = 0
    while (offset < chunk.length) {
      // Up to the next block boundary of the file.
      const end = Math.min(chunk.length, offset + holeBlock - ((this.length + offset) % holeBlock))
      const piece = chunk.subarray(offset, end)
      if (!(piece.length === holeBlock && piece.equals(zeros))) {
        // Gather a run of data blocks into one write.
        let runEnd = end
        while (runEnd < chunk.length) {
          const next = Math.min(chunk.length, runEnd + holeBlock)
          const following = chunk.subarray(runEnd, next)
          if (following.length === holeBlock && following.equals(zeros)) break
          runEnd = next
        }
        for (let done = offset; done < runEnd; )
          done += writeSync(this.fd, chunk, done, runEnd - done, this.length + done)
        offset = runEnd
        continue
      }
      offset = end
    }
    this.length += chunk.length
  }

  finish(): void {
    ftruncateSync(this.fd, this.length)
  }
}

/** What an unpack wrote: its entry count, and each file's content digest, hashed from the bytes written. */
export interface UnpackedTree {
  readonly entries: number
  readonly contents: ReadonlyMap<string, FileContent>
}

/**
 * Unpacks a tar made by `packTree` (a file, or a stream as it downloads) into the empty directory `dest`. Any entry that is not a directory,
 * regular file or symbolic link, names a path outside `dest`, repeats a path, or links out of the tree
 * fails with `CacheEntryError` (`cache_entry_unsafe`); a truncated or malformed archive with
 * `cache_entry_truncated` / `cache_entry_malformed`. The caller removes `dest` on failure.
 */
export const unpackTree = (
  source: string | Readable,
  dest: string,
  subject: string,
  options: { readonly hashFiles?: boolean } = {},
): Effect.Effect<UnpackedTree, CacheEntryError | InternalError> =>
  Effect.tryPromise({
    try: () =>
      new Promise<UnpackedTree>((resolve, reject) => {
        const seen = new Set<string>()
        const contents = new Map<string, FileContent>()
        // Content digests are taken only when the store's digest will want them (not for listing-only trees).
        const hashFiles = options.hashFiles ?? true
        const directories: Array<{ path: string; mode: number }> = []
        let failure: CacheEntryError | undefined
        let pending = Promise.resolve()
        let count = 0
        // Once the input fails the unpack stops: no write starts after that, a file being written stops
        // waiting for data that will not come, and the failure is reported only when every write queued
        // before has ended (the caller then removes `dest`, which nothing writes into any more).
        let stopped = false
        let stopNow = () => {}
        const stopping = new Promise<void>((resolve) => {
          stopNow = () => {
            stopped = true
            resolve()
          }
        })
        /** A write, in order after the others; skipped once the unpack has stopped or refused the archive. */
        const later = (write: () => Promise<void>) => {
          pending = pending.then(() => (stopped || failure !== undefined ? undefined : write()))
        }
        const refuse = (kind: "unsafe" | "truncated" | "malformed", detail: string) => {
          failure ??= new CacheEntryError({ kind, subject, detail })
        }
        const parser = new Parser({
          strict: true,
          onwarn: (_code, message) => refuse("malformed", String(message)),
          onReadEntry: (entry: ReadEntry) => {
            const path = safePath(entry.path)
            const type = entry.type
            if (failure !== undefined) return entry.resume()
            if (path === undefined) {
              refuse("unsafe", `entry \`${entry.path}\` names a path outside the store path`)
              return entry.resume()
            }
            if (seen.has(path)) {
              refuse("unsafe", `entry \`${path}\` appears twice`)
              return entry.resume()
            }
            seen.add(path)
            const parent = posix.dirname(path)
            if (parent !== "." && !seen.has(parent)) {
              refuse("malformed", `entry \`${path}\` comes before its directory`)
              return entry.resume()
            }
            const mode = (entry.mode ?? 0) & 0o7777
            const target = join(dest, path)
            count += 1
            if (type === "Directory") {
              directories.push({ path: target, mode })
              later(() => mkdir(target, { mode: 0o700 }))
              return entry.resume()
            }
            if (type === "SymbolicLink") {
              const link = entry.linkpath ?? ""
              if (!linkStaysInside(path, link)) {
                refuse("unsafe", `symbolic link \`${path}\` → \`${link}\` points outside the store path`)
                return entry.resume()
              }
              later(() => symlink(link, target))
              return entry.resume()
            }
            if (type !== "File" && type !== "OldFile") {
              refuse("unsafe", `entry \`${path}\` is a ${type}: only directories, files and symbolic links`)
              return entry.resume()
            }
            // Write the file's data in order. A small file is gathered and written in one go (synchronously:
            // four thread-pool round trips per file would dominate a tree of many small files); a large one
            // is streamed, each write awaited before the next chunk.
            const size = entry.size ?? 0
            if (size <= smallFile) {
              const chunks: Array<Buffer> = []
              let received = 0
              const hash = hashFiles ? createHash("sha256") : undefined
              entry.on("data", (chunk: Buffer) => {
                received += chunk.length
                chunks.push(chunk)
                hash?.update(chunk)
              })
              const done = new Promise<void>((resolve, reject) => {
                entry.on("end", () => resolve())
                entry.on("error", reject)
              })
              pending = pending.then(async () => {
                await Promise.race([done, stopping])
                if (stopped) return
                if (received !== size) refuse("truncated", `\`${path}\` has ${received} of ${size} bytes`)
                if (failure !== undefined) return
                const fd = openSync(target, "wx", 0o600)
                try {
                  // The chunks as they came, in one system call (no copy into one buffer first).
                  const written = chunks.length === 0 ? 0 : writevSync(fd, chunks)
                  if (written < received) {
                    const rest = Buffer.concat(chunks, received).subarray(written)
                    for (let offset = 0; offset < rest.length; )
                      offset += writeSync(fd, rest, offset, rest.length - offset)
                  }
                  fchmodSync(fd, mode)
                } finally {
                  closeSync(fd)
                }
                if (hash) contents.set(path, { size: received, sha256: hash.digest("hex") })
              })
              return
            }
            // A large file is written as it streams, synchronously (a thread-pool round trip per chunk
            // would leave the download waiting), its blocks of zeros left as holes: an image's empty space
            // costs nothing to write, and reads back as the same zeros.
            entry.pause()
            pending = pending.then(async () => {
              if (stopped || failure !== undefined) {
                // Not written: its data is read past, so the parser goes on to the end.
                entry.resume()
                return
              }
              const fd = openSync(target, "wx", 0o600)
              const sparse = new SparseWriter(fd)
              const hash = hashFiles ? createHash("sha256") : undefined
              try {
                await new Promise<void>((done, fail) => {
                  entry.on("data", (chunk: Buffer) => {
                    if (stopped) return
                    try {
                      sparse.write(chunk)
                      hash?.update(chunk)
                    } catch (error) {
                      fail(error)
                    }
                  })
                  entry.on("end", () => done())
                  entry.on("error", fail)
                  void stopping.then(() => done())
                  entry.resume()
                })
                if (stopped) return
                sparse.finish()
                fchmodSync(fd, mode)
              } finally {
                closeSync(fd)
              }
              if (sparse.length !== size)
                refuse("truncated", `\`${path}\` has ${sparse.length} of ${size} bytes`)
              else if (hash) contents.set(path, { size, sha256: hash.digest("hex") })
            })
          },
        })
        parser.on("error", (error: Error) => refuse("malformed", error.message))
        const input = typeof source === "string" ? createReadStream(source) : source
        input.on("error", (error: Error) => {
          stopNow()
          pending.then(
            () => reject(error),
            () => reject(error),
          )
        })
        // The empty tree is the end-of-archive marker alone: two zero blocks, which tar's parser does not
        // take for an archive. Its first block decides: zeros → it must be exactly that, and nothing is made.
        // Written by hand (not piped) so the first block can be looked at: backpressure kept as pipe would.
        const feed = (chunk: Buffer) => {
          if (!parser.write(chunk)) {
            input.pause()
            parser.once("drain", () => input.resume())
          }
        }
        let head: Buffer = Buffer.alloc(0)
        let emptyTree: boolean | undefined
        let total = 0
        let allZero = true
        input.on("data", (data: Buffer) => {
          total += data.length
          if (emptyTree === undefined) {
            head = Buffer.concat([head, data])
            if (head.length < block) return
            emptyTree = head.subarray(0, block).every((byte) => byte === 0)
            if (!emptyTree) feed(head)
            else allZero = head.every((byte) => byte === 0)
            head = Buffer.alloc(0)
            return
          }
          if (emptyTree) allZero &&= data.every((byte) => byte === 0)
          else feed(data)
        })
        input.on("end", () => {
          if (emptyTree === true) {
            if (!allZero || total !== block * 2)
              refuse("malformed", "an archive that starts with a zero block is the empty tree alone")
            return failure !== undefined ? reject(failure) : resolve({ entries: 0, contents })
          }
          if (emptyTree === undefined && head.length > 0) feed(head)
          parser.end()
        })
        parser.on("end", () => {
          pending
            .then(async () => {
              const sawEnd = tail.length === block * 2 && tail.equals(Buffer.alloc(block * 2))
              if (failure === undefined && !sawEnd) refuse("truncated", "the archive ends early")
              if (failure !== undefined) throw failure
              // Deepest first: a read-only directory cannot take its own children's modes afterwards.
              for (const dir of directories.reverse()) await chmod(dir.path, dir.mode)
              resolve({ entries: count, contents })
            })
            .catch(reject)
        })
        // A tar made by packTree ends with two zero blocks; one cut short of them is truncated. The last
        // two blocks are kept (a copy: a stream may reuse its buffers) and looked at once, at the end.
        let tail: Buffer = Buffer.alloc(0)
        input.on("data", (data: Buffer) => {
          tail =
            data.length >= block * 2
              ? Buffer.from(data.subarray(-block * 2))
              : Buffer.concat([tail, data]).subarray(-block * 2)
        })
      }),
    catch: (cause) => (cause instanceof CacheEntryError ? cause : new InternalError({ cause })),
  })
