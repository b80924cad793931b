import { describe, expect, it } from "vitest"
import { PackageSelectionError } from "../../src/errors.js"
import { apkPackageName, parsePackageProblems, withFixes } from "../../src/image/packageProblems.js"

/*
 * make's output as opkg and apk print it (the formats of opkg-lede and apk-tools, as the stand-in Image
 * Builder reproduces them; the variants with a trailing " *" and a tab are opkg's own).
 */

const root = "/work/x/instance/build_dir/target-mips_24kc_musl/root-ath79"

const opkgClash = `Installing packages...
Installing dnsmasq-full (2.90-4) to root...
Installing dnsmasq (2.90-4) to root...
Collected errors:
 * check_data_file_clashes: Package dnsmasq wants to install file ${root}/etc/init.d/dnsmasq
\tBut that file is already provided by package  * dnsmasq-full
 * check_data_file_clashes: Package dnsmasq wants to install file ${root}/usr/sbin/dnsmasq
\tBut that file is already provided by package  * dnsmasq-full
 * opkg_install_cmd: Cannot install package dnsmasq.
make[2]: *** [Makefile:177: package_install] Error 255
`

const apkClash = `(40/80) Installing dnsmasq (2.91-r4)
ERROR: dnsmasq-2.91-r4: trying to overwrite etc/init.d/dnsmasq owned by dnsmasq-full-2.91-r4.
ERROR: dnsmasq-2.91-r4: trying to overwrite usr/sbin/dnsmasq owned by dnsmasq-full-2.91-r4.
1 error; 3 MiB in 80 packages
make[2]: *** [Makefile:177: package_install] Error 1
`

const opkgDependency = `Collected errors:
 * pkg_hash_check_unresolved: cannot find dependency collectd for luci-app-statistics
 * pkg_hash_fetch_best_installation_candidate: Packages for luci-app-statistics found, but incompatible with the architectures configured
 * satisfy_dependencies_for: Cannot satisfy the following dependencies for luci-app-statistics:
 * \tcollectd
 * \tkernel (= 6.6.93-1-0123abcd) *
 * opkg_install_cmd: Cannot install package luci-app-statistics.
`

const opkgDeepDependency = `Collected errors:
 * satisfy_dependencies_for: Cannot satisfy the following dependencies for kmod-foo:
 *      kernel (= 5.15.167-1-abc)
 * opkg_install_cmd: Cannot install package foo-tools.
`

const apkSelect = `ERROR: unable to select packages:
  collectd (no such package):
    required by: luci-app-statistics-25.210.70022~a1b2c3d[collectd]
  nosuch (no such package):
    required by: world[nosuch]
  wpad-basic-mbedtls-2025.06.16~1f2e3d4c-r2:
    conflicts: wpad-openssl-2025.06.16~1f2e3d4c-r2[wpad-basic-mbedtls]
    satisfies: world[wpad-basic-mbedtls]
make[2]: *** [Makefile:177: package_install] Error 3
`

const opkgUnknownAndConflict = `Unknown package 'luci-app-firewal'.
Collected errors:
 * check_conflicts_for: The following packages conflict with wpad-basic-mbedtls:
 * check_conflicts_for: \twpad-openssl 
 * opkg_install_cmd: Cannot install package wpad-basic-mbedtls.
 * opkg_install_cmd: Cannot install package luci-app-firewal.
`

describe("package problems from opkg and apk", () => {
  it("reads opkg's file clash: both packages and the files inside the image", () => {
    expect(parsePackageProblems(opkgClash)).toEqual([
      {
        kind: "file_clash",
        package: "dnsmasq",
        owner: "dnsmasq-full",
        files: ["/etc/init.d/dnsmasq", "/usr/sbin/dnsmasq"],
      },
    ])
  })

  it("reads apk's overwrite the same way", () => {
    expect(parsePackageProblems(apkClash)).toEqual(parsePackageProblems(opkgClash))
  })

  it("names the package and each missing dependency (opkg)", () => {
    expect(parsePackageProblems(opkgDependency)).toEqual([
      {
        kind: "dependency",
        package: "luci-app-statistics",
        missing: ["collectd", "kernel (= 6.6.93-1-0123abcd)"],
      },
    ])
    expect(parsePackageProblems(opkgDeepDependency)).toEqual([
      {
        kind: "dependency",
        package: "kmod-foo",
        missing: ["kernel (= 5.15.167-1-abc)"],
        requestedAs: "foo-tools",
      },
    ])
  })

  it("tells apk's unknown package, missing dependency and conflict apart", () => {
    expect(parsePackageProblems(apkSelect)).toEqual([
      { kind: "dependency", package: "luci-app-statistics", missing: ["collectd"] },
      { kind: "unknown", package: "nosuch" },
      { kind: "conflict", package: "wpad-basic-mbedtls", with: "wpad-openssl" },
    ])
  })

  it("reads opkg's unknown package and conflict", () => {
    expect(parsePackageProblems(opkgUnknownAndConflict)).toEqual([
      { kind: "unknown", package: "luci-app-firewal" },
      { kind: "conflict", package: "wpad-basic-mbedtls", with: "wpad-openssl" },
    ])
  })

  it("finds nothing in output without package errors", () => {
    expect(parsePackageProblems("make[2]: *** [Makefile:190: build_image] Error 1\n")).toEqual([])
  })

  it("splits apk's name-version", () => {
    expect(apkPackageName("luci-app-statistics-25.210.70022~a1b2c3d")).toBe("luci-app-statistics")
    expect(apkPackageName("libubox20240329-2024.03.29~eb9bcb64-r1")).toBe("libubox20240329")
    expect(apkPackageName("kmod-nft-core-6.12.40-r1")).toBe("kmod-nft-core")
  })
})

describe("the package selection error", () => {
  const error = (output: string, selection: ReadonlyArray<string>) =>
    new PackageSelectionError({
      profile: "home-ap",
      problems: withFixes(parsePackageProblems(output), selection, (name) =>
        name === "luci-app-firewal" ? { name: "luci-app-firewall", renamed: false } : undefined,
      ),
      detail: "",
      buildId: 12,
    })

  it("names both packages of a file clash, a file, the fix and the log", () => {
    expect(error(opkgClash, ["dnsmasq-full", "luci"]).message).toBe(
      "profile home-ap: impossible package selection: `dnsmasq` and `dnsmasq-full` both install /etc/init.d/dnsmasq (and 1 more file); add `-dnsmasq` to packages to use `dnsmasq-full` instead (full log: owrt builds log 12)",
    )
  })

  it("removes the default side of a conflict, and offers a close name for an unknown package", () => {
    const message = error(opkgUnknownAndConflict, ["wpad-openssl", "luci-app-firewal"]).message
    expect(message).toContain("`wpad-basic-mbedtls` conflicts with `wpad-openssl`; add `-wpad-basic-mbedtls`")
    expect(message).toContain(
      "no package `luci-app-firewal` in the builder's package feeds — did you mean `luci-app-firewall`?",
    )
    expect(message).toContain("owrt builds log 12")
  })

  it("names the package and its missing dependency", () => {
    expect(error(opkgDependency, ["luci-app-statistics"]).message).toContain(
      "`luci-app-statistics` depends on `collectd`, `kernel (= 6.6.93-1-0123abcd)`, which no package feed of the builder provides",
    )
    expect(error(opkgDeepDependency, ["foo-tools"]).message).toContain(
      "`kmod-foo` (needed by `foo-tools`) depends on",
    )
  })
})
