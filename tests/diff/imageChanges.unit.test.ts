import { describe, expect, it } from "vitest"
import type { Artifact } from "../../src/artifacts/collectArtifacts.js"
import { imageChanges } from "../../src/diff/imageChanges.js"

const image = (
  name: string,
  type: string,
  size: number,
  sha256: string,
  filesystem: string | null = "squashfs",
) => ({ name, type, filesystem, size, sha256 }) satisfies Artifact

describe("imageChanges", () => {
  it("pairs images by name and reports their sizes and delta", () => {
    const before = [
      image("openwrt-ath79-x-squashfs-sysupgrade.bin", "sysupgrade", 1000, "a"),
      image("openwrt-ath79-x-squashfs-factory.bin", "factory", 900, "b"),
    ]
    const after = [
      image("openwrt-ath79-x-squashfs-sysupgrade.bin", "sysupgrade", 1250, "c"),
      image("openwrt-ath79-x-squashfs-factory.bin", "factory", 900, "b"),
    ]
    expect(imageChanges(before, after)).toEqual([
      {
        type: "factory",
        filesystem: "squashfs",
        status: "unchanged",
        from: { name: "openwrt-ath79-x-squashfs-factory.bin", size: 900, sha256: "b" },
        to: { name: "openwrt-ath79-x-squashfs-factory.bin", size: 900, sha256: "b" },
        sizeDelta: 0,
      },
      {
        type: "sysupgrade",
        filesystem: "squashfs",
        status: "changed",
        from: { name: "openwrt-ath79-x-squashfs-sysupgrade.bin", size: 1000, sha256: "a" },
        to: { name: "openwrt-ath79-x-squashfs-sysupgrade.bin", size: 1250, sha256: "c" },
        sizeDelta: 250,
      },
    ])
  })

  it("pairs images whose names differ (another release) by type and file system", () => {
    const changes = imageChanges(
      [image("openwrt-23.05.5-ath79-x-squashfs-sysupgrade.bin", "sysupgrade", 1000, "a")],
      [image("openwrt-24.10.2-ath79-x-squashfs-sysupgrade.bin", "sysupgrade", 900, "b")],
    )
    expect(changes).toHaveLength(1)
    expect(changes[0]).toMatchObject({
      status: "changed",
      from: { name: "openwrt-23.05.5-ath79-x-squashfs-sysupgrade.bin" },
      to: { name: "openwrt-24.10.2-ath79-x-squashfs-sysupgrade.bin" },
      sizeDelta: -100,
    })
  })

  it("tells combined images of different file systems apart, and reports added and removed ones", () => {
    const before = [
      image("v1-ext4-combined.img.gz", "combined", 100, "a", "ext4"),
      image("v1-squashfs-combined.img.gz", "combined", 200, "b", "squashfs"),
      image("v1-kernel.bin", "kernel", 50, "k", null),
    ]
    const after = [
      image("v2-ext4-combined.img.gz", "combined", 110, "c", "ext4"),
      image("v2-squashfs-combined.img.gz", "combined", 190, "d", "squashfs"),
      image("v2-rootfs.tar.gz", "rootfs", 70, "r", null),
    ]
    expect(imageChanges(before, after).map((c) => [c.type, c.filesystem, c.status, c.sizeDelta])).toEqual([
      ["combined", "ext4", "changed", 10],
      ["combined", "squashfs", "changed", -10],
      ["kernel", null, "removed", -50],
      ["rootfs", null, "added", 70],
    ])
  })

  it("does not guess between several unnamed images of one kind", () => {
    const changes = imageChanges(
      [image("a1", "other", 1, "x", null), image("b1", "other", 2, "y", null)],
      [image("a2", "other", 1, "x", null), image("b2", "other", 2, "y", null)],
    )
    expect(changes.map((c) => c.status).sort()).toEqual(["added", "added", "removed", "removed"])
  })
})
