import { cpSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { collectArtifactsNode } from "../../src/graph/kinds/collectArtifactsNode.js"
import { fetchBuilderNode } from "../../src/graph/kinds/fetchBuilderNode.js"
import { makeImageNode } from "../../src/graph/kinds/makeImageNode.js"
import { stageOverlayNode } from "../../src/graph/kinds/stageOverlayNode.js"
import type { MakeImageParams } from "../../src/image/makeImage.js"
import type { ProfileRevision, ResolvedProfile } from "../../src/profile/resolveProfile.js"
import { buildMirror, serveMirror } from "../fixtures/mirror/index.js"
import { json, makeProject, owrt } from "../helpers/cli.js"

const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect)

// Each node module computes its key; these are what the tests vary.
const noDevices = { target: null, architecture: null, revision: null, defaultPackages: [], profiles: [] }
const makeImageKey = (p: MakeImageParams) =>
  Effect.map(
    makeImageNode({ params: p, secrets: new Map(), builderInfo: noDevices, timeoutSeconds: 1, makeEnv: [] }),
    (n) => n.key,
  )
const stageOverlayKey = (r: ProfileRevision, fingerprints: Record<string, string>) =>
  Effect.map(
    stageOverlayNode({ revision: r, secretValues: new Map(), fingerprints, sealingKey: new Uint8Array(32) }),
    (n) => n.key,
  )
const collectArtifactsKey = (imageKey: string) =>
  Effect.map(
    collectArtifactsNode({ imageKey, profile: "p", private: false, manifest: () => ({}) as never }),
    (n) => n.key,
  )
const fetchBuilderKey = (sha256: string) =>
  Effect.map(
    fetchBuilderNode(
      {
        upstream: "http://u",
        release: "23.05.5",
        target: "x86/64",
        name: "openwrt-imagebuilder-23.05.5-x86-64.Linux-x86_64.tar.xz",
        url: "http://u/a.tar.xz",
        sha256,
        signedBy: "0123456789abcdef",
      },
      { stallSeconds: 1 },
    ),
    (n) => n.key,
  )

const params: MakeImageParams = {
  builderKey: "0123456789abcdef",
  overlayKey: "fedcba9876543210",
  release: "23.05.5",
  target: "ath79/generic",
  device: "tplink_archer-c7-v5",
  packages: ["luci", "-ppp"],
  disabledServices: ["odhcpd"],
  rootfsSize: null,
  profile: "home-ap",
  revision: "a".repeat(64),
}

const profile: ResolvedProfile = {
  schema: 1,
  id: "ap",
  description: "an AP",
  abstract: false,
  parents: [],
  release: "23.05.5",
  target: "ath79/generic",
  device: "tplink_archer-c7-v5",
  packages: ["luci"],
  overlay: [{ path: "etc/motd", kind: "file", mode: 0o644, sha256: "1".repeat(64), size: 3 }],
  files: [{ path: "/etc/banner", mode: "0644", content: "hi" }],
  first_boot: [{ name: "90-x", script: "true" }],
  disabled_services: [],
  rootfs_size: null,
  tags: ["ap"],
  secrets: { k: "env:K" },
  flash: { image: "auto", verify: "full", wipe: false },
}
const revision = (p: ResolvedProfile): ProfileRevision => ({
  profile: p,
  canonical: "",
  hash: "",
  source: "worktree",
  readOverlay: () => Effect.succeed(undefined),
})

