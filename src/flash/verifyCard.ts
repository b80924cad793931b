import { createHash } from "node:crypto"
import { Effect } from "effect"
import { FlashImageError, FlashIoError, FlashMismatchError } from "../errors.js"
import { Progress } from "../progress/progress.js"
import { loadXxHash } from "../text/xxhash.js"
import { alignedBuffers, roundUp } from "./alignedMemory.js"
import { type BlockMap, blockMapWalker } from "./blockMap.js"
import { type OpenCard, readFully } from "./cardDevice.js"
import type { ImageReader } from "./imageSource.js"
import { chunkParts, type DigestedSegment, digestedParts, transferChunkBytes } from "./writeCard.js"

/*
 * Reading the card back with O_DIRECT, so what is compared is what the device returns and not what the
 * page cache remembers of the write. Several reads are kept in flight (a card answers faster that way),
 * each chunk is hashed with xxHash64 and compared with the digest taken as it was written. Only when a
 * chunk differs is the image read again, to name the first bad byte and count the bad ones exactly.
 */

const readsInFlight = 4

/**
 * The parts of an image a write puts on a card, with their digests, as `writeCard` takes them (for checking
 * a card later), and the SHA-256 of the image, as a write records it.
 */
export const imageChunkDigests = (
  reader: ImageReader,
  blockSize: number,
  blockMap?: BlockMap,
): Effect.Effect<
  {
    readonly segments: ReadonlyArray<DigestedSegment>
    readonly imageBytes: number
    readonly sha256: string
  },
  FlashImageError
> =>
  Effect.gen(function* () {
    const { h64Raw } = yield* loadXxHash
    return yield* Effect.tryPromise({
      try: async () => {
        const [buffer] = alignedBuffers(1, transferChunkBytes).buffers as [Buffer]
        const segments: Array<DigestedSegment> = []
        const walker = blockMap ? blockMapWalker(blockMap, reader.path) : undefined
        const sha256 = createHash("sha256")
        let imageBytes = 0
        let offset = 0
        for (
          let chunk = 0, filled = await reader.fill(buffer);
          filled > 0;
          chunk++, filled = await reader.fill(buffer)
        ) {
          const padded = roundUp(filled, blockSize)
          buffer.fill(0, filled, padded)
          const parts = chunkParts(walker?.runs(buffer, offset, filled), padded, blockSize)
          segments.push(...digestedParts(buffer, chunk, offset, parts, h64Raw))
          sha256.update(buffer.subarray(0, filled))
          imageBytes += filled
          offset += padded
        }
        return { segments, imageBytes, sha256: sha256.digest("hex") }
      },
      catch: (cause) =>
        cause instanceof FlashImageError
          ? cause
          : new FlashImageError({
              source: reader.path,
              detail: `reading the image failed: ${cause instanceof Error ? cause.message : String(cause)}`,
            }),
    })
  })

export const verifyCard = (
  card: OpenCard,
  expected: { readonly segments: ReadonlyArray<DigestedSegment>; readonly imageBytes: number },
  reopenImage: Effect.Effect<ImageReader, FlashImageError>,
): Effect.Effect<
  { readonly verifiedBytes: number },
  FlashIoError | FlashMismatchError | FlashImageError,
  Progress
> =>
  Effect.gen(function* () {
    const progress = yield* Progress
    const { h64Raw } = yield* loadXxHash
    const task = `verify ${card.path}`
    const segments = expected.segments
    const toVerify = segments.reduce((n, s) => n + s.length, 0)

    const badChunks = yield* Effect.tryPromise({
      try: async (signal) => {
        const { buffers } = alignedBuffers(readsInFlight, transferChunkBytes)
        const bad: Array<number> = []
        const count = segments.length
        let verified = 0
        // Every read settles into a value, so a failing card surfaces as an error here, never as an
        // unhandled rejection of a read still in flight.
        type Settled =
          | { readonly ok: true; readonly buffer: Buffer }
          | { readonly ok: false; readonly cause: unknown }
        const readChunk = (index: number, slot: number): Promise<Settled> => {
          const buffer = buffers[slot] as Buffer
          const segment = segments[index] as DigestedSegment
          return readFully(card.handle, buffer, segment.length, segment.offset).then(
            (): Settled => ({ ok: true, buffer }),
            (cause: unknown): Settled => ({ ok: false, cause }),
          )
        }
        const inFlight: Array<Promise<Settled>> = []
        for (let i = 0; i < Math.min(readsInFlight, count); i++)
          inFlight.push(readChunk(i, i % readsInFlight))
        for (let index = 0; index < count; index++) {
          const settled = await (inFlight.shift() as Promise<Settled>)
          if (!settled.ok) {
            await Promise.all(inFlight)
            throw new FlashIoError({
              device: card.path,
              operation: "reading back",
              offset: segments[index]?.offset ?? 0,
              cause: settled.cause,
            })
          }
          if (signal.aborted) {
            await Promise.all(inFlight)
            throw new Error("interrupted")
          }
          const buffer = settled.buffer
          const segment = segments[index] as DigestedSegment
          if (h64Raw(buffer.subarray(0, segment.length)) !== segment.digest) bad.push(index)
          const next = index + readsInFlight
          if (next < count) inFlight.push(readChunk(next, next % readsInFlight))
          verified += segment.length
          progress.report({ kind: "bytes", task, bytes: verified, total: toVerify })
        }
        return bad
      },
      catch: (cause) =>
        cause instanceof FlashIoError
          ? cause
          : new FlashIoError({ device: card.path, operation: "reading back", offset: 0, cause }),
    })

    if (badChunks.length === 0) {
      progress.report({ kind: "done", task, message: `${card.path} holds the image` })
      return { verifiedBytes: toVerify }
    }

    // Name the damage exactly: compare the bad chunks byte by byte with the image.
    const reader = yield* reopenImage
    const located = yield* Effect.tryPromise({
      try: async () => {
        const [source, device] = alignedBuffers(2, transferChunkBytes).buffers as [Buffer, Buffer]
        const bad = badChunks.map((index) => segments[index] as DigestedSegment)
        let firstBadOffset = -1
        let badBytes = 0
        try {
          const lastChunk = bad[bad.length - 1]?.chunk ?? -1
          for (let chunk = 0; chunk <= lastChunk; chunk++) {
            const filled = await reader.fill(source)
            source.fill(0, filled)
            for (const segment of bad) {
              if (segment.chunk !== chunk) continue
              await readFully(card.handle, device, segment.length, segment.offset)
              for (let i = 0; i < segment.length; i++) {
                if (source[segment.start + i] !== device[i]) {
                  if (firstBadOffset < 0) firstBadOffset = segment.offset + i
                  badBytes++
                }
              }
            }
          }
        } finally {
          await reader.close()
        }
        return { firstBadOffset, badBytes }
      },
      catch: (cause) => new FlashIoError({ device: card.path, operation: "reading back", offset: 0, cause }),
    })
    return yield* new FlashMismatchError({
      device: card.path,
      firstBadOffset: Math.max(0, located.firstBadOffset),
      badBytes: located.badBytes,
      detail: `${badChunks.length} of ${segments.length} parts (of up to ${transferChunkBytes / 1024 / 1024} MiB) differ`,
    })
  })
