import { Effect } from "effect"
import xxhash from "xxhash-wasm"
import { FlashIoError, FlashMismatchError } from "../errors.js"
import { Progress } from "../progress/progress.js"
import { alignedBuffers, roundUp } from "./alignedMemory.js"
import { type OpenCard, readFully } from "./cardDevice.js"
import type { ImageReader } from "./imageSource.js"
import { transferChunkBytes } from "./writeCard.js"

/*
 * Reading the card back with O_DIRECT, so what is compared is what the device returns and not what the
 * page cache remembers of the write. Several reads are kept in flight (a card answers faster that way),
 * each chunk is hashed with xxHash64 and compared with the digest taken as it was written. Only when a
 * chunk differs is the image read again, to name the first bad byte and count the bad ones exactly.
 */

const readsInFlight = 4
const loadHasher = Effect.promise(() => xxhash())

/** Digests of each padded chunk of an image, as `writeCard` takes them (for checking a card later). */
export const imageChunkDigests = (
  reader: ImageReader,
  blockSize: number,
): Effect.Effect<{ readonly digests: ReadonlyArray<bigint>; readonly imageBytes: number }, FlashIoError> =>
  Effect.gen(function* () {
    const { h64Raw } = yield* loadHasher
    return yield* Effect.tryPromise({
      try: async () => {
        const [buffer] = alignedBuffers(1, transferChunkBytes).buffers as [Buffer]
        const digests: Array<bigint> = []
        let imageBytes = 0
        for (let filled = await reader.fill(buffer); filled > 0; filled = await reader.fill(buffer)) {
          const padded = roundUp(filled, blockSize)
          buffer.fill(0, filled, padded)
          digests.push(h64Raw(buffer.subarray(0, padded)))
          imageBytes += filled
        }
        return { digests, imageBytes }
      },
      catch: (cause) => new FlashIoError({ device: "image", operation: "reading", offset: 0, cause }),
    })
  })

export const verifyCard = (
  card: OpenCard,
  expected: { readonly chunkDigests: ReadonlyArray<bigint>; readonly imageBytes: number },
  reopenImage: Effect.Effect<ImageReader, unknown>,
): Effect.Effect<{ readonly verifiedBytes: number }, FlashIoError | FlashMismatchError, Progress> =>
  Effect.gen(function* () {
    const progress = yield* Progress
    const { h64Raw } = yield* loadHasher
    const task = `verify ${card.path}`
    const total = roundUp(expected.imageBytes, card.blockSize)
    const chunkLength = (index: number) => Math.min(transferChunkBytes, total - index * transferChunkBytes)

    const badChunks = yield* Effect.tryPromise({
      try: async (signal) => {
        const { buffers } = alignedBuffers(readsInFlight, transferChunkBytes)
        const bad: Array<number> = []
        const count = expected.chunkDigests.length
        let verified = 0
        const readChunk = (index: number, slot: number) => {
          const buffer = buffers[slot] as Buffer
          return readFully(card.handle, buffer, chunkLength(index), index * transferChunkBytes).then(
            () => buffer,
          )
        }
        const inFlight: Array<Promise<Buffer>> = []
        for (let i = 0; i < Math.min(readsInFlight, count); i++)
          inFlight.push(readChunk(i, i % readsInFlight))
        for (let index = 0; index < count; index++) {
          if (signal.aborted) throw new Error("interrupted")
          const buffer = await (inFlight.shift() as Promise<Buffer>)
          if (h64Raw(buffer.subarray(0, chunkLength(index))) !== expected.chunkDigests[index]) bad.push(index)
          const next = index + readsInFlight
          if (next < count) inFlight.push(readChunk(next, next % readsInFlight))
          verified += chunkLength(index)
          progress.report({
            kind: "bytes",
            task,
            bytes: Math.min(verified, expected.imageBytes),
            total: expected.imageBytes,
          })
        }
        return bad
      },
      catch: (cause) => new FlashIoError({ device: card.path, operation: "reading back", offset: 0, cause }),
    })

    if (badChunks.length === 0) {
      progress.report({ kind: "done", task, message: `${card.path} holds the image` })
      return { verifiedBytes: expected.imageBytes }
    }

    // Name the damage exactly: compare the bad chunks byte by byte with the image.
    const reader = yield* reopenImage.pipe(
      Effect.mapError(
        (cause) =>
          new FlashIoError({ device: card.path, operation: "re-reading the image for", offset: 0, cause }),
      ),
    )
    const located = yield* Effect.tryPromise({
      try: async () => {
        const [source, device] = alignedBuffers(2, transferChunkBytes).buffers as [Buffer, Buffer]
        const bad = new Set(badChunks)
        let firstBadOffset = -1
        let badBytes = 0
        try {
          for (let index = 0; index < expected.chunkDigests.length; index++) {
            const filled = await reader.fill(source)
            if (!bad.has(index)) continue
            const length = chunkLength(index)
            source.fill(0, filled, length)
            await readFully(card.handle, device, length, index * transferChunkBytes)
            for (let i = 0; i < length; i++) {
              if (source[i] !== device[i]) {
                if (firstBadOffset < 0) firstBadOffset = index * transferChunkBytes + i
                badBytes++
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
      detail: `${badChunks.length} of ${expected.chunkDigests.length} chunks of ${transferChunkBytes / 1024 / 1024} MiB differ`,
    })
  })
