import { execFileSync, spawnSync } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

/**
 * A Raspberry Pi OS image read back without mounting anything: the partition table with sfdisk, the FAT
 * boot partition with mtools, the ext4 root with debugfs (read-only), at the offsets the table gives.
 */
export interface ImageReader {
  readonly image: string
  /** A file of the FAT root, or undefined. */
  readonly boot: (name: string) => string | undefined
  /** A file of the root file system, or undefined. */
  readonly cat: (path: string) => string | undefined
  /** An inode's type and mode (octal, with type bits), owner, and a symlink's target; undefined if absent. */
  readonly stat: (path: string) => { mode: string; uid: number; gid: number; link?: string } | undefined
  /** e2fsck -fn of the root file system: its exit code. */
  readonly fsck: () => number
  readonly close: () => void
}

const env = { ...process.env, MTOOLS_SKIP_CHECK: "1", TZ: "UTC", LC_ALL: "C" }

export const readImage = (file: string): ImageReader => {
  const dir = mkdtempSync(join(tmpdir(), "owrt-pi-read-"))
  const image = join(dir, "image.img")
  if (file.endsWith(".xz")) writeFileSync(image, execFileSync("xz", ["-dc", file], { maxBuffer: 1 << 30 }))
  else writeFileSync(image, execFileSync("cat", [file], { maxBuffer: 1 << 30 }))
  const table = JSON.parse(execFileSync("sfdisk", ["-J", image], { encoding: "utf8" })) as {
    partitiontable: { partitions: Array<{ start: number }> }
  }
  const [boot, root] = table.partitiontable.partitions
  const fat = `${image}@@${(boot?.start ?? 0) * 512}`
  const ext4 = `${image}?offset=${(root?.start ?? 0) * 512}`
  const debugfs = (command: string) =>
    spawnSync("debugfs", ["-R", command, ext4], { encoding: "utf8", env, maxBuffer: 1 << 28 })
  return {
    image,
    boot: (name) => {
      const result = spawnSync("mtype", ["-i", fat, `::${name}`], { encoding: "utf8", env })
      return result.status === 0 ? result.stdout : undefined
    },
    cat: (path) => {
      const result = debugfs(`cat ${path}`)
      return /File not found/.test(result.stderr) ? undefined : result.stdout
    },
    stat: (path) => {
      const result = debugfs(`stat ${path}`)
      const type = /Type: (\w+)\s+Mode:\s+(\d+)/.exec(result.stdout)
      const owner = /User:\s+(\d+)\s+Group:\s+(\d+)/.exec(result.stdout)
      if (!type || !owner) return undefined
      const bits = { regular: "100", directory: "40", symlink: "120" }[type[1] ?? ""] ?? "?"
      const link = /Fast link dest: "(.*)"/.exec(result.stdout)?.[1]
      return {
        mode: `${bits}${(type[2] ?? "").replace(/^0/, "")}`,
        uid: Number(owner[1]),
        gid: Number(owner[2]),
        ...(link === undefined ? {} : { link }),
      }
    },
    fsck: () => spawnSync("e2fsck", ["-fn", ext4], { env }).status ?? -1,
    close: () => rmSync(dir, { recursive: true, force: true }),
  }
}