describe("node keys", () => {
  it("change with every input of make-image, and only with its inputs", async () => {
    const base = await run(makeImageKey(params))
    expect(base).toMatch(/^[0-9a-f]{16}$/)
    expect(await run(makeImageKey({ ...params }))).toBe(base)
    const variants: Array<Partial<MakeImageParams>> = [
      { builderKey: "1123456789abcdef" },
      { overlayKey: "0edcba9876543210" },
      { release: "23.05.4" },
      { target: "ath79/nand" },
      { device: "8dev_carambola2" },
      { packages: ["luci"] },
      { packages: ["-ppp", "luci"] },
      { disabledServices: [] },
      { rootfsSize: 256 },
      { profile: "office-ap" },
      { revision: "b".repeat(64) },
    ]
    const keys = await Promise.all(variants.map((v) => run(makeImageKey({ ...params, ...v }))))
    for (const key of keys) expect(key).not.toBe(base)
    expect(new Set(keys).size).toBe(keys.length)
  })

  it("change the stage-overlay key with staged content and secret fingerprints, not with other profile fields", async () => {
    const base = await run(stageOverlayKey(revision(profile), { k: "f1" }))
    const same = [
      {
        ...profile,
        description: "renamed",
        tags: ["other"],
        packages: ["luci", "wpad"],
        flash: { image: "sdcard", verify: "none", wipe: true },
      },
    ]
    for (const p of same) expect(await run(stageOverlayKey(revision(p), { k: "f1" }))).toBe(base)
    const different = [
      {
        ...profile,
        overlay: [{ ...profile.overlay[0], sha256: "2".repeat(64) } as ResolvedProfile["overlay"][number]],
      },
      { ...profile, overlay: [{ ...profile.overlay[0], mode: 0o755 } as ResolvedProfile["overlay"][number]] },
      { ...profile, files: [{ path: "/etc/banner", mode: "0644", content: "hello" }] },
      { ...profile, files: [{ path: "/etc/banner", mode: "0600", content: "hi" }] },
      { ...profile, first_boot: [{ name: "90-x", script: "false" }] },
    ]
    for (const p of different) expect(await run(stageOverlayKey(revision(p), { k: "f1" }))).not.toBe(base)
    expect(await run(stageOverlayKey(revision(profile), { k: "f2" }))).not.toBe(base)
  })

  it("derive collect-artifacts from make-image alone, and fetch-builder from the signed archive digest", async () => {
    expect(await run(collectArtifactsKey("0123456789abcdef"))).toBe(
      await run(collectArtifactsKey("0123456789abcdef")),
    )
    expect(await run(collectArtifactsKey("0123456789abcdef"))).not.toBe(
      await run(collectArtifactsKey("1123456789abcdef")),
    )
    const builder = (sha: string) => run(fetchBuilderKey(sha))
    expect(await builder("a".repeat(64))).not.toBe(await builder("b".repeat(64)))
  })

  it("are the keys stores made before the graph became data: nothing is re-keyed", async () => {
    // Computed by the key functions of the previous release for these very inputs.
    expect(await run(makeImageKey(params))).toBe("b2f7e151a2bfa7cc")
    expect(await run(stageOverlayKey(revision(profile), { k: "f1" }))).toBe("bf09c89e45a3c6ba")
    expect(await run(collectArtifactsKey("0123456789abcdef"))).toBe("1d8e6a7c6516bbc6")
    expect(await run(fetchBuilderKey("a".repeat(64)))).toBe("d7a0c882599fa47e")
  })
})

describe("keys across checkouts and machines", () => {
  let mirror: { url: string; close: () => Promise<void> }
  let keyring: string
  const project = makeProject({
    "profiles/ap.yaml":
      'release: "23.05.5"\ntarget: ath79/generic\ndevice: glinet_gl-ar300m16\noverlay: files/ap\n',
    "profiles/files/ap/etc/motd": "same everywhere\n",
  })
  const elsewhere = mkdtempSync(join(tmpdir(), "owrt-elsewhere-"))

  beforeAll(async () => {
    const built = await buildMirror()
    keyring = built.keyring
    mirror = await serveMirror(built.root)
    cpSync(project.dir, join(elsewhere, "checkout"), { recursive: true })
  })
  afterAll(async () => {
    await mirror.close()
    project.cleanup()
    rmSync(elsewhere, { recursive: true, force: true })
  })

  it("gives the same keys in another checkout with another store, and the same images", async () => {
    const env = { OWRT_UPSTREAM: mirror.url, OWRT_KEYRING: keyring }
    const here = await owrt(["realize", "ap", "--json"], { cwd: project.dir, env })
    const there = await owrt(["realize", "ap", "--json"], {
      cwd: join(elsewhere, "checkout"),
      env: { ...env, TZ: "Asia/Tokyo", LANG: "de_DE.UTF-8" },
    })
    expect(here.code, here.stderr).toBe(0)
    expect(there.code, there.stderr).toBe(0)
    type R = {
      results: ReadonlyArray<{ key: string; storePath: string; artifacts: ReadonlyArray<{ sha256: string }> }>
    }
    const a = json<R>(here).results[0]
    const b = json<R>(there).results[0]
    expect(b?.key).toBe(a?.key)
    expect(b?.storePath).not.toBe(a?.storePath)
    expect(b?.artifacts.map((x) => x.sha256)).toEqual(a?.artifacts.map((x) => x.sha256))
  })
})
