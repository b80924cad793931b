import { createHash } from "node:crypto"
import { createReadStream } from "node:fs"
import { type FileHandle, open } from "node:fs/promises"
import { createGunzip } from "node:zlib"
import { Effect } from "effect"
import { sniffCompression } from "../builder/extractArchive.js"
import { FlashImageError } from "../errors.js"

/*
 * An image to write: a raw disk image, or one compressed with gzip (OpenWrt ships x86 and Raspberry Pi
 * images as `.img.gz`, often with signature metadata after the gzip stream). Compression is judged from
 * the content, never from the name.
 */

export interface ImageSource {
  readonly path: string
  readonly compression: "none" | "gzip"
  /** Bytes that land on the card (the decompressed size). */
  readonly bytes: number
  /** Bytes of the file itself. */
  readonly fileBytes: number
  /** SHA-256 of the file, when opening it already read it all (gzip, to count its size). */
  readonly sha256?: string | undefined
}

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

/**
 * Counts a gzip stream's decompressed bytes (the trailer's size field is absent or wrong after metadata),
 * and hashes the file on the same pass.
 */
const gunzippedBytes = (path: string): Promise<{ bytes: number; sha256: string }> =>
  new Promise((resolve, reject) => {
    let total = 0
    const hash = createHash("sha256")
    const gunzip = createGunzip()
    gunzip.on("data", (chunk: Buffer) => {
      total += chunk.length
    })
    gunzip.on("error", reject)
    const file = createReadStream(path).on("error", reject)
    file.on("data", (chunk) => hash.update(chunk))
    // Both ends: the digest covers what follows the gzip stream too.
    Promise.all([
      new Promise<void>((done) => gunzip.on("end", () => done())),
      new Promise<void>((done) => file.on("end", () => done())),
    ]).then(() => resolve({ bytes: total, sha256: hash.digest("hex") }), reject)
    file.pipe(gunzip)
  })

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
          const { bytes, sha256 } = await gunzippedBytes(path).catch((e: unknown) => {
            throw invalid(path, `corrupt gzip image (${e instanceof Error ? e.message : String(e)})`)
          })
          if (bytes === 0) throw invalid(path, "the image is empty once decompressed")
          return { path, compression: "gzip" as const, bytes, fileBytes: stat.size, sha256 }
        }
        if (compression === "xz" || compression === "zstd") {
          throw invalid(
            path,
            `compressed with ${compression}; decompress it first (${compression} -dk ${path})`,
          )
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

const gzipReader = (path: string): ImageReader => {
  const gunzip = createGunzip({ chunkSize: 1024 * 1024 })
  const file = createReadStream(path, { highWaterMark: 1024 * 1024 })
  const hash = createHash("sha256")
  file.on("data", (chunk) => hash.update(chunk))
  // The digest covers the whole file, metadata after the gzip stream included: wait for its end too.
  const fileEnded = new Promise<void>((resolve) => {
    file.on("end", resolve)
    file.on("close", resolve)
  })
  file.on("error", (e) => gunzip.destroy(e))
  file.pipe(gunzip)
  const chunks = gunzip[Symbol.asyncIterator]() as AsyncIterator<Buffer>
  let pending: Buffer | undefined
  let done = false
  return {
    path,
    fill: async (target) => {
      let filled = 0
      while (filled < target.length) {
        if (!pending || pending.length === 0) {
          if (done) break
          const next = await chunks.next()
          if (next.done) {
            done = true
            await fileEnded
            break
          }
          pending = next.value
        }
        const n = pending.copy(target, filled)
        filled += n
        pending = pending.subarray(n)
      }
      return filled
    },
    close: async () => {
      file.destroy()
      gunzip.destroy()
    },
    fileSha256: () => hash.copy().digest("hex"),
  }
}

export const openImageReader = (source: ImageSource): Effect.Effect<ImageReader, FlashImageError> =>
  Effect.tryPromise({
    try: async () =>
      source.compression === "gzip"
        ? gzipReader(source.path)
        : rawReader(source.path, await open(source.path, "r")),
    catch: (e) =>
      invalid(source.path, `cannot read the image: ${e instanceof Error ? e.message : String(e)}`),
  })
