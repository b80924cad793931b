import { afterAll, describe, expect, it } from "vitest"
import { json, makeProject, owrt } from "../helpers/cli.js"

/*
 * `owrt profiles validate` names the new name of a package its release renamed (the package changes table
 * the ASU service applies, src/asu/packageChanges.json), and says to drop one the release dropped.
 */
describe("profiles validate and renamed packages", () => {
  const project = makeProject({
    "profiles/new.yaml":
      'release: "24.10.2"\ntarget: ath79/generic\ndevice: tplink_archer-c7-v5\npackages: [auc, luci, kmod-nft-nat6, -firewall]\n',
    "profiles/old.yaml":
      'release: "23.05.5"\ntarget: ath79/generic\ndevice: tplink_archer-c7-v5\npackages: [auc, luci]\n',
  })
  afterAll(() => project.cleanup())

  it("warns with the new name in the profile's release, and only there", async () => {
    const result = await owrt(["profiles", "validate", "--json"], { cwd: project.dir })
    expect(result.code, result.stderr).toBe(0)
    const report = json<{
      profiles: ReadonlyArray<{ id: string; warnings: ReadonlyArray<Record<string, unknown>> }>
    }>(result)
    const byId = Object.fromEntries(report.profiles.map((p) => [p.id, p.warnings]))
    expect(byId.old).toEqual([])
    expect(byId.new).toEqual([
      {
        code: "package_renamed",
        package: "auc",
        replacement: "owut",
        message: "`auc`: auc is `owut` since r26792, before 24.10; write `owut`",
      },
      {
        code: "package_renamed",
        package: "kmod-nft-nat6",
        replacement: null,
        message: "`kmod-nft-nat6`: kmod-nft-nat6 was dropped in r20282, before 24.10; remove it",
      },
      {
        code: "package_renamed",
        package: "firewall",
        replacement: "firewall4",
        message: "`-firewall`: firewall is `firewall4` since r18611, before 24.10; write `-firewall4`",
      },
    ])
    const human = await owrt(["profiles", "validate", "new"], { cwd: project.dir })
    expect(human.code).toBe(0)
    expect(human.stdout).toContain(
      "warning[package_renamed]: `auc`: auc is `owut` since r26792, before 24.10; write `owut`",
    )
  })
})
