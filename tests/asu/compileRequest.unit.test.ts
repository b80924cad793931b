import { createHash } from "node:crypto"
import { Either } from "effect"
import { describe, expect, it } from "vitest"
import { isRepositoryAllowed } from "../../src/asu/asuSettings.js"
import { decodeBuildRequest } from "../../src/asu/buildRequest.js"
import { compileRequest, diffPackages } from "../../src/asu/compileRequest.js"
import { resolveDeviceProfile } from "../../src/asu/resolveDeviceProfile.js"
import { manifestHash, packagesHash } from "../../src/image/packageManifest.js"

const request = (body: Record<string, unknown>) => {
  const decoded = decodeBuildRequest({ version: "23.05.5", target: "ath79/generic", profile: "p", ...body })
  if (Either.isLeft(decoded)) throw new Error(JSON.stringify(decoded.left))
  return decoded.right
}

const info = {
  defaultPackages: ["base-files", "dnsmasq", "opkg"],
  profiles: [
    { id: "p", name: null, packages: ["kmod-ath10k"], supportedDevices: [], hasImageMetadata: true },
  ],
}

describe("an ASU request compiled to a profile", () => {
  it("removes the defaults not requested with diff_packages, as upstream", () => {
    expect(diffPackages(["luci", "dnsmasq"], new Set(["dnsmasq", "opkg", "base-files"]))).toEqual([
      "-base-files",
      "-opkg",
      "luci",
      "dnsmasq",
    ])
    const compiled = compileRequest(
      request({ packages: ["luci", "dnsmasq"], diff_packages: true }),
      "p",
      info,
    )
    expect(compiled.buildPackages).toEqual(["-base-files", "-kmod-ath10k", "-opkg", "luci", "dnsmasq"])
  })

  it("writes the request's feeds in the order sent, its mode and keys; a request without feeds has none", () => {
    const compiled = compileRequest(
      request({
        repositories: { zeta: "https://feeds.example.org/z", alpha: "https://feeds.example.org/a" },
        repository_keys: ["RWQa7ThFAn3EARBTcgZIX1VADLJpfu/7kPBlHiI3iHruzMs+HMAnY3K6"],
      }),
      "p",
      info,
    )
    expect(JSON.parse(compiled.text)).toMatchObject({
      repositories: [
        { name: "zeta", url: "https://feeds.example.org/z" },
        { name: "alpha", url: "https://feeds.example.org/a" },
      ],
      // upstream's default
      repositories_mode: "replace",
      repository_keys: ["RWQa7ThFAn3EARBTcgZIX1VADLJpfu/7kPBlHiI3iHruzMs+HMAnY3K6"],
    })
    expect(Object.keys(JSON.parse(compileRequest(request({}), "p", info).text))).not.toContain("repositories")
    // Keys alone replace no feeds: the builder keeps its own.
    const keysOnly = compileRequest(
      request({ repository_keys: ["RWQa7ThFAn3EARBTcgZIX1VADLJpfu/7kPBlHiI3iHruzMs+HMAnY3K6"] }),
      "p",
      info,
    )
    expect(JSON.parse(keysOnly.text)).toMatchObject({ repositories: [], repositories_mode: "append" })
  })

  it("writes defaults, rootfs size and filesystem into the profile document", () => {
    const compiled = compileRequest(
      request({ packages: ["luci"], defaults: "uci set x=y", rootfs_size_mb: 64, filesystem: "ext4" }),
      "p",
      info,
    )
    expect(JSON.parse(compiled.text)).toEqual({
      release: "23.05.5",
      target: "ath79/generic",
      device: "p",
      packages: ["luci"],
      first_boot: [{ name: "99-asu-defaults", script: "uci set x=y" }],
      rootfs_size: 64,
      filesystem: "ext4",
      image_name: "{manifest_hash}",
    })
    expect(compiled.id).toMatch(/^asu-[0-9a-f]{16}$/)
    // The same build is the same profile; another is another.
    expect(
      compileRequest(
        request({ packages: ["luci"], defaults: "uci set x=y", rootfs_size_mb: 64, filesystem: "ext4" }),
        "p",
        info,
      ).id,
    ).toBe(compiled.id)
    expect(compileRequest(request({ packages: ["luci"] }), "p", info).id).not.toBe(compiled.id)
  })

  it("applies the package changes of the request's release", () => {
    const compiled = compileRequest(request({ version: "24.10.2", packages: ["auc"] }), "p", info)
    expect(compiled.buildPackages).toEqual(["owut"])
  })
})

describe("device profiles of a request", () => {
  const profiles = {
    "tplink_archer-c7-v5": { supported_devices: ["tplink,archer-c7-v5", "archer-c7-v5"] },
    "8dev_carambola2": {},
  }
  it("accepts ids and supported_devices names, with , written _", () => {
    expect(resolveDeviceProfile(profiles, "tplink_archer-c7-v5")).toBe("tplink_archer-c7-v5")
    expect(resolveDeviceProfile(profiles, "tplink,archer-c7-v5")).toBe("tplink_archer-c7-v5")
    expect(resolveDeviceProfile(profiles, "archer-c7-v5")).toBe("tplink_archer-c7-v5")
    expect(resolveDeviceProfile(profiles, "Foobar")).toBeUndefined()
  })
  it("takes any name on a target whose only profile is generic", () => {
    expect(resolveDeviceProfile({ generic: {} }, "some_random_cpu")).toBe("generic")
  })
})

describe("the repository allow-list", () => {
  it("allows URLs under an allowed prefix only", () => {
    const allow = ["https://feeds.example.org/openwrt"]
    expect(isRepositoryAllowed("https://feeds.example.org/openwrt/packages", allow)).toBe(true)
    expect(isRepositoryAllowed("https://feeds.example.org/openwrt", allow)).toBe(true)
    expect(isRepositoryAllowed("https://feeds.example.org/openwrtx/packages", allow)).toBe(false)
    expect(isRepositoryAllowed("http://feeds.example.org/openwrt/packages", allow)).toBe(false)
    expect(isRepositoryAllowed("https://evil.example/openwrt", allow)).toBe(false)
    expect(isRepositoryAllowed("https://feeds.example.org/openwrt", [])).toBe(false)
    // Only URLs in normal form without user info: wget would parse these otherwise than URL does.
    expect(isRepositoryAllowed("https://feeds.example.org\\@evil.example/../openwrt/x", allow)).toBe(false)
    expect(isRepositoryAllowed("https://feeds.example.org/openwrt/../../other", allow)).toBe(false)
    expect(isRepositoryAllowed("https://user:pw@feeds.example.org/openwrt/x", allow)).toBe(false)
    expect(isRepositoryAllowed("https://FEEDS.example.org/openwrt/x", allow)).toBe(false)
  })
})

describe("upstream's EXTRA_IMAGE_NAME", () => {
  it("is 12 hex digits of the SHA-256 of the manifest's names, deduplicated, sorted, joined with spaces", () => {
    // opkg prints `name - version`, apk `name version`: the same names give the same hash.
    const opkg = "luci - 25.1\nbase-files - 1565-r28427\nbusybox - 1.36.1-r2\nluci - 25.1\n"
    const apk = "busybox 1.36.1-r2\nluci 25.1\nbase-files 1565-r28427\n"
    const expected = createHash("sha256").update("base-files busybox luci").digest("hex").slice(0, 12)
    expect(manifestHash(opkg)).toBe(expected)
    expect(manifestHash(apk)).toBe(expected)
    expect(packagesHash(["luci", "busybox", "base-files"])).toBe(expected)
    expect(manifestHash("luci - 25.1\n")).not.toBe(expected)
  })
})
