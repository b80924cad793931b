import { readFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { diffKeyInputs } from "../../src/graph/explain.js"
import { buildMirror, serveMirror } from "../fixtures/mirror/index.js"
import { json, makeProject, owrt } from "../helpers/cli.js"

describe("diffKeyInputs", () => {
  it("names added and removed packages, changed scalars, and changed keys without their values", () => {
    expect(
      diffKeyInputs(
        { packages: ["luci", "-ppp"], release: "23.05.4", overlayKey: "0123456789abcdef", rootfsSize: null },
        {
          packages: ["luci", "tcpdump"],
          release: "23.05.5",
          overlayKey: "fedcba9876543210",
          rootfsSize: 256,
        },
      ),
    ).toEqual([
      "overlayKey changed",
      "packages +tcpdump, dropped -ppp",
      "release: 23.05.4 → 23.05.5",
      "rootfsSize: null → 256",
    ])
  })

  it("names overlay files and scripts by path and name; a secret only by name", () => {
    const file = (path: string, sha256: string) => ({ path, kind: "file", mode: 420, sha256 })
    expect(
      diffKeyInputs(
        {
          overlay: [file("etc/banner", "a".repeat(64)), file("etc/motd", "b".repeat(64))],
          firstBoot: [{ name: "90-x", script: "true" }],
          secrets: { wifi: "c".repeat(64) },
        },
        {
          overlay: [file("etc/banner", "d".repeat(64)), file("etc/new", "e".repeat(64))],
          firstBoot: [{ name: "90-x", script: "true" }],
          secrets: { wifi: "f".repeat(64) },
        },
      ),
    ).toEqual([
      "overlay etc/banner changed (sha256)",
      "overlay +etc/new",
      "overlay -etc/motd",
      "secrets.wifi changed",
    ])
  })

  it("finds nothing to say about equal inputs", () => {
    expect(diffKeyInputs({ a: [1, 2], b: { c: "x" } }, { b: { c: "x" }, a: [1, 2] })).toEqual([])
  })
})

interface Planned {
  readonly profiles: ReadonlyArray<{
    readonly nodes: ReadonlyArray<{
      readonly kind: string
      readonly status: string
      readonly explain?: { readonly comparedWith: string | null; readonly changes: ReadonlyArray<string> }
    }>
  }>
}

describe("owrt plan --explain", () => {
  let mirror: { url: string; close: () => Promise<void> }
  let keyring: string
  const profile = (release: string, packages: string) =>
    `extends: base\nrelease: "${release}"\ntarget: ath79/generic\ndevice: tplink_archer-c7-v5\npackages: [${packages}]\noverlay: files/ap\n`
  const project = makeProject({
    "profiles/base.yaml": "abstract: true\npackages: [luci]\n",
    "profiles/ap.yaml": profile("23.05.5", "htop"),
    "profiles/files/ap/etc/banner": "welcome\n",
  })
  const run = (args: Array<string>) =>
    owrt(args, { cwd: project.dir, env: { OWRT_UPSTREAM: mirror.url, OWRT_KEYRING: keyring } })
  /** Edits a file for one test; the original is back afterwards, whatever the test did. */
  const editing = async (path: string, content: string, check: () => Promise<void>) => {
    const original = readFileSync(join(project.dir, path), "utf8")
    project.write(path, content)
    try {
      await check()
    } finally {
      project.write(path, original)
    }
  }
  const explain = async () => {
    const result = await run(["plan", "ap", "--explain", "--json"])
    expect(result.code, result.stderr).toBe(0)
    const nodes = json<Planned>(result).profiles[0]?.nodes ?? []
    return Object.fromEntries(nodes.map((n) => [n.kind, n.explain?.changes.join("; ") ?? n.status]))
  }

  beforeAll(async () => {
    const built = await buildMirror()
    keyring = built.keyring
    mirror = await serveMirror(built.root)
    const realized = await run(["realize", "ap", "--json"])
    expect(realized.code, realized.stderr).toBe(0)
  })
  afterAll(async () => {
    await mirror?.close()
    project.cleanup()
  })

  it("says nothing of what is cached", async () => {
    expect(await explain()).toEqual({
      "fetch-builder": "cached",
      "stage-overlay": "cached",
      "make-image": "cached",
      "collect-artifacts": "cached",
    })
  })

  it("names a package added", () =>
    editing("profiles/ap.yaml", profile("23.05.5", "htop, tcpdump"), async () => {
      const why = await explain()
      expect(why["make-image"]).toContain("packages +tcpdump")
      expect(why["collect-artifacts"]).toContain("image changed (make-image: packages +tcpdump")
      expect(why["stage-overlay"]).toBe("cached")
    }))

  it("names an overlay file edited, also as the reason the image's overlay key changed", () =>
    editing("profiles/files/ap/etc/banner", "welcome, edited\n", async () => {
      const why = await explain()
      expect(why["stage-overlay"]).toContain("overlay etc/banner changed")
      expect(why["make-image"]).toContain("overlayKey changed (stage-overlay: overlay etc/banner changed")
    }))

  it("names the release changed", () =>
    editing("profiles/ap.yaml", profile("24.10.2", "htop"), async () => {
      const why = await explain()
      expect(why["fetch-builder"]).toContain("release: 23.05.5 → 24.10.2")
      // The image's key needs the new builder's device list, which only fetching it gives.
      expect(why["make-image"]).toContain("device list is known once it has been fetched")
    }))

  it("names what a parent changed", () =>
    editing("profiles/base.yaml", "abstract: true\npackages: [luci, wpad-basic-mbedtls]\n", async () => {
      const why = await explain()
      expect(why["make-image"]).toContain("packages +wpad-basic-mbedtls")
    }))

  it("prints the reasons for people too", () =>
    editing("profiles/ap.yaml", profile("23.05.5", "htop, tcpdump"), async () => {
      const result = await run(["plan", "ap", "--explain"])
      expect(result.stdout).toMatch(/make-image: .*packages \+tcpdump/)
    }))
})
