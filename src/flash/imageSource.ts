import { createHash } from "node:crypto"
import { createReadStream } from "node:fs"
import { type FileHandle, open } from "node:fs/promises"
import { Transform } from "node:stream"
import { pipeline } from "node:stream/promises"
import { Effect } from "effect"
import { sniffCompression } from "../builder/extractArchive.js"
import { FlashImageError } from "../errors.js"
import { childProcess, zlib } from "../process/lazyBuiltin.js"

/*
 * An image to write: a raw disk image, one compressed with gzip (OpenWrt ships x86 and Raspberry Pi
 * images as `.img.gz`, often with signature metadata after the gzip stream), or with xz or zstd (Raspberry
 * Pi OS images, `.img.xz`/`.img.zst`: decompressed by the system's xz/zstd as the card asks for bytes). Compression is judged from
 * the content, never from the name. Of a gzip file only the first member counts, as `gunzip` reads it:
 * whatever follows its trailer is ignored, whatever its first bytes are; a member that is truncated or
 * whose trailer (CRC-32, size) does not match what it decompresses to is refused.
 */

interface ImageFile {
  readonly path: string
  /** Bytes that land on the card (the decompressed size). */
  readonly bytes: number
  /** Bytes of the file itself. */
  readonly fileBytes: number
  /** SHA-256 of the file, when opening it already read it all (gzip, to count its size). */
  readonly sha256?: string | undefined
}

export type ImageSource =
  | (ImageFile & { readonly compression: "none" })
  | (ImageFile & {
      readonly compression: "gzip"
      /** Where the member's deflate data starts, and the CRC-32 of what it decompresses to. */
      readonly gzip: { readonly dataOffset: number; readonly crc32: number }
    })
  | (ImageFile & { readonly compression: "xz" | "zstd" })

/** Fills caller-owned (aligned) buffers with the image's bytes, in order. */
export interface ImageReader {
  readonly path: string
  /** Fills `target` from the start; returns how many bytes it holds (less than its size only at the end). */
  readonly fill: (target: Buffer) => Promise<number>
  readonly close: () => Promise<void>
  /** For a compressed image: SHA-256 of the file as it was read (of a raw one, it is what was written). */
  readonly fileSha256?: (() => string) | undefined
}

const invalid = (path: string, detail: string) => new FlashImageError({ source: path, detail })

/** A gzip image that cannot be decompressed; `detail` says why. */
class GzipProblem extends Error {}

const gzipFlags = { text: 1, headerCrc: 2, extra: 4, name: 8, comment: 16 } as const
/** A longer header (file name, comment, extra field) is not one an image tool wrote. */
const gzipHeaderLimit = 64 * 1024

/** Where the deflate data of the gzip member at the start of `head` begins (RFC 1952, section 2.3). */
export const gzipDataOffset = (head: Buffer): number => {
  if (head.length < 10 || head[0] !== 0x1f || head[1] !== 0x8b) throw new GzipProblem("not a gzip header")
  if (head[2] !== 8) throw new GzipProblem(`unknown compression method ${head[2]}`)
  const flags = head[3] ?? 0
  if (flags & 0xe0) throw new GzipProblem("reserved header flags are set")
  let offset = 10
  const need = (bytes: number) => {
    if (offset + bytes > head.length) throw new GzipProblem("the gzip header is cut short or too long")
  }
  if (flags & gzipFlags.extra) {
    need(2)
    offset += 2 + head.readUInt16LE(offset)
  }
  for (const flag of [gzipFlags.name, gzipFlags.comment]) {
    if (!(flags & flag)) continue
    const end = head.indexOf(0, offset)
    if (end < 0) throw new GzipProblem("the gzip header is cut short or too long")
    offset = end + 1
  }
  if (flags & gzipFlags.headerCrc) offset += 2
  need(0)
  return offset
}

/** Passes on what follows the first `skip` bytes, hashing everything that goes through. */
const skipAndHash = (skip: number, hash: ReturnType<typeof createHash>) => {
  let toSkip = skip
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk)
      const rest = chunk.subarray(Math.min(toSkip, chunk.length))
      toSkip -= chunk.length - rest.length
      done(null, rest.length > 0 ? rest : undefined)
    },
  })
}

const inflateProblem = (e: unknown): Error =>
  e instanceof GzipProblem
    ? e
    : new GzipProblem(
        e instanceof Error && /unexpected end of file/i.test(e.message)
          ? "the gzip stream is truncated"
          : e instanceof Error
            ? e.message
            : String(e),
      )

/**
 * Decompresses the first gzip member once, without keeping its output: counts its bytes, checks them
 * against the member's trailer (CRC-32 and size), and hashes the whole file on the same pass.
 */
