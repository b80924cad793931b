import { createHash, type Hash } from "node:crypto"
import { existsSync, readFileSync } from "node:fs"
import { basename, dirname, join } from "node:path"
import { FlashImageError } from "../errors.js"

/*
 * A block map (bmaptool's format 2.x, as owrt writes it next to Raspberry Pi OS images, and as bmaptool and
 * other image builders publish it): the blocks of an image that hold data, each range with its SHA-256.
 * `owrt flash` writes and reads back only those, like `bmaptool copy`: an 8 GB image holding 2 GB of data
 * writes 2 GB. Everything in a map is checked before it is trusted: its own checksum, that its ranges lie
 * inside the image, and — as the image streams by — each range's SHA-256 and that every block it leaves out
 * is zeros (so a map of another image can never leave data off the card).
 */

export interface BlockMap {
  /** The map file. */
  readonly path: string
  readonly imageBytes: number
  readonly blockBytes: number
  /** Byte ranges of the image that hold data, sorted, each with the SHA-256 of its bytes. */
  readonly ranges: ReadonlyArray<{ readonly start: number; readonly end: number; readonly sha256: string }>
  /** Bytes of the image the map names (what a flash writes). */
  readonly mappedBytes: number
}

const tag = (text: string, name: string) => new RegExp(`<${name}>\\s*([^<]*?)\\s*</${name}>`).exec(text)?.[1]

/** Reads and checks a block map; `imageBytes` is the size of the image it must describe. */
export const readBlockMap = (path: string, imageBytes: number): BlockMap => {
  const refuse = (detail: string) =>
    new FlashImageError({ source: path, detail: `${detail} (flash without it: --no-bmap)` })
  let text: string
  try {
    text = readFileSync(path, "utf8")
  } catch (cause) {
    throw refuse(`the block map cannot be read: ${cause instanceof Error ? cause.message : String(cause)}`)
  }
  const version = /<bmap\s+version="([^"]+)"/.exec(text)?.[1]
  if (version === undefined || !/^2\.\d+$/.test(version))
    throw refuse(`not a block map of format 2.x (version ${version ?? "missing"})`)
  if (tag(text, "ChecksumType") !== "sha256") throw refuse("the block map's checksums are not SHA-256")
  const declared = tag(text, "BmapFileChecksum")
  if (declared === undefined || !/^[0-9a-f]{64}$/.test(declared))
    throw refuse("the block map has no checksum of its own")
  const actual = createHash("sha256")
    .update(text.replace(declared, "0".repeat(64)))
    .digest("hex")
  if (actual !== declared) throw refuse("the block map is damaged: its checksum does not match its text")
  const size = Number(tag(text, "ImageSize"))
  const block = Number(tag(text, "BlockSize"))
  const count = Number(tag(text, "BlocksCount"))
  if (!Number.isSafeInteger(size) || !Number.isSafeInteger(block) || block <= 0 || block % 512 !== 0)
    throw refuse("the block map's sizes do not parse")
  if (count !== Math.ceil(size / block)) throw refuse("the block map's block count does not fit its size")
  if (size !== imageBytes)
    throw refuse(`the block map is of an image of ${size} bytes, this image has ${imageBytes}`)
  const ranges: Array<{ start: number; end: number; sha256: string }> = []
  let mappedBytes = 0
  for (const match of text.matchAll(
    /<Range\s+chksum="([0-9a-f]{64})"\s*>\s*(\d+)(?:\s*-\s*(\d+))?\s*<\/Range>/g,
  )) {
    const first = Number(match[2])
    const last = Number(match[3] ?? match[2])
    const previous = ranges[ranges.length - 1]
    if (last < first || last >= count || (previous !== undefined && first * block < previous.end))
      throw refuse(`the block map's range ${first}-${last} is out of order or outside the image`)
    const range = { start: first * block, end: Math.min((last + 1) * block, size), sha256: match[1] ?? "" }
    ranges.push(range)
    mappedBytes += range.end - range.start
  }
  const mappedCount = Number(tag(text, "MappedBlocksCount"))
  const blocksInRanges = ranges.reduce((n, r) => n + Math.ceil((r.end - r.start) / block), 0)
  if (mappedCount !== blocksInRanges)
    throw refuse("the block map's mapped block count does not match its ranges")
  return { path, imageBytes: size, blockBytes: block, ranges, mappedBytes }
}

/**
 * The block map published next to an image, if any: `<name>.bmap` for `<name>.img[.xz|.zst|.gz]` (owrt's
 * and bmaptool's convention), or `<image without its compression suffix>.bmap`.
 */
export const blockMapBeside = (image: string): string | undefined => {
  const name = basename(image).replace(/\.(xz|zst|gz)$/, "")
  const candidates = [name.replace(/\.img$/, ""), name].map((stem) => join(dirname(image), `${stem}.bmap`))
  return candidates.find((candidate) => existsSync(candidate))
}

/** A part of the image to write and read back: `length` bytes at `offset`, `start` bytes into its chunk. */
export interface Segment {
  readonly chunk: number
  readonly start: number
  readonly offset: number
  readonly length: number
}

/**
 * Follows an image through a block map chunk by chunk: which parts of each chunk to write, checking the
 * data as it goes (each range's SHA-256 once it has passed; zeros wherever the map names nothing).
 */
export const blockMapWalker = (map: BlockMap, source: string) => {
  let next = 0
  let zeros = Buffer.alloc(0)
  let open: { readonly index: number; readonly hash: Hash } | undefined
  const mismatch = (detail: string) =>
    new FlashImageError({ source, detail: `${detail}: the block map ${map.path} is not of this image` })
  return {
    /**
     * The mapped parts of the chunk at `offset` holding `filled` bytes of image, as byte ranges within it
     * (block-aligned starts); fails if the chunk's data does not agree with the map.
     */
    runs: (chunk: Buffer, offset: number, filled: number): ReadonlyArray<{ start: number; end: number }> => {
      const runs: Array<{ start: number; end: number }> = []
      const chunkEnd = offset + filled
      let zerosFrom = offset
      const expectZeros = (from: number, to: number) => {
        if (to <= from) return
        if (zeros.length < to - from) zeros = Buffer.alloc(chunk.length)
        const part = chunk.subarray(from - offset, to - offset)
        if (part.equals(zeros.subarray(0, to - from))) return
        const at = from + part.findIndex((byte) => byte !== 0)
        throw mismatch(`the image has data at byte ${at}, in blocks the map leaves out`)
      }
      for (let index = open?.index ?? next; index < map.ranges.length; index++) {
        const range = map.ranges[index]
        if (range === undefined || range.start >= chunkEnd) break
        const start = Math.max(range.start, offset)
        const end = Math.min(range.end, chunkEnd)
        expectZeros(zerosFrom, start)
        zerosFrom = end
        runs.push({ start: start - offset, end: end - offset })
        const hash = open?.index === index ? open.hash : createHash("sha256")
        hash.update(chunk.subarray(start - offset, end - offset))
        if (range.end <= chunkEnd) {
          if (hash.digest("hex") !== range.sha256)
            throw mismatch(`the image's bytes ${range.start}-${range.end - 1} do not have the map's SHA-256`)
          open = undefined
          next = index + 1
        } else {
          open = { index, hash }
          break
        }
      }
      expectZeros(zerosFrom, chunkEnd)
      return runs
    },
  }
}
