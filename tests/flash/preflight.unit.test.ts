import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import {
  type DeviceFacts,
  parseMountinfo,
  readDeviceFacts,
  type SystemFacts,
} from "../../src/flash/deviceFacts.js"
import { preflight } from "../../src/flash/preflight.js"

const card: DeviceFacts = {
  requested: "/dev/sdb",
  path: "/dev/sdb",
  name: "sdb",
  isBlockDevice: true,
  nodeMajorMinor: "8:16",
  isPartition: false,
  isLoop: false,
  majorMinor: "8:16",
  sizeBytes: 32 * 1024 ** 3,
  logicalBlockSize: 512,
  readOnly: false,
  removable: true,
  partitions: [{ name: "sdb1", majorMinor: "8:17" }],
  holders: [],
}
const quiet: SystemFacts = {
  mounts: [{ majorMinor: "254:0", source: "/dev/vda", mountPoint: "/" }],
  swaps: [],
}
const image = { imageBytes: 120 * 1024 ** 2, allowLoop: false }

describe("flash pre-flight", () => {
  it("accepts an idle whole card large enough for the image", () => {
    expect(preflight(card, quiet, image)).toEqual({ ok: true })
  })

  it.each([
    ["not a block device", { ...card, isBlockDevice: false }, quiet, "flash_not_block_device"],
    ["a file named like the card", { ...card, nodeMajorMinor: undefined }, quiet, "flash_not_block_device"],
    [
      "another disk's node under the card's name",
      { ...card, nodeMajorMinor: "8:32" },
      quiet,
      "flash_not_block_device",
    ],
    [
      "a partition",
      { ...card, name: "sdb1", path: "/dev/sdb1", isPartition: true },
      quiet,
      "flash_partition",
    ],
    [
      "a loop device without --allow-loop",
      { ...card, name: "loop0", path: "/dev/loop0", isLoop: true },
      quiet,
      "flash_loop_not_allowed",
    ],
    [
      "the disk holding /",
      {
        ...card,
        name: "vda",
        path: "/dev/vda",
        majorMinor: "254:0",
        nodeMajorMinor: "254:0",
        partitions: [],
      },
      quiet,
      "flash_system_disk",
    ],
    [
      "a disk whose partition holds /boot",
      card,
      {
        mounts: [...quiet.mounts, { majorMinor: "8:17", source: "/dev/sdb1", mountPoint: "/boot" }],
        swaps: [],
      },
      "flash_system_disk",
    ],
    ["a disk holding swap", card, { mounts: quiet.mounts, swaps: ["/dev/sdb1"] }, "flash_system_disk"],
    [
      "a card with a mounted partition",
      card,
      {
        mounts: [...quiet.mounts, { majorMinor: "8:17", source: "/dev/sdb1", mountPoint: "/media/card" }],
        swaps: [],
      },
      "flash_mounted",
    ],
    [
      "a FUSE mount whose source is the card",
      card,
      {
        mounts: [...quiet.mounts, { majorMinor: "0:52", source: "/dev/sdb", mountPoint: "/mnt/x" }],
        swaps: [],
      },
      "flash_mounted",
    ],
    ["a card held by device-mapper", { ...card, holders: ["dm-0"] }, quiet, "flash_held"],
    ["a read-only card", { ...card, readOnly: true }, quiet, "flash_read_only"],
    ["a card smaller than the image", { ...card, sizeBytes: 64 * 1024 ** 2 }, quiet, "flash_too_small"],
  ] as ReadonlyArray<[string, DeviceFacts, SystemFacts, string]>)(
    "refuses %s",
    (_label, device, system, code) => {
      const verdict = preflight(device, system, image)
      expect(verdict).toMatchObject({ ok: false, code })
    },
  )

  it("allows a loop device when asked to", () => {
    expect(
      preflight({ ...card, name: "loop0", path: "/dev/loop0", isLoop: true }, quiet, {
        ...image,
        allowLoop: true,
      }),
    ).toEqual({
      ok: true,
    })
  })
})

