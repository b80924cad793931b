import { execFile } from "node:child_process"
import { open } from "node:fs/promises"
import { Effect, Schema } from "effect"
import { FlashIoError, FlashRefusedError } from "../errors.js"
import { buildMarkerPath } from "../image/makeImage.js"
import { readDeviceFacts } from "./deviceFacts.js"

/*
 * What a card holds, read back from the build marker every owrt image carries (`/etc/owrt-build` in its
 * root file system). The marker is found without mounting anything: partitions are read from the MBR or
 * GPT, each is sniffed for squashfs or ext2/3/4, and the file is extracted by unsquashfs or debugfs at that
 * offset. Images without a partition table (a kernel followed by squashfs) are scanned at 64 KiB steps.
 */

export const BuildMarker = Schema.Struct({
  owrt: Schema.Number,
  profile: Schema.String,
  revision: Schema.String,
  key: Schema.String,
})
export type BuildMarker = typeof BuildMarker.Type

export interface Identification {
  readonly device: string
  readonly marker?: BuildMarker | undefined
  /** Where the marker was found: byte offset of the file system and its kind. */
  readonly foundAt?: { readonly offset: number; readonly filesystem: "squashfs" | "ext4" } | undefined
  /** File systems looked at. */
  readonly searched: ReadonlyArray<{ readonly offset: number; readonly filesystem: string }>
}

const sector = 512

/** Start offsets of the partitions an MBR or GPT lists (bytes). */
export const partitionOffsets = (head: Buffer): ReadonlyArray<number> => {
  if (head.length < 1024 || head.readUInt16LE(510) !== 0xaa55) return []
  const mbr: Array<number> = []
  let protective = false
  for (let i = 0; i < 4; i++) {
    const entry = 446 + i * 16
    const type = head[entry + 4]
    const start = head.readUInt32LE(entry + 8)
    if (type === 0xee) protective = true
    else if (type !== 0 && start > 0) mbr.push(start * sector)
  }
  if (!protective || head.subarray(512, 520).toString("latin1") !== "EFI PART") return mbr
  const entriesLba = Number(head.readBigUInt64LE(512 + 72))
  const count = head.readUInt32LE(512 + 80)
  const size = head.readUInt32LE(512 + 84)
  const gpt: Array<number> = []
  for (let i = 0; i < Math.min(count, 128); i++) {
    const at = entriesLba * sector + i * size
    if (at + 48 > head.length) break
    const typeGuid = head.subarray(at, at + 16)
    if (typeGuid.every((b) => b === 0)) continue
    gpt.push(Number(head.readBigUInt64LE(at + 32)) * sector)
  }
  return gpt
}

const filesystemAt = (block: Buffer): "squashfs" | "ext4" | undefined => {
  if (block.subarray(0, 4).toString("latin1") === "hsqs") return "squashfs"
  if (block.length >= 1082 && block.readUInt16LE(1080) === 0xef53) return "ext4"
  return undefined
}

const extract = (
  device: string,
  offset: number,
  filesystem: "squashfs" | "ext4",
): Promise<string | undefined> =>
  new Promise((resolve) => {
    const [command, args] =
      filesystem === "squashfs"
        ? ["unsquashfs", ["-o", String(offset), "-cat", device, buildMarkerPath]]
        : ["debugfs", ["-R", `cat /${buildMarkerPath}`, `${device}?offset=${offset}`]]
    execFile(command, args, { encoding: "utf8", maxBuffer: 64 * 1024 }, (error, stdout) =>
      resolve(error || stdout.trim() === "" ? undefined : stdout),
    )
  })

const scanLimit = 64 * 1024 * 1024
const scanStep = 64 * 1024

export const identifyCard = (
  requested: string,
): Effect.Effect<Identification, FlashRefusedError | FlashIoError> =>
  Effect.gen(function* () {
    const facts = readDeviceFacts(requested)
    if (!facts.isBlockDevice) {
      return yield* new FlashRefusedError({
        code: "flash_not_block_device",
        device: requested,
        reason: `${requested} is not a block device; give the card's device, e.g. /dev/sdb or /dev/mmcblk0`,
      })
    }
    return yield* Effect.tryPromise({
      try: async (): Promise<Identification> => {
        const handle = await open(facts.path, "r")
        const searched: Array<{ offset: number; filesystem: string }> = []
        try {
          const readAt = async (offset: number, length: number) => {
            const buffer = Buffer.alloc(length)
            const { bytesRead } = await handle.read(buffer, 0, length, offset)
            return buffer.subarray(0, bytesRead)
          }
          const head = await readAt(0, 64 * 1024)
          const partitions = partitionOffsets(head)
          const candidates = partitions.length > 0 ? partitions : [0]
          const tryAt = async (offset: number) => {
            const filesystem = filesystemAt(await readAt(offset, 2048))
            if (!filesystem) return undefined
            searched.push({ offset, filesystem })
            const text = await extract(facts.path, offset, filesystem)
            if (text === undefined) return undefined
            const marker = Schema.decodeUnknownOption(Schema.parseJson(BuildMarker))(text.trim())
            return marker._tag === "Some"
              ? { marker: marker.value, foundAt: { offset, filesystem } }
              : undefined
          }
          // Root file systems come last in OpenWrt's layouts: look there first.
          for (const offset of [...candidates].reverse()) {
            const found = await tryAt(offset)
            if (found) return { device: facts.path, ...found, searched }
          }
          if (partitions.length === 0) {
            const limit = Math.min(scanLimit, facts.sizeBytes)
            for (let offset = scanStep; offset < limit; offset += scanStep) {
              const found = await tryAt(offset)
              if (found) return { device: facts.path, ...found, searched }
            }
          }
          return { device: facts.path, searched }
        } finally {
          await handle.close()
        }
      },
      catch: (cause) => new FlashIoError({ device: facts.path, operation: "reading", offset: 0, cause }),
    })
  })
