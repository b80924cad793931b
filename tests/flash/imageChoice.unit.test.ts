import { describe, expect, it } from "vitest"
import { chooseCardImage } from "../../src/flash/imageChoice.js"

const x86 = [
  { name: "openwrt-x86-64-generic-squashfs-rootfs.img.gz", type: "rootfs", filesystem: "squashfs" },
  { name: "openwrt-x86-64-generic-ext4-combined.img.gz", type: "combined", filesystem: "ext4" },
  { name: "openwrt-x86-64-generic-squashfs-combined.img.gz", type: "combined", filesystem: "squashfs" },
  {
    name: "openwrt-x86-64-generic-squashfs-combined-efi.img.gz",
    type: "combined-efi",
    filesystem: "squashfs",
  },
]
const router = [
  { name: "openwrt-ath79-generic-tplink_archer-c7-v5-squashfs-sysupgrade.bin", type: "sysupgrade" },
  { name: "openwrt-ath79-generic-tplink_archer-c7-v5-squashfs-factory.bin", type: "factory" },
]

describe("which image goes on a card", () => {
  it("prefers an EFI combined squashfs image, and says what it passed over", () => {
    const { chosen, why } = chooseCardImage(x86, "auto")
    expect(chosen?.name).toBe("openwrt-x86-64-generic-squashfs-combined-efi.img.gz")
    expect(why).toContain("squashfs-combined.img.gz")
  })

  it("follows the profile's policy", () => {
    expect(chooseCardImage(x86, "combined").chosen?.name).toBe(
      "openwrt-x86-64-generic-squashfs-combined.img.gz",
    )
    expect(chooseCardImage(router, "factory").chosen?.type).toBe("factory")
  })

  it("never picks a sysupgrade image, and explains why nothing fits", () => {
    const only = chooseCardImage([router[0] as (typeof router)[number]], "auto")
    expect(only.chosen).toBeUndefined()
    expect(only.why).toContain("sysupgrade")
    expect(chooseCardImage(x86, "sdcard").chosen).toBeUndefined()
  })
})
