import { createHash } from "node:crypto"
import { Effect } from "effect"
import { FlashImageError, FlashIoError } from "../errors.js"
import { Progress } from "../progress/progress.js"
import { loadXxHash } from "../text/xxhash.js"
import { alignedBuffers, roundUp } from "./alignedMemory.js"
import { type BlockMap, blockMapWalker, type Segment } from "./blockMap.js"
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
  /** Bytes written to the card: the image padded to the card's block size (with a block map, its data only). */
  readonly writtenBytes: number
  /** What was written, each part with its xxHash64 as written, for the read-back. */
  readonly segments: ReadonlyArray<DigestedSegment>
}

/** A part of the card as written: where, and the xxHash64 of its bytes. */
export interface DigestedSegment extends Segment {
  readonly digest: bigint
}

export interface WriteOptions {
  readonly imageBytes: number
  readonly wipe: boolean
  /** Write only the blocks this map names (checking the image against it as it streams). */
  readonly blockMap?: BlockMap | undefined
}

/** The parts of the chunk at `offset` as segments of the card, each with the xxHash64 of its bytes. */
export const digestedParts = (
  chunkBuffer: Buffer,
  chunk: number,
  offset: number,
  parts: ReadonlyArray<{ start: number; length: number }>,
  h64Raw: (data: Uint8Array) => bigint,
): ReadonlyArray<DigestedSegment> =>
  parts.map((part) => ({
    chunk,
    start: part.start,
    offset: offset + part.start,
    length: part.length,
    digest: h64Raw(chunkBuffer.subarray(part.start, part.start + part.length)),
  }))

/**
 * The parts of one chunk to put on the card: all of it, or with a block map the mapped runs (widened to
 * the card's blocks, merged where they then touch).
 */
export const chunkParts = (
  runs: ReadonlyArray<{ start: number; end: number }> | undefined,
  padded: number,
  blockSize: number,
): ReadonlyArray<{ start: number; length: number }> => {
  if (runs === undefined) return [{ start: 0, length: padded }]
  const parts: Array<{ start: number; length: number }> = []
  for (const run of runs) {
    const start = Math.floor(run.start / blockSize) * blockSize
    const end = Math.min(roundUp(run.end, blockSize), padded)
    const last = parts[parts.length - 1]
    if (last !== undefined && start <= last.start + last.length)
      last.length = Math.max(last.length, end - last.start)
    else parts.push({ start, length: end - start })
  }
  return parts
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
        const segments: Array<DigestedSegment> = []
        const walker = options.blockMap ? blockMapWalker(options.blockMap, reader.path) : undefined
        let current = first
        let spare = second
        let filled = await fillFrom(current)
        let imageBytes = 0
        let writtenBytes = 0
        for (let chunk = 0; filled > 0; chunk++) {
          if (signal.aborted) throw new Error("interrupted")
          const padded = roundUp(filled, card.blockSize)
          current.fill(0, filled, padded)
          // With a block map, the chunk is checked against it before any of it goes to the card.
          const parts = chunkParts(walker?.runs(current, offset, filled), padded, card.blockSize)
          const buffer = current
          const base = offset
          const write = (async () => {
            for (const part of parts)
              await writeFully(card.handle, buffer.subarray(part.start), part.length, base + part.start)
          })()
          // Hash and read ahead while the device is busy with this chunk.
          sha256.update(current.subarray(0, filled))
          for (const segment of digestedParts(current, chunk, offset, parts, h64Raw)) {
            segments.push(segment)
            writtenBytes += segment.length
          }
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
        progress.report({
          kind: "done",
          task,
          message: `wrote ${walker ? `the ${writtenBytes} bytes of data of ` : ""}${imageBytes} bytes to ${card.path}`,
        })
        return { sha256: sha256.digest("hex"), imageBytes, writtenBytes, segments }
      },
      catch: ioFailure("writing"),
    })
  })
