import { createHash } from "node:crypto"
import { existsSync, readdirSync, readFileSync, truncateSync, writeFileSync } from "node:fs"
import { createServer, request } from "node:http"
import { join } from "node:path"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { fingerprintOf } from "../../src/cache/manifest.js"
import { generateKeyPair, parseSecretKey, signEntry } from "../../src/cache/signing.js"
import { buildMirror, serveMirror } from "../fixtures/mirror/index.js"
import { type ErrorDocument, json, makeProject, owrt } from "../helpers/cli.js"
import { startBlobCountingProxy, startRegistry, type TestRegistry } from "../helpers/registry.js"

interface Realized {
  readonly results: ReadonlyArray<{
    readonly profile: string
    readonly key: string
    readonly cacheHit: boolean
    readonly substituted: boolean
    readonly substitutedFrom: string | null
    readonly buildId: number
    readonly storePath: string
    readonly artifacts: ReadonlyArray<{ name: string; sha256: string; size: number; path: string }>
  }>
  readonly warnings: ReadonlyArray<{ code: string; message: string; cause: string }>
}

interface Planned {
  readonly profiles: ReadonlyArray<{
    readonly status: string
    readonly nodes: ReadonlyArray<{ kind: string; key: string | null; status: string }>
  }>
}

const profile =
  'release: "23.05.5"\ntarget: ath79/generic\ndevice: tplink_archer-c7-v5\npackages: [luci]\noverlay: files/ap\n'

/** The files of a store path (relative path → content), for comparing two machines' outputs. */
const filesOf = (root: string, relative = ""): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const name of readdirSync(join(root, relative), { withFileTypes: true })) {
    const path = relative === "" ? name.name : `${relative}/${name.name}`
    if (name.isDirectory()) Object.assign(out, filesOf(root, path))
    else if (name.isFile()) out[path] = readFileSync(join(root, path)).toString("base64")
  }
  return out
}

