import { spawn } from "node:child_process"
import { appendFileSync, existsSync, readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { treeDigest } from "../../src/store/treeDigest.js"
import { buildMirror, serveMirror } from "../fixtures/mirror/index.js"
import { expectArtifactsOnDisk, extractSquashfs } from "../helpers/artifacts.js"
import { cleanEnv, type ErrorDocument, json, makeProject, owrt, owrtBin } from "../helpers/cli.js"
import { manifestHashOfImageNode } from "../helpers/manifestHash.js"

interface Realized {
  readonly results: ReadonlyArray<{
    readonly profile: string
    readonly rev: number
    readonly key: string
    readonly cacheHit: boolean
    readonly buildId: number
    readonly storePath: string
    readonly artifacts: ReadonlyArray<{
      name: string
      type: string
      filesystem: string | null
      sha256: string
      size: number
      path: string
    }>
  }>
}

const ap = (device: string, extra = "") =>
  `release: "23.05.5"\ntarget: ath79/generic\ndevice: ${device}\npackages: [luci]\n${extra}`

const profiles = {
  "profiles/ap.yaml": ap(
    "tplink_archer-c7-v5",
    "overlay: files/ap\nfirst_boot: [{name: 90-x, script: 'true'}]\n",
  ),
  "profiles/files/ap/etc/motd": "hello from owrt\n",
  "profiles/ap-alias.yaml": ap(
    "tplink,archer-c7-v5",
    "overlay: files/ap\nfirst_boot: [{name: 90-x, script: 'true'}]\n",
  ),
  "profiles/carambola.yaml": ap("8dev_carambola2"),
  "profiles/glinet.yaml": ap("glinet_gl-ar300m16"),
  "profiles/router.yaml":
    'release: "24.10.2"\ntarget: x86/64\ndevice: generic\npackages: [luci-ssl]\nrootfs_size: 128\n',
  "profiles/missing-pkg.yaml": ap("tplink_archer-c7-v5").replace("[luci]", "[luci, no-such-package]"),
  "profiles/conflict.yaml": ap("tplink_archer-c7-v5").replace("[luci]", "[wpad-openssl, wpad-basic-mbedtls]"),
  "profiles/bad-device.yaml": ap("tplink_archer-c7-v9"),
  "profiles/too-big.yaml": ap("ubnt_bullet-m-xw").replace("[luci]", "[node]"),
}

describe("owrt realize against the stand-in mirror", () => {
  let mirror: { url: string; close: () => Promise<void> }
  let keyring: string
  const project = makeProject(profiles)
  const counter = join(project.dir, "make-image-runs")
  const store = join(project.dir, "store")
  const env = (extra: Record<string, string> = {}) => ({
    OWRT_UPSTREAM: mirror.url,
    OWRT_KEYRING: keyring,
    OWRT_FAKE_IB_COUNTER: counter,
    ...extra,
  })
  const run = (args: Array<string>, extra: Record<string, string> = {}) =>
    owrt(args, { cwd: project.dir, env: env(extra) })
  const makeRuns = () =>
    existsSync(counter) ? readFileSync(counter, "utf8").trim().split("\n").filter(Boolean).length : 0
  const realize = async (profile: string, extra: Record<string, string> = {}) => {
    const result = await run(["realize", profile, "--json"], extra)
    expect(result.code, result.stdout + result.stderr).toBe(0)
    return json<Realized>(result).results[0] as Realized["results"][number]
  }

  beforeAll(async () => {
    const built = await buildMirror()
    keyring = built.keyring
    mirror = await serveMirror(built.root)
  })
  afterAll(async () => {
    await mirror.close()
    project.cleanup()
  })

  it("builds on the first realize and reuses everything on the second, running no make", async () => {
    const first = await realize("ap")
    expect(first.cacheHit).toBe(false)
    expect(first.rev).toBe(1)
    expect(first.key).toMatch(/^[0-9a-f]{16}$/)
    expect(first.artifacts.map((a) => a.type).sort()).toEqual(["factory", "sysupgrade"])
    expectArtifactsOnDisk(first.artifacts)
    expect(makeRuns()).toBe(1)

    const second = await realize("ap")
    // The same result, recorded as a build of its own (a cache hit).
    expect(second).toEqual({ ...first, cacheHit: true, buildId: first.buildId + 1 })
    expect(makeRuns()).toBe(1)
  })

  it("stages overlay, first-boot script and the build marker into the image", async () => {
    const { storePath, key } = await realize("ap")
    const manifest = JSON.parse(readFileSync(join(storePath, "owrt-manifest.json"), "utf8"))
    expect(manifest.keys.collectArtifacts).toBe(key)
    expect(manifest.packages.map((p: { name: string }) => p.name)).toContain("luci")
    const image = manifest.images.find((i: { type: string }) => i.type === "sysupgrade").name
    const rootfs = extractSquashfs(join(storePath, "images", image), project.dir)
    expect(readFileSync(join(rootfs, "etc/motd"), "utf8")).toBe("hello from owrt\n")
    expect(existsSync(join(rootfs, "etc/uci-defaults/90-x"))).toBe(true)
    const marker = JSON.parse(readFileSync(join(rootfs, "etc/owrt-build"), "utf8"))
    expect(marker).toEqual({
      owrt: 1,
      profile: "ap",
      revision: manifest.revision,
      key: manifest.keys.makeImage,
    })
  })

  it("resolves a supported_devices alias to the canonical device profile", async () => {
    const byAlias = await realize("ap-alias")
    const manifest = JSON.parse(readFileSync(join(byAlias.storePath, "owrt-manifest.json"), "utf8"))
    expect(manifest.inputs.device).toBe("tplink_archer-c7-v5")
    expect(byAlias.artifacts.map((a) => a.name).join(" ")).toContain("tplink_archer-c7-v5")
  })

  it("runs make image once when four processes realize the same profile at once", async () => {
    const before = makeRuns()
    const results = await Promise.all(
      [1, 2, 3, 4].map(() => run(["realize", "carambola", "--json"], { OWRT_FAKE_IB_DELAY: "1" })),
    )
    for (const result of results) expect(result.code, result.stderr).toBe(0)
    const keys = new Set(results.map((r) => json<Realized>(r).results[0]?.key))
    expect(keys.size).toBe(1)
    expect(makeRuns() - before).toBe(1)
  })

  it("never modifies the stored builder, even with builds running at once", async () => {
    const builderPath = readdirSync(store).find((n) => n.endsWith("ath79-generic.Linux-x86_64")) as string
    const digest = async () => (await Effect.runPromise(treeDigest(join(store, builderPath)))).digest
    const before = await digest()
    const results = await Promise.all([
      run(["realize", "glinet", "--json", "--jobs", "2"]),
      run(["realize", "ap", "--rebuild", "--json"]),
    ])
    for (const result of results) expect(result.code, result.stderr).toBe(0)
    expect(await digest()).toBe(before)
  })

  it("builds x86/64 from a 24.10-style builder (zstd, SBOM) with a rootfs size", async () => {
    const result = await realize("router")
    expect(result.artifacts.map((a) => a.type)).toEqual(expect.arrayContaining(["combined", "combined-efi"]))
    expect(readdirSync(result.storePath).some((n) => n.endsWith(".bom.cdx.json"))).toBe(true)
    // Two combined images, one per root file system: the table tells them apart.
    const combined = result.artifacts.filter((a) => a.type === "combined").map((a) => a.filesystem)
    expect(combined.sort()).toEqual(["ext4", "squashfs"])
    const human = await run(["realize", "router"])
    expect(human.stdout).toMatch(/^ {2}combined +ext4 /m)
    expect(human.stdout).toMatch(/^ {2}combined +squashfs /m)
  })

  it("names images with image_name (EXTRA_IMAGE_NAME), {manifest_hash} as ASU computes it; a bad name is refused where written", async () => {
    project.write("profiles/named.yaml", ap("8dev_carambola2", "image_name: hive-{manifest_hash}\n"))
    const named = await realize("named")
    const hash = manifestHashOfImageNode(store, (name) => name.endsWith("-named-image"))
    for (const artifact of named.artifacts)
      expect(artifact.name).toMatch(
        new RegExp(`^openwrt-23\\.05\\.5-hive-${hash}-ath79-generic-8dev_carambola2-`),
      )
    // A profile without image_name keeps its key: the field is absent from its revision.
    const plain = await realize("carambola")
    expect(plain.artifacts.every((a) => !a.name.includes("hive-"))).toBe(true)
    expect(plain.key).not.toBe(named.key)

    project.write("profiles/badname.yaml", ap("8dev_carambola2", "image_name: 'has space'\n"))
    const bad = await run(["profiles", "validate", "badname", "--json"])
    expect(bad.code).toBe(3)
    expect(bad.stdout).toContain("is not an image name")
  })

  it("adds a profile's package feeds and their keys to the build; a feed whose signature fails is named", async () => {
    // The stand-in mirror's third-party feed, signed with a key the release keyring does not hold.
    const key = readFileSync(join(keyring, "..", "secret", "untrusted.pub"), "utf8").split("\n")[1] ?? ""
    const feed = (keys: string, packages = "owrt-hello") =>
      `release: "23.05.5"\ntarget: ath79/generic\ndevice: 8dev_carambola2\npackages: [${packages}]\n` +
      `repositories: [{name: extra, url: "${mirror.url}/extra-feed"}]\n${keys}`
    project.write("profiles/feed.yaml", feed(`repository_keys: ["${key}"]\n`))
    const built = await realize("feed")
    const manifest = JSON.parse(readFileSync(join(built.storePath, "owrt-manifest.json"), "utf8"))
    expect(manifest.packages.map((p: { name: string }) => p.name)).toContain("owrt-hello")
    expect(manifest.inputs.repositories).toEqual({
      mode: "append",
      feeds: [{ name: "extra", url: `${mirror.url}/extra-feed` }],
      keys: [key],
    })
    const image = manifest.images.find((i: { type: string }) => i.type === "sysupgrade").name
    const rootfs = extractSquashfs(join(built.storePath, "images", image), project.dir)
    expect(readFileSync(join(rootfs, "usr/bin/owrt-hello"), "utf8")).toContain("hello from the extra feed")
    const shown = await run(["profiles", "show", "feed"])
    expect(shown.stdout).toContain(`  feeds (append): extra ${mirror.url}/extra-feed\n  feed keys: 1\n`)

    // Without the key, opkg leaves the feed out: its package is unknown, and the error says why.
    project.write("profiles/feed.yaml", feed(""))
    const unsigned = await run(["realize", "feed", "--json"])
    expect(unsigned.code).toBe(7)
    const error = json<ErrorDocument>(unsigned).error
    expect(error.code).toBe("package_selection_invalid")
    expect(error.message).toContain("owrt-hello")
    expect(error.message).toContain("is its key in repository_keys?")

    // A misspelt package of the feed: "did you mean" knows the feed's packages too.
    project.write("profiles/feed.yaml", feed(`repository_keys: ["${key}"]\n`, "owrt-helo"))
    const misspelt = await run(["realize", "feed", "--json"])
    expect(json<ErrorDocument>(misspelt).error.message).toContain("did you mean `owrt-hello`?")

    // A private feed: its credentials come from a secret, reach the builder, and are in no log or manifest.
    const feedAuth = `${"$"}{secret:feed_auth}`
    const privateFeed = (password: string) =>
      `release: "23.05.5"\ntarget: ath79/generic\ndevice: 8dev_carambola2\npackages: [owrt-hello]\n` +
      `secrets: {feed_auth: env:OWRT_TEST_FEED_AUTH}\n` +
      `repositories: [{name: private, url: "${mirror.url.replace("://", `://${feedAuth}@`)}/private-feed"}]\n` +
      `repository_keys: ["${key}"]\n${password}`
    project.write("profiles/private.yaml", privateFeed(""))
    const withAuth = await run(["realize", "private", "--json"], {
      OWRT_TEST_FEED_AUTH: "owrt:feed-password",
    })
    expect(withAuth.code, withAuth.stdout + withAuth.stderr).toBe(0)
    const privateBuilt = json<{ results: Array<{ storePath: string; buildId: number }> }>(withAuth).results[0]
    const privateManifest = readFileSync(join(privateBuilt?.storePath ?? "", "owrt-manifest.json"), "utf8")
    expect(privateManifest).toContain("owrt-hello")
    expect(privateManifest).toContain(`${feedAuth}@`)
    expect(privateManifest).not.toContain("feed-password")
    const privateLog = await run(["builds", "log", String(privateBuilt?.buildId)])
    expect(privateLog.stdout).not.toContain("feed-password")
    // A wrong password: the feed is left out, and the error names its URL without the secret.
    const wrong = await run(["realize", "private", "--json"], { OWRT_TEST_FEED_AUTH: "owrt:wrong-password" })
    expect(wrong.code).toBe(7)
    const wrongError = json<ErrorDocument>(wrong).error
    expect(wrongError.message).toContain("could not download")
    expect(wrongError.message).toContain("<secret:feed_auth>@")
    expect(wrongError.message).not.toContain("wrong-password")
    // A value that would write more than a URL into the builder's file is refused before any build.
    const injected = await run(["realize", "private", "--json"], {
      OWRT_TEST_FEED_AUTH: "owrt:x\noption check_signature 0",
    })
    expect(injected.code).toBe(3)
    expect(json<ErrorDocument>(injected).error.code).toBe("secret_invalid")
    // An undeclared secret in a feed URL is refused where it is written.
    project.write(
      "profiles/private.yaml",
      privateFeed("").replace("secrets: {feed_auth: env:OWRT_TEST_FEED_AUTH}\n", ""),
    )
    const undeclared = await run(["profiles", "validate", "private", "--json"])
    expect(undeclared.code).toBe(3)
    expect(undeclared.stdout).toContain("feed private uses secret `feed_auth`, which is not declared")

    // A key that is neither a usign nor a PEM public key is refused where it is written.
    project.write("profiles/feed.yaml", feed(`repository_keys: ["not a key"]\n`))
    const bad = await run(["profiles", "validate", "feed", "--json"])
    expect(bad.code).toBe(3)
    expect(bad.stdout).toContain("a repository key is a usign public key")
  })

  it("leaves no visible partial path when killed during a build, and the rerun succeeds", async () => {
    const child = spawn(process.execPath, [owrtBin, "realize", "glinet", "--rebuild", "--json"], {
      cwd: project.dir,
      env: cleanEnv(env({ OWRT_FAKE_IB_DELAY: "20" })),
      stdio: "ignore",
    })
    const work = join(store, ".work")
    for (let i = 0; i < 200; i++) {
      if (existsSync(work) && readdirSync(work).some((n) => n.includes("make-image"))) break
      await new Promise((r) => setTimeout(r, 50))
    }
    await new Promise((r) => setTimeout(r, 500))
    child.kill("SIGKILL")
    await new Promise((r) => child.on("exit", r))
    const verify = await run(["store", "verify", "--json"])
    expect(verify.code, verify.stdout).toBe(0)
    const rerun = await realize("glinet")
    expect(rerun.artifacts.length).toBeGreaterThan(0)
    const builds = json<{ builds: ReadonlyArray<{ status: string }> }>(
      await run(["builds", "list", "--profile", "glinet", "--json"]),
    )
    expect(builds.builds.map((b) => b.status)).toContain("interrupted")
    // The rerun took over the killed build's lock and removed its work directories (and instance) at once.
    expect(readdirSync(work).filter((n) => n.startsWith(`${child.pid}.`))).toEqual([])
    expect((await run(["store", "gc", "--json"])).code).toBe(0)
    expect(readdirSync("/dev/shm").filter((n) => n.startsWith(`owrt-instance.${child.pid}.`))).toEqual([])
  })

  it("catches a corrupted store file with verify, and the next realize rebuilds it", async () => {
    const built = await realize("ap")
    const image = built.artifacts[0]?.path as string
    appendFileSync(image, "bit rot")
    const verify = await run(["store", "verify", "--json"])
    expect(verify.code).toBe(6)
    const { error } = json<ErrorDocument>(verify)
    expect(error.code).toBe("store_drift")
    expect(error.message).toContain(built.artifacts[0]?.name)
    const before = makeRuns()
    const rebuilt = await realize("ap")
    expect(rebuilt.cacheHit).toBe(false)
    expect(rebuilt.key).toBe(built.key)
    expect(makeRuns() - before).toBe(1)
    expect((await run(["store", "verify", "--json"])).code).toBe(0)
  })

  it.each([
    ["missing-pkg", 7, "package_selection_invalid", /no package `no-such-package`/],
    [
      "conflict",
      7,
      "package_selection_invalid",
      /`wpad-(basic-mbedtls|openssl)` conflicts with `wpad-(openssl|basic-mbedtls)`; keep only one of them/,
    ],
    // Another revision is other hardware: no "did you mean" (see packageErrors.test.ts).
    ["bad-device", 3, "device_profile_unknown", /`tplink_archer-c7-v9` is not a device profile of [^—]*$/],
    ["too-big", 7, "image_too_big", /too big/],
  ])("fails %s with exit %i and %s", async (profile, exitCode, code, message) => {
    const result = await run(["realize", profile, "--json"])
    expect(result.code, result.stdout + result.stderr).toBe(exitCode)
    const { error } = json<ErrorDocument>(result)
    expect(error.code).toBe(code)
    expect(error.message).toMatch(message)
  })

  it("reports a failing make as build_failed (exit 7), recording the build and keeping its log", async () => {
    const result = await run(["realize", "glinet", "--rebuild", "--json"], { OWRT_FAKE_IB_FAIL: "1" })
    expect(result.code).toBe(7)
    const { error } = json<ErrorDocument>(result)
    expect(error.code).toBe("build_failed")
    expect(error.message).toContain("simulated build failure")
    const builds = json<{
      builds: ReadonlyArray<{ id: number; status: string; error: { code: string } | null }>
    }>(await run(["builds", "list", "--profile", "glinet", "--json"]))
    const failed = builds.builds[0]
    expect(failed?.status).toBe("failed")
    expect(failed?.error?.code).toBe("build_failed")
    const log = await run(["builds", "log", String(failed?.id)])
    expect(log.stdout).toContain("simulated build failure")
  })

  it("keeps going past a failure with --keep-going, and exits with the failure's code", async () => {
    const result = await run(["realize", "ap", "bad-device", "--keep-going", "--json"])
    expect(result.code).toBe(3)
    const body = json<Realized & { failures: ReadonlyArray<{ profile: string; error: { code: string } }> }>(
      result,
    )
    expect(body.results.map((r) => r.profile)).toEqual(["ap"])
    expect(body.failures.map((f) => f.error.code)).toEqual(["device_profile_unknown"])
  })

  it("audits: identical on the deterministic builder, a listed difference on the non-deterministic one", async () => {
    await realize("ap")
    const ok = await run(["audit", "ap", "--json"])
    expect(ok.code, ok.stdout + ok.stderr).toBe(0)
    expect(json<{ identical: boolean }>(ok).identical).toBe(true)
    const bad = await run(["audit", "ap", "--json"], { OWRT_FAKE_IB_NONDETERMINISTIC: "1" })
    expect(bad.code).toBe(6)
    const { error } = json<ErrorDocument>(bad)
    expect(error.code).toBe("audit_mismatch")
    expect(error.message).toMatch(/sysupgrade\.bin/)
  })

  it("plans without building: cached and missing nodes", async () => {
    const result = await run(["plan", "ap", "glinet", "router", "missing-pkg", "--json"])
    expect(result.code, result.stderr).toBe(0)
    const plan = json<{
      profiles: ReadonlyArray<{
        profile: string
        status: string
        nodes: ReadonlyArray<{ kind: string; status: string }>
      }>
    }>(result)
    const byName = Object.fromEntries(plan.profiles.map((p) => [p.profile, p]))
    expect(byName["ap"]?.status).toBe("cached")
    expect(byName["missing-pkg"]?.status).toBe("missing")
    expect(byName["missing-pkg"]?.nodes.map((n) => n.status)).toEqual([
      "cached",
      "cached",
      "missing",
      "missing",
    ])
    // People read one word for it: rows and summary both say "to build".
    const human = await run(["plan", "ap", "missing-pkg"])
    expect(human.stdout).toMatch(/^missing-pkg@1 +to build /m)
    expect(human.stdout).toMatch(/^1 cached, 1 to build/m)
    expect(human.stdout).not.toContain("missing ")
  })
})

/** Unpacks the squashfs inside an ath79 image (see tests/fixtures/imagebuilder/README.md). */