const inspectGzip = async (
  path: string,
  handle: FileHandle,
): Promise<{ bytes: number; sha256: string; dataOffset: number; crc32: number }> => {
  const head = Buffer.alloc(gzipHeaderLimit)
  const { bytesRead } = await handle.read(head, 0, head.length, 0)
  const dataOffset = gzipDataOffset(head.subarray(0, bytesRead))
  const hash = createHash("sha256")
  const inflate = zlib().createInflateRaw()
  let bytes = 0
  let crc = 0
  inflate.on("data", (chunk: Buffer) => {
    bytes += chunk.length
    crc = zlib().crc32(chunk, crc)
  })
  // Raw inflate stops at the end of the deflate data and ignores the rest: the trailer and anything after it.
  // The pipeline settles once the input is in; the inflate ends (or finds the data cut short) after that.
  const inflated = new Promise<void>((resolve, reject) => {
    inflate.on("end", resolve)
    inflate.on("error", reject)
  })
  await Promise.all([
    pipeline(createReadStream(path), skipAndHash(dataOffset, hash), inflate),
    inflated,
  ]).catch((e: unknown) => {
    throw inflateProblem(e)
  })
  const trailer = Buffer.alloc(8)
  const trailerAt = dataOffset + inflate.bytesWritten
  const { bytesRead: trailerBytes } = await handle.read(trailer, 0, 8, trailerAt)
  if (trailerBytes < 8) throw new GzipProblem("the gzip stream is truncated (its trailer is missing)")
  if (trailer.readUInt32LE(0) !== crc >>> 0) {
    throw new GzipProblem("the CRC-32 of the decompressed data does not match the gzip trailer")
  }
  if (trailer.readUInt32LE(4) !== bytes % 2 ** 32) {
    throw new GzipProblem("the decompressed size does not match the gzip trailer")
  }
  return { bytes, sha256: hash.digest("hex"), dataOffset, crc32: crc >>> 0 }
}

export const openImageSource = (path: string): Effect.Effect<ImageSource, FlashImageError> =>
  Effect.tryPromise({
    try: async () => {
      const handle = await open(path, "r")
      try {
        const stat = await handle.stat()
        if (!stat.isFile()) throw invalid(path, "not a regular file")
        if (stat.size === 0) throw invalid(path, "the image is empty")
        const head = Buffer.alloc(512)
        const { bytesRead } = await handle.read(head, 0, head.length, 0)
        const compression = sniffCompression(head.subarray(0, bytesRead))
        if (compression === "gzip") {
          const inspected = await inspectGzip(path, handle).catch((e: unknown) => {
            throw invalid(path, `corrupt gzip image (${e instanceof Error ? e.message : String(e)})`)
          })
          if (inspected.bytes === 0) throw invalid(path, "the image is empty once decompressed")
          return {
            path,
            compression: "gzip" as const,
            bytes: inspected.bytes,
            fileBytes: stat.size,
            sha256: inspected.sha256,
            gzip: { dataOffset: inspected.dataOffset, crc32: inspected.crc32 },
          }
        }
        if (compression === "xz" || compression === "zstd") {
          const inspected = await inspectStream(path, compression).catch((e: unknown) => {
            throw invalid(
              path,
              `corrupt ${compression} image (${e instanceof Error ? e.message : String(e)})`,
            )
          })
          if (inspected.bytes === 0) throw invalid(path, "the image is empty once decompressed")
          return {
            path,
            compression,
            bytes: inspected.bytes,
            fileBytes: stat.size,
            sha256: inspected.sha256,
          }
        }
        return { path, compression: "none" as const, bytes: stat.size, fileBytes: stat.size }
      } finally {
        await handle.close()
      }
    },
    catch: (e) =>
      e instanceof FlashImageError
        ? e
        : invalid(path, `cannot read the image: ${e instanceof Error ? e.message : String(e)}`),
  })

const rawReader = (path: string, handle: FileHandle): ImageReader => {
  let position = 0
  return {
    path,
    fill: async (target) => {
      let filled = 0
      while (filled < target.length) {
        const { bytesRead } = await handle.read(target, filled, target.length - filled, position)
        if (bytesRead === 0) break
        filled += bytesRead
        position += bytesRead
      }
      return filled
    },
    close: () => handle.close(),
  }
}

/**
 * Decompresses the first gzip member as the card asks for bytes. What it yields must be what was
 * inspected when the image was opened (same size, same CRC-32), or the file changed in between.
 */
