import { createHash, type Hash } from "node:crypto"
import { createReadStream, statSync } from "node:fs"
import { Effect } from "effect"
import { InternalError } from "../errors.js"

/*
 * A block map (bmaptool's format 2.0) of a raw image: which 4096-byte blocks hold data, each range with its
 * SHA-256, so `bmaptool copy` (and later `owrt flash`) writes and verifies only those. "Mapped" here means
 * "not all zeros", computed from the bytes rather than asked of the host file system (FIEMAP depends on the
 * file system and on how sparse the copy happens to be): the same image gives the same bmap on any machine.
 */

export const bmapBlockSize = 4096

interface Range {
  readonly first: number
  last: number
  readonly hash: Hash
}

const zeroBlock = Buffer.alloc(bmapBlockSize)

/** The ranges of non-zero blocks of `image`, with their SHA-256s. */
const mappedRanges = (
  image: string,
): Effect.Effect<ReadonlyArray<{ first: number; last: number; sha256: string }>, InternalError> =>
  Effect.tryPromise({
    try: async () => {
      const ranges: Array<Range> = []
      let current: Range | undefined
      let block = 0
      let pending = Buffer.alloc(0)
      const take = (data: Buffer) => {
        const zero = data.length === bmapBlockSize ? data.equals(zeroBlock) : data.every((b) => b === 0)
        if (zero) {
          current = undefined
        } else if (current !== undefined && current.last === block - 1) {
          current.last = block
          current.hash.update(data)
        } else {
          current = { first: block, last: block, hash: createHash("sha256").update(data) }
          ranges.push(current)
        }
        block += 1
      }
      for await (const chunk of createReadStream(image, { highWaterMark: 1 << 20 })) {
        const data = pending.length > 0 ? Buffer.concat([pending, chunk as Buffer]) : (chunk as Buffer)
        let at = 0
        for (; at + bmapBlockSize <= data.length; at += bmapBlockSize)
          take(data.subarray(at, at + bmapBlockSize))
        pending = Buffer.from(data.subarray(at))
      }
      if (pending.length > 0) take(pending)
      return ranges.map((r) => ({ first: r.first, last: r.last, sha256: r.hash.digest("hex") }))
    },
    catch: (cause) => new InternalError({ cause }),
  })

/** The bmap file's text, its BmapFileChecksum filled in (the SHA-256 of the file with that field all "0"s). */
export const createBmap = (image: string): Effect.Effect<string, InternalError> =>
  Effect.gen(function* () {
    const size = yield* Effect.try({
      try: () => statSync(image).size,
      catch: (cause) => new InternalError({ cause }),
    })
    const ranges = yield* mappedRanges(image)
    const blocks = Math.ceil(size / bmapBlockSize)
    const mapped = ranges.reduce((n, r) => n + r.last - r.first + 1, 0)
    const placeholder = "0".repeat(64)
    const text = [
      '<?xml version="1.0" ?>',
      "<!-- The block map of an image: the blocks that hold data (not all zeros). Written by owrt. -->",
      '<bmap version="2.0">',
      `    <!-- Image size in bytes: ${size} -->`,
      `    <ImageSize> ${size} </ImageSize>`,
      `    <BlockSize> ${bmapBlockSize} </BlockSize>`,
      `    <BlocksCount> ${blocks} </BlocksCount>`,
      `    <!-- Mapped: ${blocks === 0 ? 0 : ((mapped * 100) / blocks).toFixed(1)}% -->`,
      `    <MappedBlocksCount> ${mapped} </MappedBlocksCount>`,
      "    <ChecksumType> sha256 </ChecksumType>",
      `    <BmapFileChecksum> ${placeholder} </BmapFileChecksum>`,
      "    <BlockMap>",
      ...ranges.map(
        (r) =>
          `        <Range chksum="${r.sha256}"> ${r.first === r.last ? r.first : `${r.first}-${r.last}`} </Range>`,
      ),
      "    </BlockMap>",
      "</bmap>",
      "",
    ].join("\n")
    const checksum = createHash("sha256").update(text).digest("hex")
    return text.replace(placeholder, checksum)
  })