describe("device facts from a sysfs tree", () => {
  const root = mkdtempSync(join(tmpdir(), "owrt-sysfs-"))
  const put = (path: string, content: string) => {
    mkdirSync(dirname(join(root, path)), { recursive: true })
    writeFileSync(join(root, path), `${content}\n`)
  }
  const link = (path: string, target: string) => {
    mkdirSync(dirname(join(root, path)), { recursive: true })
    symlinkSync(target, join(root, path))
  }
  afterAll(() => rmSync(root, { recursive: true, force: true }))

  it("resolves by-id links, finds partitions, size, read-only and identity", () => {
    put("sys/devices/usb/block/sdb/dev", "8:16")
    put("sys/devices/usb/block/sdb/size", "62333952")
    put("sys/devices/usb/block/sdb/ro", "0")
    put("sys/devices/usb/block/sdb/device/model", "SD Card Reader")
    put("sys/devices/usb/block/sdb/device/serial", "000000001234")
    put("sys/devices/usb/block/sdb/sdb1/partition", "1")
    put("sys/devices/usb/block/sdb/sdb1/dev", "8:17")
    mkdirSync(join(root, "sys/devices/usb/block/sdb/holders"), { recursive: true })
    link("sys/class/block/sdb", "../../devices/usb/block/sdb")
    link("sys/class/block/sdb1", "../../devices/usb/block/sdb/sdb1")
    put("sys/block/sdb/removable", "1")
    put("dev/sdb", "")
    put("dev/sdb1", "")
    link("dev/disk/by-id/usb-SD_Card_Reader-0:0", "../../sdb")
    link("dev/disk/by-id/usb-SD_Card_Reader-0:0-part1", "../../sdb1")

    const disk = readDeviceFacts("/dev/disk/by-id/usb-SD_Card_Reader-0:0", root)
    expect(disk).toMatchObject({
      path: "/dev/sdb",
      name: "sdb",
      isBlockDevice: true,
      isPartition: false,
      majorMinor: "8:16",
      sizeBytes: 62333952 * 512,
      readOnly: false,
      removable: true,
      partitions: [{ name: "sdb1", majorMinor: "8:17" }],
      model: "SD Card Reader",
      serial: "000000001234",
    })
    const partition = readDeviceFacts("/dev/disk/by-id/usb-SD_Card_Reader-0:0-part1", root)
    expect(partition).toMatchObject({ path: "/dev/sdb1", isPartition: true })
    // A fixture tree has no device nodes: judge the facts as if /dev held the partition's node.
    const asNode = { ...partition, nodeMajorMinor: partition.majorMinor }
    expect(preflight(asNode, { mounts: [], swaps: [] }, image)).toMatchObject({
      ok: false,
      code: "flash_partition",
    })
  })

  it("reads mount records, sources and escaped mount points", () => {
    const mounts = parseMountinfo(
      "25 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n70 25 8:17 / /media/my\\040card rw - vfat /dev/sdb1 rw\n",
    )
    expect(mounts).toEqual([
      { majorMinor: "254:0", mountPoint: "/", source: "/dev/vda" },
      { majorMinor: "8:17", mountPoint: "/media/my card", source: "/dev/sdb1" },
    ])
  })
})

describe("this machine", () => {
  it("refuses the disk holding / (read from the real sysfs and /proc)", async () => {
    const { readSystemFacts } = await import("../../src/flash/deviceFacts.js")
    const { realpathSync, existsSync } = await import("node:fs")
    const system = readSystemFacts()
    const rootMount = system.mounts.find((m) => m.mountPoint === "/")
    const sysDev = rootMount ? `/sys/dev/block/${rootMount.majorMinor}` : ""
    if (!rootMount || !existsSync(sysDev)) {
      console.warn("skipped: / is not on a block device here (container or overlay root)")
      return
    }
    const resolved = realpathSync(sysDev)
    const isPartition = existsSync(join(resolved, "partition"))
    const disk = isPartition ? dirname(resolved).split("/").pop() : resolved.split("/").pop()
    const verdict = preflight(readDeviceFacts(`/dev/${disk}`), system, image)
    expect(verdict).toMatchObject({ ok: false, code: "flash_system_disk" })
  })
})