const gzipReader = (source: Extract<ImageSource, { compression: "gzip" }>): ImageReader => {
  const { gzip } = source
  const inflate = zlib().createInflateRaw({ chunkSize: 1024 * 1024 })
  const file = createReadStream(source.path, { highWaterMark: 1024 * 1024 })
  const hash = createHash("sha256")
  // The digest covers the whole file, metadata after the gzip stream included: wait for its end too.
  const fileEnded = new Promise<void>((resolve) => {
    file.on("end", resolve)
    file.on("close", resolve)
  })
  const feeding = pipeline(file, skipAndHash(gzip.dataOffset, hash), inflate)
  feeding.catch(() => undefined)
  const chunks = inflate[Symbol.asyncIterator]() as AsyncIterator<Buffer>
  let pending: Buffer | undefined
  let done = false
  let bytes = 0
  let crc = 0
  return {
    path: source.path,
    fill: async (target) => {
      let filled = 0
      while (filled < target.length) {
        if (!pending || pending.length === 0) {
          if (done) break
          const next = await chunks.next().catch((e: unknown) => {
            throw inflateProblem(e)
          })
          if (next.done) {
            done = true
            await fileEnded
            if (bytes !== source.bytes || crc >>> 0 !== gzip.crc32) {
              throw new GzipProblem(
                `the image changed since it was opened (it now decompresses to ${bytes} bytes, CRC-32 ${(crc >>> 0).toString(16)})`,
              )
            }
            break
          }
          pending = next.value
          bytes += pending.length
          crc = zlib().crc32(pending, crc)
        }
        const n = pending.copy(target, filled)
        filled += n
        pending = pending.subarray(n)
      }
      return filled
    },
    close: async () => {
      file.destroy()
      inflate.destroy()
    },
    fileSha256: () => hash.copy().digest("hex"),
  }
}

const decompressors = { xz: ["xz", "-dc"], zstd: ["zstd", "-dcq"] } as const

/**
 * The file fed through a hash into `xz -dc`/`zstd -dcq`: its decompressed bytes come out of the child's
 * stdout, and `finished` settles with the file's SHA-256 once the child exited 0 (it rejects with the
 * child's complaint otherwise).
 */
const decompressing = (path: string, compression: "xz" | "zstd") => {
  const [command, flag] = decompressors[compression]
  const child = childProcess().spawn(command, [flag], { stdio: ["pipe", "pipe", "pipe"] })
  const hash = createHash("sha256")
  let stderr = ""
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")))
  const feeding = pipeline(
    createReadStream(path, { highWaterMark: 1024 * 1024 }),
    skipAndHash(0, hash),
    child.stdin,
  )
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on("error", reject)
    child.on("close", resolve)
  })
  const finished = Promise.all([feeding.catch(() => undefined), exited]).then(([, code]) => {
    if (code !== 0)
      throw new Error(
        stderr
          .trim()
          .replace(/^[^:]*: /, "")
          .replace(/^\(stdin\): /, "") || `${command} exited with ${code}`,
      )
    return hash.digest("hex")
  })
  finished.catch(() => undefined)
  return { child, finished }
}

/** Decompresses an xz or zstd image once without keeping its output: its size, and the file's SHA-256. */
const inspectStream = async (
  path: string,
  compression: "xz" | "zstd",
): Promise<{ bytes: number; sha256: string }> => {
  const { child, finished } = decompressing(path, compression)
  let bytes = 0
  child.stdout.on("data", (chunk: Buffer) => {
    bytes += chunk.length
  })
  const sha256 = await finished
  return { bytes, sha256 }
}

/**
 * Decompresses an xz or zstd image as the card asks for bytes. What it yields must be what was inspected
 * when the image was opened (same size, a clean exit), or the file changed in between.
 */
const streamReader = (source: Extract<ImageSource, { compression: "xz" | "zstd" }>): ImageReader => {
  const { child, finished } = decompressing(source.path, source.compression)
  const chunks = child.stdout[Symbol.asyncIterator]() as AsyncIterator<Buffer>
  let pending: Buffer | undefined
  let done = false
  let bytes = 0
  let fileSha: string | undefined
  return {
    path: source.path,
    fill: async (target) => {
      let filled = 0
      while (filled < target.length) {
        if (!pending || pending.length === 0) {
          if (done) break
          const next = await chunks.next()
          if (next.done) {
            done = true
            fileSha = await finished
            if (bytes !== source.bytes) {
              throw new Error(`the image changed since it was opened (it now decompresses to ${bytes} bytes)`)
            }
            break
          }
          pending = next.value
          bytes += pending.length
        }
        const n = pending.copy(target, filled)
        filled += n
        pending = pending.subarray(n)
      }
      return filled
    },
    close: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
    },
    fileSha256: () => fileSha ?? "",
  }
}

export const openImageReader = (source: ImageSource): Effect.Effect<ImageReader, FlashImageError> =>
  Effect.tryPromise({
    try: async () =>
      source.compression === "gzip"
        ? gzipReader(source)
        : source.compression === "xz" || source.compression === "zstd"
          ? streamReader(source)
          : rawReader(source.path, await open(source.path, "r")),
    catch: (e) =>
      invalid(source.path, `cannot read the image: ${e instanceof Error ? e.message : String(e)}`),
  })
