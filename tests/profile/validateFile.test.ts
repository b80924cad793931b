import { afterAll, describe, expect, it } from "vitest"
import { type ErrorDocument, json, makeProject, owrt } from "../helpers/cli.js"

/*
 * `owrt profiles validate <path>`: a YAML file anywhere is checked as if it stood in the profiles
 * directory (its parents and overlays come from there), without recording a revision for it.
 */
describe("profiles validate <file>", () => {
  const project = makeProject({
    "profiles/base.yaml": 'abstract: true\nrelease: "23.05.5"\ntarget: ath79/generic\npackages: [luci]\n',
    "profiles/files/ap/etc/banner": "hello\n",
    "drafts/new-ap.yaml": "extends: base\ndevice: tplink_archer-c7-v5\noverlay: files/ap\n",
    "drafts/broken-ap.yaml": "extends: bsae\ndevice: tplink_archer-c7-v5\n",
    "drafts/typo.yaml": "extends: base\ndevice: x\npacakges: [luci]\n",
  })
  afterAll(() => project.cleanup())
  const run = (args: ReadonlyArray<string>) => owrt(args, { cwd: project.dir })

  it("validates a file outside profiles/, resolving its parents and overlay from profiles/", async () => {
    const result = await run(["profiles", "validate", "drafts/new-ap.yaml", "--json"])
    expect(result.code, result.stdout + result.stderr).toBe(0)
    const report = json<{ valid: boolean; profiles: ReadonlyArray<Record<string, unknown>> }>(result)
    expect(report.valid).toBe(true)
    expect(report.profiles).toEqual([
      { id: "new-ap", file: "drafts/new-ap.yaml", hash: expect.stringMatching(/^[0-9a-f]{64}$/) },
    ])
    const human = await run(["profiles", "validate", "drafts/new-ap.yaml"])
    expect(human.code).toBe(0)
    expect(human.stdout).toContain("✓ new-ap  drafts/new-ap.yaml")
    // Nothing was recorded: the project knows no profile `new-ap`.
    const history = await run(["profiles", "history", "new-ap", "--json"])
    expect(history.code).toBe(4)
  })

  it("reports a broken file at its own path, with the usual profile error", async () => {
    const parent = await run(["profiles", "validate", "drafts/broken-ap.yaml", "--json"])
    expect(parent.code).toBe(3)
    const { error } = json<ErrorDocument>(parent)
    expect(error.code).toBe("profile_parent_missing")
    expect(error.message).toMatch(/^drafts\/broken-ap\.yaml:1:\d+: extends: parent profile `bsae`/)
    expect(error.message).toContain("did you mean `base`?")

    const typo = await run(["profiles", "validate", "drafts/typo.yaml"])
    expect(typo.code).toBe(3)
    expect(typo.stderr).toContain("drafts/typo.yaml:3:1: pacakges: unknown key")
  })

  it("still takes ids and files inside profiles/, and says when a path names nothing", async () => {
    const byId = await run(["profiles", "validate", "base", "profiles/base.yaml", "--json"])
    expect(byId.code, byId.stderr).toBe(0)
    expect(json<{ profiles: ReadonlyArray<{ id: string }> }>(byId).profiles.map((p) => p.id)).toEqual([
      "base",
      "base",
    ])
    const missing = await run(["profiles", "validate", "drafts/nothing.yaml", "--json"])
    expect(missing.code).toBe(4)
    expect(json<ErrorDocument>(missing).error.message).toContain("drafts/nothing.yaml: no such file")
  })
})