// Each case runs the real CLI several times (builds included): minutes on a loaded machine.
describe("shared cache through an OCI registry (two stores as two machines)", () => {
  let registry: TestRegistry
  let mirror: { url: string; close: () => Promise<void> }
  let keyring: string
  const signer = generateKeyPair("ci-1")
  const stranger = generateKeyPair("ci-1")
  let project: ReturnType<typeof makeProject>
  const counter = () => join(project.dir, "make-image-runs")
  const makeRuns = () =>
    existsSync(counter()) ? readFileSync(counter(), "utf8").trim().split("\n").filter(Boolean).length : 0
  const run = (store: string, args: Array<string>, extra: Record<string, string> = {}) =>
    owrt(args, {
      cwd: project.dir,
      env: {
        OWRT_UPSTREAM: mirror.url,
        OWRT_KEYRING: keyring,
        OWRT_FAKE_IB_COUNTER: counter(),
        OWRT_STORE: join(project.dir, store),
        ...extra,
      },
    })
  const realize = async (store: string, extra: Record<string, string> = {}, flags: Array<string> = []) => {
    const result = await run(store, ["realize", "ap", "--json", ...flags], extra)
    expect(result.code, result.stdout + result.stderr).toBe(0)
    return json<Realized>(result)
  }

  beforeAll(async () => {
    registry = await startRegistry()
    const built = await buildMirror()
    keyring = built.keyring
    mirror = await serveMirror(built.root)
    project = makeProject(
      { "profiles/ap.yaml": profile, "profiles/files/ap/etc/motd": "hello from the cache\n" },
      {
        config: `import { defineConfig } from "owrt/config"
export default defineConfig({
  cache: {
    substituters: ["oci://${registry.host}/owrt/cache"],
    signingKey: "file:keys/ci-1.sec",
    trustedKeys: ["${signer.public}"],
    timeout: 8,
  },
})
`,
      },
    )
    project.write("keys/ci-1.sec", `${signer.secret}\n`)
  })
  afterAll(async () => {
    await registry.stop()
    await mirror.close()
    project.cleanup()
  })

  it("A builds and pushes; B substitutes every node, runs no make, and gets byte-identical outputs", async () => {
    const a = await realize("store-a", { OWRT_CACHE_PUSH: "1" })
    expect(makeRuns()).toBe(1)
    const [builtA] = a.results
    expect(builtA?.substituted).toBe(false)
    const tags = (await (await fetch(`${registry.url}/v2/owrt/cache/tags/list`)).json()) as { tags: string[] }
    // fetch-builder, stage-overlay, make-image, collect-artifacts: each pushed under its key; and the
    // target's signed index, so that another machine resolves the builder without the download server.
    expect(tags.tags).toHaveLength(5)
    expect(tags.tags).toContain("openwrt-sums-23.05.5-ath79_generic")
    expect(tags.tags).toContain(builtA?.key)

    const planB = json<Planned>(await run("store-b", ["plan", "ap", "--json"]))
    const known = planB.profiles[0]?.nodes.filter((n) => n.key !== null) ?? []
    expect(known.length).toBeGreaterThan(0)
    expect(known.every((n) => n.status === "remote")).toBe(true)
    // In words, the legend names the mark those nodes show.
    expect((await run("store-b", ["plan", "ap"])).stdout).toContain("↓ in the shared cache")

    const b = await realize("store-b")
    const [gotB] = b.results
    expect(makeRuns()).toBe(1)
    expect(gotB, JSON.stringify(b.warnings)).toMatchObject({
      key: builtA?.key,
      cacheHit: false,
      substituted: true,
    })
    expect(gotB?.substitutedFrom).toBe(`oci://${registry.host}/owrt/cache`)
    expect(b.warnings).toEqual([])
    expect(gotB?.artifacts.map((x) => x.sha256)).toEqual(builtA?.artifacts.map((x) => x.sha256))
    expect(filesOf(gotB?.storePath ?? "")).toEqual(filesOf(builtA?.storePath ?? ""))
    const builds = json<{
      builds: ReadonlyArray<{ id: number; substituted: boolean; substitutedFrom: string }>
    }>(await run("store-b", ["builds", "list", "--json"]))
    expect(builds.builds[0]).toMatchObject({ substituted: true, substitutedFrom: gotB?.substitutedFrom })
    expect((await run("store-b", ["builds", "list"])).stdout).toMatch(/^1 +ap@1 +succeeded +substituted /m)

    // Now B holds it all: a cache hit, nothing substituted again.
    const again = await realize("store-b")
    expect(again.results[0]).toMatchObject({ cacheHit: true, substituted: false })
    const planAgain = json<Planned>(await run("store-b", ["plan", "ap", "--json"]))
    expect(planAgain.profiles[0]?.nodes.every((n) => n.status === "cached")).toBe(true)
  }, 300_000)

  it("a runner with a warm cache realizes with the upstream download server down", async () => {
    // Port 9 (discard) refuses connections here: every upstream request would fail at once.
    const down = { OWRT_UPSTREAM: "http://127.0.0.1:9" }
    const plan = await run("store-upstream-down", ["plan", "ap", "--json"], down)
    expect(plan.code, plan.stdout + plan.stderr).toBe(0)
    const planned = json<Planned>(plan)
    // The builder is found in the cache; what depends on its content has no key until it is here.
    expect(planned.profiles[0]?.nodes[0], plan.stdout).toMatchObject({
      kind: "fetch-builder",
      status: "remote",
    })
    const before = makeRuns()
    const got = await realize("store-upstream-down", down, ["--require-substitutes"])
    expect(makeRuns()).toBe(before)
    expect(got.results[0]).toMatchObject({ substituted: true })
    expect(got.warnings).toEqual([])

    // The cache's copy is only as good as OpenWrt's signature on it: a forged index (another archive digest,
    // the old signature) is ignored, and with the download server down there is nothing to build from.
    const tag = "openwrt-sums-23.05.5-ath79_generic"
    const index = await entryOf(tag)
    const sumsLayer = index.manifest.layers[0]
    const sums = Buffer.from(
      await (await fetch(`${registry.url}/v2/owrt/cache/blobs/${sumsLayer?.digest}`)).arrayBuffer(),
    )
    const forged = Buffer.from(
      sums.toString("utf8").replace(/^[0-9a-f]{64}(?= \*openwrt-imagebuilder)/m, "0".repeat(64)),
    )
    expect(forged.equals(sums)).toBe(false)
    const digest = await uploadBlob(forged)
    const altered = JSON.parse(index.bytes.toString("utf8"))
    altered.layers[0] = { ...altered.layers[0], digest, size: forged.length }
    expect((await putManifest(tag, new TextEncoder().encode(JSON.stringify(altered)))).status).toBe(201)
    try {
      const refused = await run("store-forged-index", ["realize", "ap", "--json"], down)
      expect(refused.code).not.toBe(0)
      expect(json<ErrorDocument>(refused).error.code).toBe("download_failed")
      // With the download server up, its signed copy decides.
      const fine = await realize("store-forged-index")
      expect(fine.results[0]?.key).toBe(got.results[0]?.key)
    } finally {
      expect((await putManifest(tag, index.bytes)).status).toBe(201)
    }
  }, 300_000)

  /** The registry's manifest of `tag`, and the file holding its tree blob on the registry's disk. */
  const entryOf = async (tag: string) => {
    const response = await fetch(`${registry.url}/v2/owrt/cache/manifests/${tag}`, {
      headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
    })
    const bytes = Buffer.from(await response.arrayBuffer())
    const manifest = JSON.parse(bytes.toString("utf8")) as {
      layers: Array<{ digest: string; size: number }>
      annotations: Record<string, string>
    }
    const hex = manifest.layers[0]?.digest.slice("sha256:".length) ?? ""
    const blob = join(registry.dataDir, "docker/registry/v2/blobs/sha256", hex.slice(0, 2), hex, "data")
    return { bytes, manifest, blob }
  }
  /** Uploads `bytes` as a blob (POST, then a monolithic PUT); its digest. */
  const uploadBlob = async (bytes: Buffer): Promise<string> => {
    const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`
    const start = await fetch(`${registry.url}/v2/owrt/cache/blobs/uploads/`, { method: "POST" })
    const upload = new URL(start.headers.get("location") ?? "", registry.url)
    upload.searchParams.set("digest", digest)
    expect((await fetch(upload, { method: "PUT", body: bytes })).status).toBe(201)
    return digest
  }
  const putManifest = (tag: string, bytes: Uint8Array) =>
    fetch(`${registry.url}/v2/owrt/cache/manifests/${tag}`, {
      method: "PUT",
      headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" },
      body: bytes,
    })
  const resultKey = async () =>
    json<Realized>(await run("store-b", ["realize", "ap", "--json"])).results[0]?.key ?? ""
  let storeSeq = 0

  /**
   * One refusal: with --require-substitutes the realize fails with `code` and leaves nothing half-written;
   * without, it succeeds, building here what was refused, with one warning naming `code`.
   */
  const refusal = async (
    code: string,
    exitCode: number,
    extra: Record<string, string> = {},
  ): Promise<Realized> => {
    storeSeq += 1
    const strict = `store-strict-${storeSeq}`
    const failed = await run(strict, ["realize", "ap", "--json", "--require-substitutes"], extra)
    expect(failed.code, failed.stdout + failed.stderr).toBe(exitCode)
    expect(json<ErrorDocument>(failed).error.code).toBe(code)
    const work = join(project.dir, strict, ".work")
    expect(existsSync(work) ? readdirSync(work) : []).toEqual([])
    const lenient = await realize(`store-lenient-${storeSeq}`, extra)
    expect(lenient.results[0]?.substituted).toBe(false)
    expect(lenient.warnings.map((w) => w.cause)).toEqual([code])
    return lenient
  }

  it("refuses an entry signed by a key that is not trusted, and builds it here", async () => {
    const other = generateKeyPair("other-1")
    const before = makeRuns()
    await refusal("cache_signature_untrusted", 6, { OWRT_TRUSTED_KEYS: other.public })
    expect(makeRuns()).toBe(before + 1)
  }, 300_000)

  it("refuses a signature by an impostor key of a trusted name", async () => {
    await refusal("cache_signature_invalid", 6, { OWRT_TRUSTED_KEYS: stranger.public })
  }, 300_000)

  it("refuses a tampered layer, a truncated blob and a tampered annotation", async () => {
    const key = await resultKey()
    const entry = await entryOf(key)
    const original = readFileSync(entry.blob)
    try {
      const flipped = Buffer.from(original)
      flipped[flipped.length - 2048] = (flipped[flipped.length - 2048] ?? 0) ^ 0xff
      writeFileSync(entry.blob, flipped)
      const built = await refusal("cache_entry_digest_mismatch", 6)
      // Only the tampered node was built here: collect-artifacts; make-image came from the cache.
      expect(built.results[0]?.key).toBe(key)
      writeFileSync(entry.blob, original)
      truncateSync(entry.blob, Math.floor(original.length / 2))
      await refusal("cache_entry_truncated", 6)
    } finally {
      writeFileSync(entry.blob, original)
    }
    const altered = JSON.parse(entry.bytes.toString("utf8"))
    altered.annotations["org.owrt.node.tree-digest"] = "0".repeat(64)
    expect((await putManifest(key, new TextEncoder().encode(JSON.stringify(altered)))).status).toBe(201)
    try {
      await refusal("cache_signature_invalid", 6)
    } finally {
      expect((await putManifest(key, entry.bytes)).status).toBe(201)
    }
  }, 300_000)

  /**
   * Replaces the entry of the realize's result with one whose metadata `alter` changed (and whose manifest
   * `annotate` changed), signed again by the trusted signer; the refusal must be `code`. Put back after.
   */
  const refusedResigned = async (
    code: string,
    alter: (meta: Record<string, unknown>) => void,
    annotate: (annotations: Record<string, string>) => void = () => {},
  ) => {
    const key = await resultKey()
    const entry = await entryOf(key)
    const altered = JSON.parse(entry.bytes.toString("utf8"))
    const metaLayer = altered.layers[1]
    const meta = JSON.parse(
      Buffer.from(
        await (await fetch(`${registry.url}/v2/owrt/cache/blobs/${metaLayer.digest}`)).arrayBuffer(),
      ).toString("utf8"),
    )
    alter(meta)
    const metaBytes = Buffer.from(JSON.stringify(meta))
    altered.layers[1] = { ...metaLayer, digest: await uploadBlob(metaBytes), size: metaBytes.length }
    annotate(altered.annotations)
    const secret = Effect.runSync(parseSecretKey(signer.secret, "test"))
    altered.annotations["org.owrt.node.signature"] = signEntry(secret, fingerprintOf(altered))
    expect((await putManifest(key, new TextEncoder().encode(JSON.stringify(altered)))).status).toBe(201)
    try {
      await refusal(code, 6)
    } finally {
      expect((await putManifest(key, entry.bytes)).status).toBe(201)
    }
  }

  it("refuses an entry, signed by a trusted key, whose tree is not the one it signed", async () => {
    // A trusted signer's mistake (or a stolen key with a lazy forger): the metadata and the signature
    // agree on a tree digest the tar does not unpack to. Checked before anything is published.
    const wrong = "f".repeat(64)
    await refusedResigned(
      "cache_entry_tree_mismatch",
      (meta) => {
        meta["treeDigest"] = wrong
      },
      (annotations) => {
        annotations["org.owrt.node.tree-digest"] = wrong
      },
    )
  }, 300_000)

  it("refuses an entry, signed by a trusted key, whose metadata names another node", async () => {
    // The metadata downloads beside the tree: its refusal is the one reported, nothing is published.
    await refusedResigned("cache_entry_malformed", (meta) => {
      meta["key"] = "0".repeat(16)
    })
  }, 300_000)

  it("two processes substituting the same nodes at once download each blob once (the store lock)", async () => {
    const proxy = await startBlobCountingProxy(registry.url)
    const gets = proxy.gets
    try {
      const before = makeRuns()
      const env = { OWRT_SUBSTITUTERS: `oci://${proxy.host}/owrt/cache` }
      const [one, two] = await Promise.all([realize("store-twice", env), realize("store-twice", env)])
      const why = JSON.stringify({ one: one.warnings, two: two.warnings, gets: [...gets] })
      expect(makeRuns(), why).toBe(before)
      expect(one.results[0]?.key).toBe(two.results[0]?.key)
      // Each node was fetched by one of them; the other found it published (which one may differ per node).
      expect(
        [one, two].some((r) => r.results[0]?.substituted),
        why,
      ).toBe(true)
      // The nodes' blobs, that is: the target's small signed index is read by each (no lock needed).
      const index = await entryOf("openwrt-sums-23.05.5-ath79_generic")
      for (const layer of index.manifest.layers) gets.delete(layer.digest)
      expect(gets.size).toBeGreaterThan(0)
      expect(
        [...gets.values()].every((count) => count === 1),
        why,
      ).toBe(true)
    } finally {
      proxy.close()
    }
  }, 300_000)

  it("asks for each node's manifest once: the question's answer serves the fetch that follows", async () => {
    const proxy = await startBlobCountingProxy(registry.url)
    try {
      const env = { OWRT_SUBSTITUTERS: `oci://${proxy.host}/owrt/cache` }
      // A plan only asks, with HEAD (a registry counts a manifest GET as a pull).
      const planned = await run("store-asked-once", ["plan", "ap", "--json"], env)
      expect(planned.code, planned.stderr).toBe(0)
      const asked = [...proxy.manifests.keys()]
      expect(asked.filter((a) => a.startsWith("HEAD ")).length, JSON.stringify(asked)).toBeGreaterThan(0)
      expect(asked.filter((a) => a.startsWith("HEAD ") || a.includes("openwrt-sums"))).toEqual(asked)
      proxy.manifests.clear()
      const result = await realize("store-asked-once", env)
      const why = JSON.stringify({ warnings: result.warnings, manifests: [...proxy.manifests] })
      expect(result.results[0]?.substituted, why).toBeTruthy()
      expect(proxy.manifests.size, why).toBeGreaterThan(1)
      // GETs only (no HEAD first), each tag once: the substituted nodes and the target's signed index.
      expect(
        [...proxy.manifests].every(([asked, count]) => asked.startsWith("GET ") && count === 1),
        why,
      ).toBe(true)
    } finally {
      proxy.close()
    }
  }, 300_000)

  it("a registry that stalls mid-blob is cache_registry_timeout; one that is down is one warning", async () => {
    const key = await resultKey()
    const { manifest } = await entryOf(key)
    const stalled = manifest.layers[0]?.digest ?? ""
    const target = new URL(registry.url)
    const proxy = createServer((req, res) => {
      if (req.method === "GET" && req.url?.endsWith(`/blobs/${stalled}`)) {
        res.writeHead(200, { "content-length": String(manifest.layers[0]?.size ?? 0) })
        res.write(Buffer.alloc(1024))
        return // and never another byte
      }
      const forward = request(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers)
          answer.pipe(res)
        },
      )
      req.pipe(forward)
    })
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve))
    const port = (proxy.address() as { port: number }).port
    try {
      await refusal("cache_registry_timeout", 5, { OWRT_SUBSTITUTERS: `oci://127.0.0.1:${port}/owrt/cache` })
    } finally {
      proxy.closeAllConnections()
      proxy.close()
    }
    const down = await refusal("cache_registry_unavailable", 5, {
      OWRT_SUBSTITUTERS: "oci://127.0.0.1:9/owrt/cache",
    })
    expect(down.warnings).toHaveLength(1)
    expect(down.warnings[0]?.code).toBe("cache_unavailable")
  }, 300_000)
})
