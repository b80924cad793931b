import { createHash } from "node:crypto"
import { Effect } from "effect"
import { FlashImageError, FlashIoError } from "../errors.js"
import { Progress } from "../progress/progress.js"
import { loadXxHash } from "../text/xxhash.js"
import { alignedBuffers, roundUp } from "./alignedMemory.js"
import { type OpenCard, writeFully } from "./cardDevice.js"
import type { ImageReader } from "./imageSource.js"

/*
 * Writing an image to an exclusively opened card with O_DIRECT. The next chunk of the image is read (and
 * the previous one hashed) while the device writes the current one, so the card is the bottleneck.
 * Progress counts bytes the device has taken, not bytes parked in the page cache. One fsync at the end
 * sends the cache-flush command to the device.
 */

export const transferChunkBytes = 4 * 1024 * 1024
/** How much is zeroed at each place a stale partition table or file system signature can hide. */
export const wipeBytes = 1024 * 1024

export interface WrittenImage {
  readonly sha256: string
  /** Bytes of the image (what was read from the source). */
  readonly imageBytes: number
  /** Bytes written to the card: the image padded to the card's block size. */
  readonly writtenBytes: number
  /** xxHash64 of each padded chunk as written, for the read-back. */
  readonly chunkDigests: ReadonlyArray<bigint>
}

export interface WriteOptions {
  readonly imageBytes: number
  readonly wipe: boolean
}

/** Regions zeroed by `--wipe`: the start, just past the image (a stale overlay), and the end (backup GPT). */
export const wipeRegions = (
  cardBytes: number,
  imageBytes: number,
  blockSize: number,
): ReadonlyArray<{ offset: number; length: number }> => {
  const size = Math.floor(cardBytes / blockSize) * blockSize
  const clamp = (offset: number) => {
    const start = Math.max(0, Math.min(offset, size))
    return { offset: start, length: Math.min(wipeBytes, size - start) }
  }
  const regions = [clamp(0), clamp(roundUp(imageBytes, blockSize)), clamp(size - wipeBytes)]
  return regions.filter((r) => r.length > 0)
}

export const writeCard = (
  card: OpenCard,
  reader: ImageReader,
  options: WriteOptions,
): Effect.Effect<WrittenImage, FlashIoError | FlashImageError, Progress> =>
  Effect.gen(function* () {
    const progress = yield* Progress
    const { h64Raw } = yield* loadXxHash
    const task = `write ${card.path}`
    let offset = 0
    const ioFailure = (operation: string) => (cause: unknown) =>
      cause instanceof FlashIoError || cause instanceof FlashImageError
        ? cause
        : new FlashIoError({ device: card.path, operation, offset, cause })
    // The image failing to read is the image's problem, not the card's.
    const fillFrom = (target: Buffer) =>
      reader.fill(target).catch((cause: unknown) => {
        throw new FlashImageError({
          source: reader.path,
          detail: `reading the image failed: ${cause instanceof Error ? cause.message : String(cause)}`,
        })
      })

    if (options.wipe) {
      const [zeros] = alignedBuffers(1, wipeBytes).buffers
      for (const region of wipeRegions(card.sizeBytes, options.imageBytes, card.blockSize)) {
        offset = region.offset
        yield* Effect.tryPromise({
          try: () => writeFully(card.handle, zeros as Buffer, region.length, region.offset),
          catch: ioFailure("wiping"),
        })
      }
      offset = 0
    }

    return yield* Effect.tryPromise({
      try: async (signal) => {
        const [first, second] = alignedBuffers(2, transferChunkBytes).buffers as [Buffer, Buffer]
        const sha256 = createHash("sha256")
        const chunkDigests: Array<bigint> = []
        let current = first
        let spare = second
        let filled = await fillFrom(current)
        let imageBytes = 0
        while (filled > 0) {
          if (signal.aborted) throw new Error("interrupted")
          const padded = roundUp(filled, card.blockSize)
          current.fill(0, filled, padded)
          const write = writeFully(card.handle, current, padded, offset)
          // Hash and read ahead while the device is busy with this chunk.
          sha256.update(current.subarray(0, filled))
          chunkDigests.push(h64Raw(current.subarray(0, padded)))
          const nextFill = fillFrom(spare)
          // If the write fails first, the read-ahead's own failure must not go unheard (Node would exit).
          nextFill.catch(() => undefined)
          await write
          imageBytes += filled
          offset += padded
          progress.report({ kind: "bytes", task, bytes: imageBytes, total: options.imageBytes })
          filled = await nextFill
          ;[current, spare] = [spare, current]
        }
        await card.handle.sync()
        progress.report({ kind: "done", task, message: `wrote ${imageBytes} bytes to ${card.path}` })
        return { sha256: sha256.digest("hex"), imageBytes, writtenBytes: offset, chunkDigests }
      },
      catch: ioFailure("writing"),
    })
  })
