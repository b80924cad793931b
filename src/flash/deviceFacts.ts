import { readdirSync, readFileSync, realpathSync, statSync } from "node:fs"
import { basename, dirname, join, resolve } from "node:path"

/*
 * What the system says about a block device and about what uses block devices: the facts a flash
 * pre-flight check is decided on. Read from sysfs and /proc here; kept as plain data so the decision
 * (preflight.ts) is a pure function that fixture trees can test for hardware this machine does not have.
 */

export interface DeviceFacts {
  /** The path as given (may be a /dev/disk/by-id/... link). */
  readonly requested: string
  /** After following links. */
  readonly path: string
  /** The kernel name (sysfs): sdb, mmcblk0, loop3, sdb1. */
  readonly name: string
  /** The kernel has a block device of this name (sysfs). */
  readonly isBlockDevice: boolean
  /**
   * major:minor of the device node the path leads to, when it is a block device node. It must be the
   * sysfs device's: a file or a node named like a disk is not that disk.
   */
  readonly nodeMajorMinor: string | undefined
  readonly isPartition: boolean
  readonly isLoop: boolean
  readonly majorMinor: string
  readonly sizeBytes: number
  /** Writes with O_DIRECT must be multiples of this, at offsets that are. */
  readonly logicalBlockSize: number
  readonly readOnly: boolean
  readonly removable: boolean
  /** The whole disk's partitions, by kernel name and major:minor. */
  readonly partitions: ReadonlyArray<{ readonly name: string; readonly majorMinor: string }>
  /** Holders (device-mapper, md, …) of the disk or any of its partitions. */
  readonly holders: ReadonlyArray<string>
  readonly model?: string | undefined
  readonly serial?: string | undefined
}

export interface MountFact {
  readonly majorMinor: string
  readonly source: string
  readonly mountPoint: string
}

export interface SystemFacts {
  readonly mounts: ReadonlyArray<MountFact>
  /** Devices in /proc/swaps (paths). */
  readonly swaps: ReadonlyArray<string>
}

const read = (path: string): string | undefined => {
  try {
    return readFileSync(path, "utf8").trim()
  } catch {
    return undefined
  }
}

/** Mount records of /proc/self/mountinfo: major:minor (field 3), mount point (5), source (after " - "). */
export const parseMountinfo = (text: string): ReadonlyArray<MountFact> =>
  text
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => {
      const [left = "", right = ""] = line.split(" - ")
      const fields = left.split(" ")
      const source = right.split(" ")[1] ?? ""
      return { majorMinor: fields[2] ?? "", mountPoint: (fields[4] ?? "").replace(/\\040/g, " "), source }
    })

export const parseSwaps = (text: string): ReadonlyArray<string> =>
  text
    .split("\n")
    .slice(1)
    .map((line) => line.split(/\s+/)[0] ?? "")
    .filter((path) => path !== "")

export const readSystemFacts = (root = "/"): SystemFacts => ({
  mounts: parseMountinfo(read(join(root, "proc/self/mountinfo")) ?? ""),
  swaps: parseSwaps(read(join(root, "proc/swaps")) ?? ""),
})

/** A dev_t as sysfs writes it, major:minor (Linux's encoding). */
export const majorMinorOf = (dev: bigint): string =>
  `${((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn)}:${(dev & 0xffn) | ((dev >> 12n) & ~0xffn)}`

/** major:minor of a block device node, or undefined for anything else. */
export const blockNodeMajorMinor = (path: string): string | undefined => {
  try {
    const stat = statSync(path, { bigint: true })
    return stat.isBlockDevice() ? majorMinorOf(stat.rdev) : undefined
  } catch {
    return undefined
  }
}

/** Facts about `requested`, read under `root` (a fixture tree in tests, `/` for real). */
export const readDeviceFacts = (requested: string, root = "/"): DeviceFacts => {
  // A relative path means what it means to the caller: relative to the working directory.
  const onDisk = root === "/" ? resolve(requested) : join(root, requested)
  let path = root === "/" ? onDisk : requested
  try {
    path = realpathSync(onDisk).slice(root === "/" ? 0 : root.length) || requested
  } catch {
    // reported as not a block device below
  }
  const name = basename(path)
  const sys = join(root, "sys/class/block", name)
  let isBlockDevice = false
  try {
    isBlockDevice = statSync(sys).isDirectory()
  } catch {
    isBlockDevice = false
  }
  const isPartition = read(join(sys, "partition")) !== undefined
  // A partition's sysfs directory sits inside its disk's: the disk is the parent of the resolved path.
  const disk = isPartition ? basename(dirname(realpathSync(sys))) : name
  const diskSys = join(root, "sys/class/block", disk)
  const partitions: Array<{ name: string; majorMinor: string }> = []
  const holders: Array<string> = []
  const listHolders = (dir: string) => {
    try {
      holders.push(...readdirSync(join(dir, "holders")))
    } catch {
      // none
    }
  }
  listHolders(diskSys)
  try {
    for (const entry of readdirSync(diskSys)) {
      if (entry.startsWith(disk) && read(join(diskSys, entry, "partition")) !== undefined) {
        partitions.push({ name: entry, majorMinor: read(join(diskSys, entry, "dev")) ?? "" })
        listHolders(join(diskSys, entry))
      }
    }
  } catch {
    // no such disk
  }
  return {
    requested,
    path,
    name,
    isBlockDevice,
    nodeMajorMinor: blockNodeMajorMinor(join(root, path)),
    isPartition,
    isLoop: name.startsWith("loop"),
    majorMinor: read(join(sys, "dev")) ?? "",
    sizeBytes: Number(read(join(sys, "size")) ?? "0") * 512,
    logicalBlockSize: Number(read(join(diskSys, "queue/logical_block_size")) ?? "512") || 512,
    readOnly: read(join(sys, "ro")) === "1",
    removable: read(join(root, "sys/block", disk, "removable")) === "1",
    partitions,
    holders,
    model: read(join(diskSys, "device/model")),
    serial: read(join(diskSys, "device/serial")),
  }
}
