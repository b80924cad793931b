import { statSync } from "node:fs"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { DiffJson } from "../../src/operations/diff.js"
import { buildMirror, serveMirror } from "../fixtures/mirror/index.js"
import { type ErrorDocument, json, makeProject, owrt } from "../helpers/cli.js"

interface Realized {
  readonly results: ReadonlyArray<{
    readonly rev: number
    readonly key: string
    readonly storePath: string
    readonly artifacts: ReadonlyArray<{ name: string; type: string; size: number; path: string }>
  }>
}
type Result = Realized["results"][number]

const profile = (release: string, packages: string) =>
  [
    `release: "${release}"`,
    "target: ath79/generic",
    "device: tplink_archer-c7-v5",
    `packages: [${packages}]`,
    "overlay: files/ap",
    "",
  ].join("\n")

describe("owrt diff compares two realizations from the store alone", () => {
  const project = makeProject({
    "profiles/ap.yaml": profile("23.05.5", "tcpdump"),
    "profiles/files/ap/etc/motd": "version one\n",
    "profiles/files/ap/etc/only-in-one": "going away\n",
  })
  let mirror: { url: string; close: () => Promise<void> } | undefined
  let keyring = ""
  // Once the mirror is closed, anything that reached for the network would fail.
  const run = (...args: Array<string>) =>
    owrt(args, {
      cwd: project.dir,
      env: { OWRT_UPSTREAM: mirror?.url ?? "http://127.0.0.1:9", OWRT_KEYRING: keyring },
    })
  const realize = async (): Promise<Result> => {
    const result = await run("realize", "ap", "--json")
    expect(result.code, result.stdout + result.stderr).toBe(0)
    return json<Realized>(result).results[0] as Result
  }
  const diff = async (from: string, to: string): Promise<DiffJson> => {
    const result = await run("diff", from, to, "--json")
    expect(result.code, result.stdout + result.stderr).toBe(0)
    return json<DiffJson>(result)
  }
  const fails = async (from: string, to: string) => {
    const result = await run("diff", from, to, "--json")
    return { code: result.code, error: json<ErrorDocument>(result).error }
  }
  const builds: Array<number> = []
  let one: Result
  let two: Result
  let three: Result

  beforeAll(async () => {
    const built = await buildMirror()
    keyring = built.keyring
    mirror = await serveMirror(built.root)
    one = await realize()
    // Revision 2: other packages, and an overlay file changed, one removed, one added.
    project.write("profiles/ap.yaml", profile("23.05.5", "luci-ssl"))
    project.write("profiles/files/ap/etc/motd", "version two, a longer one\n")
    project.write("profiles/files/ap/etc/only-in-two", "new\n")
    const { rmSync } = await import("node:fs")
    rmSync(join(project.dir, "profiles/files/ap/etc/only-in-one"))
    two = await realize()
    // Revision 3: the same profile on the next release (another builder, other package versions).
    project.write("profiles/ap.yaml", profile("24.10.2", "luci-ssl"))
    three = await realize()
    const listed = json<{ builds: Array<{ id: number }> }>(await run("builds", "list", "--json"))
    builds.push(...listed.builds.map((b) => b.id).reverse())
    await mirror.close()
    mirror = undefined
  }, 600_000)
  afterAll(async () => {
    await mirror?.close()
    project.cleanup()
  })

  it("reports packages, overlay files, image sizes and node keys between two revisions", async () => {
    expect([one.rev, two.rev, three.rev]).toEqual([1, 2, 3])
    const d = await diff("ap@1", "ap@2")
    expect(d.from).toMatchObject({ profile: "ap", rev: 1, key: one.key, storePath: one.storePath })
    expect(d.to).toMatchObject({ profile: "ap", rev: 2, key: two.key, storePath: two.storePath })
    expect(d.identical).toBe(false)

    const added = d.packages.added.map((p) => p.name)
    expect(added).toContain("luci-ssl")
    expect(added).toContain("px5g-mbedtls")
    expect(d.packages.added.find((p) => p.name === "luci-ssl")?.version).toMatch(/^23\.314\.62432~52e4ad8/)
    expect(d.packages.removed.map((p) => p.name)).toContain("tcpdump")
    expect(d.packages.removed.find((p) => p.name === "tcpdump")?.version).toMatch(/^4\.99\.5/)
    // The same release: no installed package changed version.
    expect(d.packages.changed).toEqual([])
    expect(d.packages.unchanged).toBeGreaterThan(10)
    expect(d.inputs).toEqual([{ field: "packages", from: "tcpdump", to: "luci-ssl" }])

    expect(d.files?.added).toEqual([
      { path: "etc/only-in-two", kind: "file", mode: "0644", size: 4, linkTarget: null },
    ])
    expect(d.files?.removed).toEqual([
      { path: "etc/only-in-one", kind: "file", mode: "0644", size: 11, linkTarget: null },
    ])
    expect(d.files?.changed).toEqual([
      {
        path: "etc/motd",
        from: { path: "etc/motd", kind: "file", mode: "0644", size: 12, linkTarget: null },
        to: { path: "etc/motd", kind: "file", mode: "0644", size: 26, linkTarget: null },
        changes: ["content"],
      },
    ])

    // Sizes are those of the stored images, and the delta their difference.
    expect(d.images.map((i) => [i.type, i.filesystem, i.status])).toEqual([
      ["factory", "squashfs", "changed"],
      ["sysupgrade", "squashfs", "changed"],
    ])
    for (const image of d.images) {
      const before = one.artifacts.find((a) => a.type === image.type)
      const after = two.artifacts.find((a) => a.type === image.type)
      expect(image.from?.size).toBe(statSync(before?.path ?? "").size)
      expect(image.to?.size).toBe(statSync(after?.path ?? "").size)
      expect(image.sizeDelta).toBe((after?.size ?? 0) - (before?.size ?? 0))
    }

    // Same builder; another overlay, so another image and artifact set.
    expect(d.keys.map((k) => [k.node, k.changed])).toEqual([
      ["fetch-builder", false],
      ["stage-overlay", true],
      ["make-image", true],
      ["collect-artifacts", true],
    ])
    expect(d.keys.find((k) => k.node === "collect-artifacts")).toMatchObject({ from: one.key, to: two.key })
  })

  it("reports changed package versions and the release between releases, and no file changes", async () => {
    const d = await diff("ap@2", "ap@3")
    expect(d.inputs).toEqual([{ field: "release", from: "23.05.5", to: "24.10.2" }])
    expect(d.packages.changed).toContainEqual({
      name: "luci-ssl",
      from: expect.stringMatching(/^23\.314\.62432~52e4ad8/),
      to: expect.stringMatching(/^25\.180\.52011~c4ff8f3/),
    })
    expect(d.files).toEqual({ added: [], removed: [], changed: [], unchanged: expect.any(Number) })
    expect(d.keys.map((k) => [k.node, k.changed])).toEqual([
      ["fetch-builder", true],
      ["stage-overlay", false],
      ["make-image", true],
      ["collect-artifacts", true],
    ])
    expect([d.from.release, d.to.release]).toEqual(["23.05.5", "24.10.2"])
  })

  it("takes store paths and build ids as references, with the same result", async () => {
    const byRev = await diff("ap@1", "ap@2")
    const byPath = await diff(one.storePath, two.storePath)
    const withoutReferences = (d: DiffJson) => ({
      ...d,
      from: { ...d.from, reference: "" },
      to: { ...d.to, reference: "" },
    })
    expect(withoutReferences(byPath)).toEqual(withoutReferences(byRev))
    expect(byPath.from.reference).toBe(one.storePath)
    // A path inside an artifact set, relative to the working directory, names that set.
    const image = one.artifacts[0]?.path ?? ""
    const inside = await diff(image.slice(project.dir.length + 1), "ap@2")
    expect(inside.from.key).toBe(one.key)

    expect(builds).toHaveLength(3)
    const [first, second] = builds as [number, number]
    const byBuild = await diff(String(first), String(second))
    expect(withoutReferences(byBuild)).toEqual(withoutReferences(byRev))
    expect([byBuild.from.buildId, byBuild.to.buildId]).toEqual([first, second])
  })

  it("a realization compared with itself is identical", async () => {
    const d = await diff("ap@3", "ap")
    expect(d.identical).toBe(true)
    expect(d.keys.every((k) => !k.changed)).toBe(true)
    expect(d.packages).toMatchObject({ added: [], removed: [], changed: [] })
    expect(d.images.every((i) => i.status === "unchanged" && i.sizeDelta === 0)).toBe(true)
  })

  it("prints one line per change for people", async () => {
    const result = await run("diff", "ap@1", "ap@2")
    expect(result.code, result.stderr).toBe(0)
    const lines = result.stdout.split("\n")
    expect(lines[0]).toMatch(/^ap@1 \(build \d+\) → ap@2 \(build \d+\)$/)
    expect(lines).toContain("  + etc/only-in-two (0644, 4 B)")
    expect(lines).toContain("  - etc/only-in-one (0644, 11 B)")
    expect(lines).toContain("  ~ etc/motd: content (12 B → 26 B)")
    expect(lines.some((l) => /^ {2}\+ luci-ssl 23\.314/.test(l))).toBe(true)
    expect(lines.some((l) => /^ {2}- tcpdump 4\.99\.5/.test(l))).toBe(true)
    expect(
      lines.some((l) => /^ {2}sysupgrade squashfs +changed +\S+ \S+ +→ +\S+ \S+ +[+±-]\S+ \S+$/.test(l)),
      result.stdout,
    ).toBe(true)
  })

  it("an unknown or unrealized reference is not_found (exit 4), naming which one", async () => {
    const noRevision = await fails("ap@1", "ap@9")
    expect(noRevision.code).toBe(4)
    expect(noRevision.error.code).toBe("not_found")
    expect(noRevision.error.message).toMatch(/^second reference: ap@9: no revision 9/)

    const noBuild = await fails("9999", "ap@1")
    expect(noBuild).toMatchObject({ code: 4, error: { code: "not_found" } })
    expect(noBuild.error.message).toMatch(/^first reference: no build 9999/)

    const noProfile = await fails("ap", "nope")
    expect(noProfile).toMatchObject({ code: 4, error: { code: "not_found" } })
    expect(noProfile.error.message).toMatch(/^second reference: no profile `nope`/)

    // Revision 4 is recorded (a realize that failed used it), never realized. (Looking records nothing.)
    project.write("profiles/ap.yaml", profile("24.10.2", "luci-ssl, tcpdump"))
    const failed = await owrt(["realize", "ap", "--offline", "--json"], {
      cwd: project.dir,
      env: { OWRT_UPSTREAM: "http://127.0.0.1:9", OWRT_KEYRING: keyring, OWRT_FAKE_IB_FAIL: "1" },
    })
    expect(json<ErrorDocument>(failed).error.code, failed.stdout).toBe("build_failed")
    const unrealized = await fails("ap@4", "ap@3")
    expect(unrealized).toMatchObject({ code: 4, error: { code: "not_found" } })
    expect(unrealized.error.message).toContain("first reference: `ap@4`: revision 4 of ap was never realized")
    const worktree = await fails("ap@3", "ap")
    expect(worktree.error.message).toContain("second reference: `ap`: revision 4 of ap was never realized")
    project.write("profiles/ap.yaml", profile("24.10.2", "luci-ssl"))
  })

  it("a malformed reference is a usage error (exit 2), naming which one", async () => {
    const badRev = await fails("ap@", "ap@1")
    expect(badRev).toMatchObject({ code: 2, error: { code: "usage" } })
    expect(badRev.error.message).toMatch(/^first reference: `ap@` is not/)

    const outside = await fails("ap@1", "/etc")
    expect(outside).toMatchObject({ code: 2, error: { code: "usage" } })
    expect(outside.error.message).toMatch(/^second reference: `\/etc` is not a path in the store/)

    // A store path that is not an artifact set (the staged overlay's).
    const d = await diff("ap@1", "ap@2")
    const overlayPath = join(project.dir, "store", `${d.keys[1]?.from}-overlay`)
    const overlay = await fails(overlayPath, "ap@1")
    expect(overlay).toMatchObject({ code: 2, error: { code: "usage" } })
    expect(overlay.error.message).toContain("is a stage-overlay store path")
  })
})
