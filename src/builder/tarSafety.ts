import { posix } from "node:path"

/*
 * A streaming check of a tar archive's headers, fed the decompressed bytes on their way to GNU tar. It
 * reads only headers (and the small pax / GNU long-name records), skipping file data by offset, so it
 * costs almost nothing per byte. Any entry that could write outside the destination, or create a device,
 * makes the whole archive unsafe: the extraction is killed and its private directory deleted.
 */

export type UnsafeReason =
  | "absolute path"
  | "parent directory reference"
  | "link pointing outside"
  | "device or fifo"
  | "more than one top-level entry"
  | "top-level entry is not a directory"
  | "malformed archive"

export interface UnsafeEntry {
  readonly path: string
  readonly reason: UnsafeReason
  readonly detail?: string | undefined
}

export interface TarSummary {
  readonly topLevel: string
  readonly entries: number
  readonly files: number
}

const block = 512

const readString = (buffer: Uint8Array, offset: number, length: number): string => {
  const slice = buffer.subarray(offset, offset + length)
  const end = slice.indexOf(0)
  return Buffer.from(end === -1 ? slice : slice.subarray(0, end)).toString("utf8")
}

const readSize = (header: Uint8Array): number => {
  const field = header.subarray(124, 136)
  if (((field[0] ?? 0) & 0x80) !== 0) {
    // GNU base-256: big-endian, high bit of the first byte is the marker.
    let value = (field[0] ?? 0) & 0x7f
    for (let i = 1; i < field.length; i++) value = value * 256 + (field[i] ?? 0)
    return value
  }
  const text = readString(header, 124, 12).trim()
  return text === "" ? 0 : Number.parseInt(text, 8)
}

const checksumOk = (header: Uint8Array): boolean => {
  const stored = Number.parseInt(readString(header, 148, 8).trim() || "0", 8)
  let sum = 0
  for (let i = 0; i < block; i++) sum += i >= 148 && i < 156 ? 32 : (header[i] ?? 0)
  return sum === stored
}

const parsePax = (data: Uint8Array): Map<string, string> => {
  const records = new Map<string, string>()
  const text = Buffer.from(data).toString("utf8")
  let position = 0
  while (position < text.length) {
    const space = text.indexOf(" ", position)
    if (space === -1) break
    const length = Number.parseInt(text.slice(position, space), 10)
    if (!Number.isFinite(length) || length <= 0) break
    const record = text.slice(space + 1, position + length - 1)
    const equals = record.indexOf("=")
    if (equals > 0) records.set(record.slice(0, equals), record.slice(equals + 1))
    position += length
  }
  return records
}

/** Judges one entry; `undefined` when it is safe. */
export const judgeEntry = (path: string, type: string, linkTarget: string): UnsafeEntry | undefined => {
  if (path.startsWith("/")) return { path, reason: "absolute path" }
  if (path.includes("..") && path.split("/").includes(".."))
    return { path, reason: "parent directory reference" }
  // Regular files and directories without ".." components cannot leave the destination.
  if (type !== "1" && type !== "2" && type !== "3" && type !== "4" && type !== "6") return undefined
  const normalised = posix.normalize(path)
  if (type === "3" || type === "4" || type === "6")
    return { path, reason: "device or fifo", detail: `type ${type}` }
  if (type === "2") {
    if (linkTarget.startsWith("/"))
      return { path, reason: "link pointing outside", detail: `-> ${linkTarget}` }
    const resolved = posix.normalize(posix.join(posix.dirname(normalised), linkTarget))
    if (resolved === ".." || resolved.startsWith("../")) {
      return { path, reason: "link pointing outside", detail: `-> ${linkTarget}` }
    }
  }
  if (type === "1") {
    const target = posix.normalize(linkTarget)
    if (linkTarget.startsWith("/") || target === ".." || target.startsWith("../")) {
      return { path, reason: "link pointing outside", detail: `hard link to ${linkTarget}` }
    }
  }
  return undefined
}

/**
 * Judges entries one by one (name, type flag, link target) and tracks the single top-level directory an
 * Image Builder archive must have. Fed by the header scanner below or by GNU tar's verbose listing.
 */
export class TarEntryCheck {
  private readonly topLevels = new Set<string>()
  private topLevelIsDirectory = true
  private unsafe: UnsafeEntry | undefined
  entries = 0
  files = 0

  get problem(): UnsafeEntry | undefined {
    return this.unsafe
  }

  fail(problem: UnsafeEntry): void {
    this.unsafe ??= problem
  }

  add(name: string, type: string, link: string): void {
    if (this.unsafe) return
    this.entries += 1
    if (type === "0" || type === "7" || type === "\0") this.files += 1
    const problem = judgeEntry(name, type, link)
    if (problem) {
      this.unsafe = problem
      return
    }
    const path = name.replace(/^(\.\/)+/, "")
    if (path === "." || path === "" || path === "./") return
    const slash = path.indexOf("/")
    const top = slash === -1 ? path : path.slice(0, slash)
    if (!this.topLevels.has(top)) {
      this.topLevels.add(top)
      if (this.topLevels.size > 1) {
        this.unsafe = { path, reason: "more than one top-level entry" }
        return
      }
    }
    if ((slash === -1 || slash === path.length - 1) && type !== "5") this.topLevelIsDirectory = false
    // Only the top-level directory is published: a link must stay inside it, not merely inside the
    // extraction directory (`top/x -> ..` would point into the store).
    if (type === "2" && !link.startsWith("/")) {
      const resolved = posix.normalize(posix.join(posix.dirname(path), link))
      if (resolved !== top && !resolved.startsWith(`${top}/`)) {
        this.unsafe = { path, reason: "link pointing outside", detail: `-> ${link}` }
      }
    }
  }

