import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { buildMirror, serveMirror } from "../fixtures/mirror/index.js"
import { type ErrorDocument, json, makeProject, owrt } from "../helpers/cli.js"

/*
 * Package and device mistakes against the stand-in Image Builder, which prints opkg's and apk's own
 * messages: every error names what is wrong and how to fix it, and where the full log is; a removal that
 * another package undoes builds with a warning; "did you mean" never offers other hardware.
 */

const profile = (release: string, packages: string, device = "tplink_archer-c7-v5") =>
  `release: "${release}"\ntarget: ath79/generic\ndevice: ${device}\npackages: [${packages}]\n`

const profiles = {
  "profiles/clash-opkg.yaml": profile("23.05.5", "dnsmasq-full"),
  "profiles/clash-apk.yaml": profile("snapshot", "dnsmasq-full"),
  "profiles/clash-fixed.yaml": profile("23.05.5", "dnsmasq-full, -dnsmasq"),
  "profiles/dependency-opkg.yaml": profile("23.05.5", "luci-app-statistics"),
  "profiles/dependency-apk.yaml": profile("snapshot", "luci-app-statistics"),
  "profiles/typo-opkg.yaml": profile("23.05.5", "luci-app-firewal"),
  "profiles/typo-apk.yaml": profile("snapshot", "luci-app-firewal"),
  "profiles/renamed.yaml": profile("24.10.2", "auc"),
  "profiles/conflict.yaml": profile("23.05.5", "wpad-openssl"),
  "profiles/removal.yaml": profile("23.05.5", "-kmod-nft-offload"),
  "profiles/removal-apk.yaml": profile("snapshot", "-kmod-nft-offload"),
  "profiles/other-model.yaml": profile("23.05.5", "luci", "tplink_archer-c6-v3"),
  "profiles/misspelt.yaml": profile("23.05.5", "luci", "TPLink_Archer-C7-v5"),
}

interface Warning {
  readonly code: string
  readonly message: string
  readonly package: string
  readonly pulledInBy: ReadonlyArray<string>
}
interface Realized {
  readonly results: ReadonlyArray<{ readonly profile: string; readonly warnings: ReadonlyArray<Warning> }>
}
interface Builds {
  readonly builds: ReadonlyArray<{ readonly id: number; readonly status: string }>
}

describe("package and device errors name the reason and the fix", () => {
  let mirror: { url: string; close: () => Promise<void> }
  let keyring: string
  const project = makeProject(profiles)
  const run = (args: Array<string>) =>
    owrt(args, { cwd: project.dir, env: { OWRT_UPSTREAM: mirror.url, OWRT_KEYRING: keyring } })

  beforeAll(async () => {
    const built = await buildMirror()
    keyring = built.keyring
    mirror = await serveMirror(built.root)
  })
  afterAll(async () => {
    await mirror.close()
    project.cleanup()
  })

  /** Realizes a profile that must fail: its error, and the id of the failed build it recorded. */
  const failure = async (name: string, code = "package_selection_invalid", exitCode = 7) => {
    const result = await run(["realize", name, "--json"])
    expect(result.code, result.stdout + result.stderr).toBe(exitCode)
    const { error } = json<ErrorDocument>(result)
    expect(error.code).toBe(code)
    const builds = json<Builds>(await run(["builds", "list", "--profile", name, "--json"]))
    const failed = builds.builds[0]
    expect(failed?.status).toBe("failed")
    return { message: error.message, buildId: failed?.id ?? -1 }
  }

  it.each([
    ["clash-opkg", "check_data_file_clashes: Package dnsmasq wants to install file"],
    ["clash-apk", "ERROR: dnsmasq-2.91-r4: trying to overwrite usr/sbin/dnsmasq owned by dnsmasq-full"],
  ])("%s: a file clash names both packages, the file and `-dnsmasq`, and the log", async (name, logLine) => {
    const { message, buildId } = await failure(name)
    expect(message).toContain("`dnsmasq` and `dnsmasq-full` both install /")
    expect(message).toMatch(/\/usr\/sbin\/dnsmasq|\/etc\/init\.d\/dnsmasq/)
    expect(message).toContain("add `-dnsmasq` to packages to use `dnsmasq-full` instead")
    expect(message).toContain(`(full log: owrt builds log ${buildId})`)
    const log = await run(["builds", "log", String(buildId)])
    expect(log.stdout).toContain(logLine)
  })

  it("builds what the fix says", async () => {
    const result = await run(["realize", "clash-fixed", "--json"])
    expect(result.code, result.stdout + result.stderr).toBe(0)
  })

  it.each(["dependency-opkg", "dependency-apk"])(
    "%s: an unsatisfiable dependency names the package and the missing dependency",
    async (name) => {
      const { message, buildId } = await failure(name)
      expect(message).toContain("`luci-app-statistics` depends on `collectd`")
      expect(message).toContain("which no package feed of the builder provides")
      expect(message).toContain(`owrt builds log ${buildId}`)
    },
  )

  it.each(["typo-opkg", "typo-apk"])(
    "%s: an unknown package gets a did-you-mean from the index",
    async (name) => {
      const { message, buildId } = await failure(name)
      expect(message).toContain("no package `luci-app-firewal`")
      expect(message).toContain("did you mean `luci-app-firewall`?")
      expect(message).toContain(`owrt builds log ${buildId}`)
    },
  )

  it("offers the new name of a renamed package", async () => {
    const { message } = await failure("renamed")
    expect(message).toContain(
      "no package `auc` in the builder's package feeds — it is called `owut` in this release",
    )
  })

  it("removes the default side of a conflict", async () => {
    const { message } = await failure("conflict")
    expect(message).toContain("`wpad-basic-mbedtls` conflicts with `wpad-openssl`")
    expect(message).toContain("add `-wpad-basic-mbedtls` to packages to use `wpad-openssl` instead")
  })

  it.each(["removal", "removal-apk"])(
    "%s: a removal another package undoes builds, with a warning naming what pulled it in",
    async (name) => {
      const result = await run(["realize", name, "--json"])
      expect(result.code, result.stdout + result.stderr).toBe(0)
      const [realized] = json<Realized>(result).results
      expect(realized?.warnings).toEqual([
        {
          code: "removal_without_effect",
          message: expect.stringContaining(
            "`-kmod-nft-offload` has no effect: `kmod-nft-offload` is still installed",
          ),
          package: "kmod-nft-offload",
          pulledInBy: ["firewall4"],
        },
      ])
      // A cache hit carries it too, and the human output shows it.
      const human = await run(["realize", name])
      expect(human.code).toBe(0)
      expect(human.stderr).toContain(
        `owrt: ${name}: warning[removal_without_effect]: \`-kmod-nft-offload\` has no effect: \`kmod-nft-offload\` is still installed, pulled in by \`firewall4\``,
      )
    },
  )

  it("suggests no other hardware for an unknown device, and lists the devices", async () => {
    const { message } = await failure("other-model", "device_profile_unknown", 3)
    expect(message).not.toContain("did you mean")
    expect(message).toContain("list them: owrt builders devices 23.05.5 ath79/generic")
  })

  it("suggests a misspelt device with its title", async () => {
    const { message } = await failure("misspelt", "device_profile_unknown", 3)
    expect(message).toContain("did you mean `tplink_archer-c7-v5` (TP-Link Archer C7 v5)?")
  })
})
