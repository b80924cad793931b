import { describe, expect, it } from "vitest"
import { applyPackageChanges, branchOf, changesForBranch, renamedIn } from "../../src/asu/packageChanges.js"

describe("package changes across releases", () => {
  it("derives the branch of a version as upstream does", () => {
    expect(branchOf("23.05.5")).toBe("23.05")
    expect(branchOf("23.05-SNAPSHOT")).toBe("23.05")
    expect(branchOf("24.10.0-rc1")).toBe("24.10")
    expect(branchOf("SNAPSHOT")).toBe("SNAPSHOT")
  })

  it("gives a branch the changes made before it branched off, snapshots all", () => {
    expect(changesForBranch("22.03").map((c) => c.source)).toEqual(["firewall"])
    expect(changesForBranch("24.10").map((c) => c.source)).toContain("auc")
    expect(changesForBranch("24.10").map((c) => c.source)).not.toContain("opkg")
    expect(changesForBranch("SNAPSHOT").map((c) => c.source)).toContain("opkg")
  })

  it("renames, drops and adds for the release, target and device", () => {
    expect(
      applyPackageChanges({
        version: "24.10.2",
        target: "mediatek/filogic",
        device: "glinet_gl-mt6000",
        packages: ["auc", "firewall", "kmod-nft-nat6", "luci-i18n-opkg-de", "luci-i18n-base-en", "-owut"],
      }),
    ).toEqual(["owut", "firewall4", "luci-i18n-package-manager-de", "-owut", "fitblk"])
    expect(
      applyPackageChanges({
        version: "23.05.5",
        target: "ath79/generic",
        device: "netgear_wndr3800",
        packages: ["luci-i18n-opkg-de", "auc"],
      }),
    ).toEqual(["luci-i18n-opkg-de", "auc", "kmod-switch-rtl8366s"])
  })

  it("names the new package of a renamed one", () => {
    expect(renamedIn("24.10.2", "auc")).toEqual({ replacement: "owut", revision: 26792 })
    expect(renamedIn("23.05.5", "auc")).toBeUndefined()
  })
})