  finish():
    | { readonly ok: true; readonly summary: TarSummary }
    | { readonly ok: false; readonly problem: UnsafeEntry } {
    if (this.unsafe) return { ok: false, problem: this.unsafe }
    const [top] = [...this.topLevels]
    if (top === undefined)
      return { ok: false, problem: { path: "", reason: "malformed archive", detail: "empty" } }
    if (!this.topLevelIsDirectory)
      return { ok: false, problem: { path: top, reason: "top-level entry is not a directory" } }
    return { ok: true, summary: { topLevel: top, entries: this.entries, files: this.files } }
  }
}

/** Feed decompressed tar bytes in order; `finish` when the stream ends. */
export class TarSafetyScanner {
  private pending: Uint8Array = new Uint8Array(0)
  /** Data bytes (with padding) of the current entry still to skip. */
  private skip = 0
  /** When the current entry's data is a pax or GNU long-name record, it is collected here. */
  private collecting:
    | { kind: string; remaining: number; chunks: Array<Uint8Array>; padding: number }
    | undefined
  private pax = new Map<string, string>()
  private longName: string | undefined
  private longLink: string | undefined
  private ended = false
  private readonly check = new TarEntryCheck()

  /** The first unsafe entry seen, if any: the caller stops extracting at once. */
  get problem(): UnsafeEntry | undefined {
    return this.check.problem
  }

  feed(chunk: Uint8Array): void {
    if (this.problem || this.ended) return
    const data = chunk
    let offset = 0
    while (offset < data.length && !this.problem && !this.ended) {
      if (this.collecting) {
        const take = Math.min(this.collecting.remaining, data.length - offset)
        this.collecting.chunks.push(data.subarray(offset, offset + take))
        this.collecting.remaining -= take
        offset += take
        if (this.collecting.remaining === 0) {
          const { kind, chunks, padding } = this.collecting
          this.collecting = undefined
          this.skip = padding
          this.applyRecord(kind, Buffer.concat(chunks))
        }
        continue
      }
      if (this.skip > 0) {
        const take = Math.min(this.skip, data.length - offset)
        this.skip -= take
        offset += take
        continue
      }
      // Need a whole header block.
      if (this.pending.length > 0 || data.length - offset < block) {
        const need = block - this.pending.length
        const take = Math.min(need, data.length - offset)
        const merged = new Uint8Array(this.pending.length + take)
        merged.set(this.pending)
        merged.set(data.subarray(offset, offset + take), this.pending.length)
        this.pending = merged
        offset += take
        if (this.pending.length < block) continue
        const header = this.pending
        this.pending = new Uint8Array(0)
        this.header(header)
        continue
      }
      this.header(data.subarray(offset, offset + block))
      offset += block
    }
  }

  private applyRecord(kind: string, data: Uint8Array): void {
    if (kind === "x") this.pax = parsePax(data)
    else if (kind === "L") this.longName = readString(data, 0, data.length)
    else if (kind === "K") this.longLink = readString(data, 0, data.length)
    // "g" (global pax) only carries defaults we do not rely on.
  }

  private header(header: Uint8Array): void {
    if (header.every((b) => b === 0)) {
      this.ended = true
      return
    }
    if (!checksumOk(header)) {
      this.check.fail({ path: "", reason: "malformed archive", detail: "bad header checksum" })
      return
    }
    const type = String.fromCharCode(header[156] || 0x30)
    const size = readSize(header)
    const padded = Math.ceil(size / block) * block
    if (type === "x" || type === "g" || type === "L" || type === "K") {
      if (size > 1 << 20) {
        this.check.fail({ path: "", reason: "malformed archive", detail: `oversized ${type} record` })
        return
      }
      this.collecting = { kind: type, remaining: size, chunks: [], padding: padded - size }
      if (size === 0) {
        this.collecting = undefined
        this.applyRecord(type, new Uint8Array(0))
      }
      return
    }
    const magic = readString(header, 257, 6)
    const prefix = magic.startsWith("ustar") ? readString(header, 345, 155) : ""
    const rawName = readString(header, 0, 100)
    const name = this.pax.get("path") ?? this.longName ?? (prefix ? `${prefix}/${rawName}` : rawName)
    const link = this.pax.get("linkpath") ?? this.longLink ?? readString(header, 157, 100)
    const paxSize = this.pax.get("size")
    this.pax = new Map()
    this.longName = undefined
    this.longLink = undefined
    const dataSize = paxSize !== undefined ? Number(paxSize) : size
    this.skip = Math.ceil(dataSize / block) * block
    this.check.add(name, type, link)
  }

  /** Call at the end of the stream: the archive's single top-level directory, or why it is unsafe. */
  finish():
    | { readonly ok: true; readonly summary: TarSummary }
    | { readonly ok: false; readonly problem: UnsafeEntry } {
    if (!this.problem && (this.collecting || this.skip > 0 || this.pending.length > 0)) {
      return { ok: false, problem: { path: "", reason: "malformed archive", detail: "truncated" } }
    }
    return this.check.finish()
  }
}
