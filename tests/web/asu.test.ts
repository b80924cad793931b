import { createHash } from "node:crypto"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { json, owrt } from "../helpers/cli.js"
import { manifestHashOfImageNode } from "../helpers/manifestHash.js"
import { rawRequest, type ServeProcess, servedProject, startServe } from "./serveProcess.js"

/*
 * The ASU build API of `owrt serve`, over real HTTP, against the stand-in mirror: the portable part of
 * upstream's tests/test_api.py, and builds polled to the body the Firmware Selector renders.
 */

type Body = Record<string, unknown>

interface Answer {
  readonly status: number
  readonly headers: Record<string, string | Array<string> | undefined>
  readonly body: Body
}

const call = async (
  server: ServeProcess,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Answer> => {
  const response = await rawRequest(server.url, path, {
    method,
    headers: body === undefined ? headers : { "content-type": "application/json", ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  const text = response.body.toString("utf8")
  return {
    status: response.status,
    headers: response.headers,
    body: text === "" ? {} : (JSON.parse(text) as Body),
  }
}

const post = (server: ServeProcess, body?: unknown) => call(server, "POST", "/api/v1/build", body)

/** Polls a job as the Firmware Selector does (while 202), and records the stages it went through. */
const poll = async (server: ServeProcess, hash: string, stages: Set<string> = new Set()) => {
  for (let i = 0; i < 1200; i++) {
    const answer = await call(server, "GET", `/api/v1/build/${hash}`, undefined, {
      "content-type": "application/json",
    })
    stages.add(String(answer.headers["x-imagebuilder-status"]))
    if (answer.status !== 202) return answer
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`job ${hash} did not finish`)
}

const base = { version: "23.05.5", target: "ath79/generic", profile: "tplink_archer-c7-v5" }

describe("the ASU API of owrt serve", () => {
  let project: Awaited<ReturnType<typeof servedProject>>
  let server: ServeProcess

  beforeAll(async () => {
    project = await servedProject({})
    server = await startServe([], { cwd: project.dir, env: project.env })
  }, 300_000)

  afterAll(async () => {
    await server?.stop()
    await project?.cleanup()
  })

  it("answers malformed requests with FastAPI's 422", async () => {
    const empty = await post(server)
    expect(empty.status).toBe(422)
    expect(empty.body).toEqual({
      detail: [{ type: "missing", loc: ["body"], msg: "Field required", input: null }],
    })
    const noVersion = await post(server, { profile: "testprofile", target: "testtarget/testsubtarget" })
    expect(noVersion.status).toBe(422)
    expect(noVersion.body.detail).toEqual([
      {
        type: "missing",
        loc: ["body", "version"],
        msg: "Field required",
        input: { profile: "testprofile", target: "testtarget/testsubtarget" },
      },
    ])
    const packagesString = await post(server, { ...base, packages: "testpackage" })
    expect(packagesString.body.detail).toEqual([
      {
        type: "list_type",
        loc: ["body", "packages"],
        msg: "Input should be a valid list",
        input: "testpackage",
      },
    ])
    const first = async (body: Body) =>
      ((await post(server, body)).body.detail as Array<{ msg: string }>)[0]?.msg
    expect(await first({ ...base, rootfs_size_mb: 0 })).toBe("Input should be greater than or equal to 1")
    expect(await first({ ...base, rootfs_size_mb: 1025 })).toBe("Input should be less than or equal to 1024")
    expect(await first({ ...base, defaults: "#".repeat(20481) })).toBe(
      "String should have at most 20480 characters",
    )
  })

  it("refuses what it will not build with upstream's 400 texts", async () => {
    const detail = async (body: Body) => {
      const answer = await post(server, body)
      expect(answer.status).toBe(400)
      expect(answer.body.status).toBe(400)
      return answer.body.detail
    }
    expect(await detail({ ...base, distro: "Foobar" })).toBe("Unsupported distro: Foobar")
    expect(await detail({ ...base, version: "10.10.10" })).toBe("Unsupported branch: 10.10.10")
    expect(await detail({ ...base, version: "23.05.4" })).toBe("Unsupported version: 23.05.4")
    expect(
      await detail({ ...base, target: "testtarget/testsubtargetbad", profile: "testvendor,testprofile" }),
    ).toBe(
      "Unsupported target: testtarget/testsubtargetbad. The requested target was either dropped, is still being built or is not supported by the selected version. Please check the forums or try again later.",
    )
    expect(await detail({ ...base, profile: "Foobar" })).toBe(
      "Unsupported profile: Foobar. The requested profile was either dropped or never existed. Please check the forums for more information.",
    )
    expect(await detail({ ...base, defaults: "echo" })).toBe("Handling `defaults` not enabled on server")
    expect(await detail({ ...base, repositories: { extra: "https://example.org/feed" } })).toBe(
      "Repository not allowed: https://example.org/feed",
    )
  })

  it("answers unknown hashes, wrong methods, stats, revisions and redirects as upstream", async () => {
    const missing = await call(server, "GET", "/api/v1/build/testtesttest")
    expect(missing.status).toBe(404)
    expect(missing.body).toEqual({
      status: 404,
      title: "Not Found",
      detail: "could not find provided request hash",
    })
    expect((await call(server, "POST", "/api/v1/build/0222f0cd9290")).status).toBe(405)
    expect(await call(server, "GET", "/api/v1/stats")).toMatchObject({
      status: 200,
      body: { queue_length: 0 },
    })
    expect(await call(server, "GET", "/api/v1/revision/23.05.5/ath79/generic")).toMatchObject({
      status: 200,
      body: { revision: "r24106-10cc5fcd00" },
    })
    expect(await call(server, "GET", "/api/v1/revision/10.10.10/ath79/generic")).toMatchObject({
      status: 400,
      body: { detail: "Unsupported version: 10.10.10", status: 400 },
    })
    const latest = await call(server, "GET", "/api/v1/latest")
    expect(latest.status).toBe(301)
    expect(latest.headers.location).toBe("/json/v1/latest.json")
    expect((await call(server, "GET", "/api/v1/overview")).status).toBe(301)
    expect((await call(server, "GET", "/json/v1/latest.json")).body).toEqual({
      latest: ["24.10.2", "23.05.5"],
    })
  })

  it("publishes overview.json with branches, targets, package changes and the server's limits", async () => {
    const { body } = await call(server, "GET", "/json/v1/overview.json")
    const branches = body.branches as Record<string, Body>
    expect(branches["23.05"]).toMatchObject({
      name: "23.05",
      enabled: true,
      versions: expect.arrayContaining(["23.05.5"]),
      targets: { "ath79/generic": "mips_24kc", "x86/64": "x86_64" },
    })
    expect(branches["24.10"]?.package_changes).toContainEqual({
      source: "auc",
      target: "owut",
      revision: 26792,
    })
    expect(body.server).toMatchObject({
      allow_defaults: false,
      max_custom_rootfs_size_mb: 1024,
      max_defaults_length: 20480,
    })
  })

  it("serves the package indexes and profile documents owut reads, from the download server", async () => {
    const upstream = project.env.OWRT_UPSTREAM
    const text = async (path: string) => (await fetch(`${upstream}/${path}`)).text()
    // name → version of a Packages file; a name that carries its ABI version is listed without it.
    const versions = (packages: string) =>
      Object.fromEntries(
        packages
          .trim()
          .split("\n\n")
          .map((chunk) => {
            const name = /^Package: (.+)$/m.exec(chunk)?.[1] ?? ""
            const abi = /^ABIVersion: (.+)$/m.exec(chunk)?.[1]
            return [
              abi && name.endsWith(abi) ? name.slice(0, -abi.length) : name,
              /^Version: (.+)$/m.exec(chunk)?.[1],
            ]
          }),
      )
    // 24.10: kernel modules live in the kmods/<kernel>/ feed, merged into the target's index.
    const target = "releases/24.10.2/targets/ath79/generic"
    const profiles = JSON.parse(await text(`${target}/profiles.json`)) as {
      linux_kernel: { version: string; release: string; vermagic: string }
      source_date_epoch: number
    }
    const kernel = profiles.linux_kernel
    const kmods = versions(
      await text(`${target}/kmods/${kernel.version}-${kernel.release}-${kernel.vermagic}/Packages`),
    )
    const index = await call(server, "GET", `/json/v1/${target}/index.json`)
    expect(index.status).toBe(200)
    expect(index.body.architecture).toBe("mips_24kc")
    expect(index.body.packages).toMatchObject({
      ...versions(await text(`${target}/packages/Packages`)),
      ...kmods,
    })
    expect(Object.keys(kmods).length).toBeGreaterThan(5)
    expect(index.body.packages).toMatchObject({ libgcc: expect.any(String) })
    expect(index.body.packages).not.toHaveProperty("libgcc1")
    // Snapshots: the apk feed's index.json, as it is.
    const snapshot = await call(server, "GET", "/json/v1/snapshots/targets/x86/64/index.json")
    expect(snapshot.body).toMatchObject({ architecture: "x86_64", packages: { libc: expect.any(String) } })
    // An architecture's packages over every feed feeds.conf names (base and luci here).
    const arch = await call(server, "GET", "/json/v1/releases/24.10.2/packages/mips_24kc-index.json")
    expect(arch.body).toMatchObject({
      ...versions(await text("releases/24.10.2/packages/mips_24kc/base/Packages")),
      ...versions(await text("releases/24.10.2/packages/mips_24kc/luci/Packages")),
    })
    expect(Object.keys(arch.body)).toContain("luci")
    // One device's document: the target's metadata with that profile, its id and build time.
    const device = await call(server, "GET", `/json/v1/${target}/8dev_carambola2.json`)
    expect(device.body).toMatchObject({
      id: "8dev_carambola2",
      arch_packages: "mips_24kc",
      target: "ath79/generic",
      supported_devices: ["8dev,carambola2", "carambola2"],
      build_at: `${new Date(profiles.source_date_epoch * 1000).toISOString().slice(0, 19)}.000000Z`,
    })
    expect(device.body.profiles).toBeUndefined()
    // Unknown profiles, targets and paths that are not a version's: `{}`, nothing fetched for them.
    for (const path of [
      `/json/v1/${target}/no_such_device.json`,
      "/json/v1/releases/24.10.2/targets/nope/nope/index.json",
      "/json/v1/releases/..%2f..%2fetc/targets/a/b/index.json",
      "/json/v1/releases/24.10.2/packages/..-index.json",
    ]) {
      expect(await call(server, "GET", path), path).toMatchObject({ status: 200, body: {} })
    }
  })

  it("answers CORS preflights, also before status polls", async () => {
    const preflight = await rawRequest(server.url, "/api/v1/build/abc", {
      method: "OPTIONS",
      headers: {
        origin: "https://firmware-selector.example",
        "access-control-request-method": "GET",
        "access-control-request-headers": "content-type",
      },
    })
    expect(preflight.status).toBe(204)
    expect(preflight.headers["access-control-allow-origin"]).toBe("*")
    expect(String(preflight.headers["access-control-allow-methods"])).toContain("POST")
    const poll = await rawRequest(server.url, "/api/v1/stats", { headers: { origin: "https://x.example" } })
    expect(poll.headers["access-control-allow-origin"]).toBe("*")
    expect(String(poll.headers["access-control-expose-headers"])).toContain("X-Queue-Position")
  })

  it("builds a request through the stages to the body the Firmware Selector renders, once", async () => {
    // An alias (a supported_devices name): built as the canonical profile, under a bin_dir of its own hash.
    const request = {
      ...base,
      profile: "archer-c7-v5",
      packages: ["luci", "auc"],
      client: "ofs/5.1.0",
      url: "https://ignored.example",
    }
    const submitted = await post(server, request)
    expect(submitted.status).toBe(202)
    expect(submitted.body.enqueued_at).toEqual(expect.any(String))
    const hash = String(submitted.body.request_hash)
    expect(hash).toMatch(/^[0-9a-f]{64}$/)
    expect([
      "queued",
      "init",
      "container_setup",
      "validate_revision",
      "validate_manifest",
      "building_image",
    ]).toContain(submitted.headers["x-imagebuilder-status"])
    const stages = new Set<string>([String(submitted.headers["x-imagebuilder-status"])])
    const done = await poll(server, hash, stages)
    expect(done.status, JSON.stringify(done.body)).toBe(200)
    expect(done.headers["x-imagebuilder-status"]).toBe("done")
    expect(done.headers["x-queue-position"]).toBe("0")
    expect(stages.has("done")).toBe(true)
    // Polled every 100 ms, a fresh build is seen in at least one of its stages before it is done.
    expect(
      ["container_setup", "validate_revision", "validate_manifest", "building_image"].some((s) =>
        stages.has(s),
      ),
      [...stages].join(", "),
    ).toBe(true)
    const body = done.body
    expect(body).toMatchObject({
      status: 200,
      detail: "done",
      imagebuilder_status: "done",
      request_hash: hash,
      id: "tplink_archer-c7-v5",
      target: "ath79/generic",
      version_number: "23.05.5",
      version_code: "r24106-10cc5fcd00",
      titles: [{ vendor: "TP-Link", model: "Archer C7", variant: "v5" }],
      request: { profile: "archer-c7-v5", packages: ["luci", "auc"], client: "ofs/5.1.0" },
    })
    expect(body.bin_dir).toMatch(/^[0-9a-f]{64}$/)
    expect(body.bin_dir).not.toBe(hash)
    expect(body.build_at).toEqual(expect.any(String))
    const buildCmd = body.build_cmd as Array<string>
    expect(buildCmd.slice(0, 4)).toEqual([
      "make",
      "image",
      "PROFILE=tplink_archer-c7-v5",
      "PACKAGES=luci auc",
    ])
    const manifest = body.manifest as Record<string, string>
    expect(manifest.luci).toEqual(expect.any(String))
    // EXTRA_IMAGE_NAME as upstream computes it: 12 hex of the SHA-256 of the manifest's sorted names.
    const makeImageKey = (body.owrt as { makeImageKey: string }).makeImageKey
    const packagesHash = manifestHashOfImageNode(join(project.dir, "store"), (name) =>
      name.startsWith(`${makeImageKey}-`),
    )
    expect(buildCmd).toContain(`EXTRA_IMAGE_NAME=${packagesHash}`)
    const images = body.images as Array<{ name: string; type: string; sha256: string }>
    expect(images.map((i) => i.type).sort()).toEqual(["factory", "sysupgrade"])
    for (const image of images)
      expect(image.name).toMatch(
        new RegExp(`^openwrt-23\\.05\\.5-${packagesHash}-ath79-generic-tplink_archer-c7-v5-`),
      )

    // The image from /store/<bin_dir>/ is the one the body describes.
    const sysupgrade = images.find((i) => i.type === "sysupgrade")
    const download = await rawRequest(server.url, `/store/${body.bin_dir}/${sysupgrade?.name}`)
    expect(download.status).toBe(200)
    expect(download.headers["x-content-type-options"]).toBe("nosniff")
    expect(download.headers["content-disposition"]).toBe(`attachment; filename="${sysupgrade?.name}"`)
    expect(createHash("sha256").update(download.body).digest("hex")).toBe(sysupgrade?.sha256)
    const ranged = await rawRequest(server.url, `/store/${body.bin_dir}/${sysupgrade?.name}`, {
      headers: { range: "bytes=0-9" },
    })
    expect(ranged.status).toBe(206)
    expect(ranged.body.length).toBe(10)
    expect((await rawRequest(server.url, `/store/${body.bin_dir}/../../owrt.db`)).status).toBe(404)
    expect((await rawRequest(server.url, `/store/${body.bin_dir}/nope.bin`)).status).toBe(404)

    // The same request again: answered from the finished job, nothing built.
    const again = await post(server, { ...request, packages: ["auc", "luci"] })
    expect(again.status).toBe(200)
    expect(again.body.request_hash).toBe(hash)
    expect((again.body.owrt as Body).buildId).toBe((body.owrt as Body).buildId)
    const head = await rawRequest(server.url, `/api/v1/build/${hash}`, { method: "HEAD" })
    expect(head.status).toBe(200)
    expect(head.headers["x-imagebuilder-status"]).toBe("done")
    expect(head.body.length).toBe(0)
  }, 300_000)

  it("builds an ASU request and the owrt profile with the same document into the same store key", async () => {
    const request = { ...base, packages: ["luci"], rootfs_size_mb: 64 }
    const submitted = await post(server, request)
    const done = await poll(server, String(submitted.body.request_hash))
    expect(done.status, JSON.stringify(done.body)).toBe(200)
    const built = done.body.owrt as { profile: string; key: string; cacheHit: boolean }
    // The profile an ASU request compiles to, written as a profile file: docs/asu.md shows the mapping.
    const text = `${JSON.stringify(
      {
        release: "23.05.5",
        target: "ath79/generic",
        device: "tplink_archer-c7-v5",
        packages: ["luci"],
        rootfs_size: 64,
        image_name: "{manifest_hash}",
      },
      null,
      2,
    )}\n`
    const id = `asu-${createHash("sha256").update(text).digest("hex").slice(0, 16)}`
    expect(built.profile).toBe(id)
    project.write(`profiles/${id}.yaml`, text)
    const realized = await owrt(["realize", id, "--json"], { cwd: project.dir, env: project.env })
    expect(realized.code, realized.stderr).toBe(0)
    const [result] = json<{ results: Array<{ key: string; cacheHit: boolean }> }>(realized).results
    expect(result?.key).toBe(built.key)
    expect(result?.cacheHit).toBe(true)
  }, 300_000)

  it("fails a request whose version_code is not the builder's with upstream's detail", async () => {
    const submitted = await post(server, { ...base, version_code: "some-bad-version-code" })
    const failed = await poll(server, String(submitted.body.request_hash))
    expect(failed.status).toBe(500)
    expect(failed.headers["x-imagebuilder-status"]).toBe("failed")
    expect(failed.body).toMatchObject({
      status: 500,
      imagebuilder_status: "failed",
      detail: "Error: Received incorrect version r24106-10cc5fcd00 (requested some-bad-version-code)",
    })
    // As upstream, the failure is the answer to the same request for a while…
    const again = await post(server, { ...base, version_code: "some-bad-version-code" })
    expect(again.status).toBe(500)
    // …unless the client asks to retry (owrt's addition): the request is queued anew.
    const retried = await call(server, "POST", "/api/v1/build?retry=1", {
      ...base,
      version_code: "some-bad-version-code",
    })
    expect(retried.status).toBe(202)
    expect((await poll(server, String(retried.body.request_hash))).status).toBe(500)
  }, 300_000)

  it("counts what it was asked and what failed, in upstream's statistics routes", async () => {
    // The tests above: valid requests (one answered twice from its finished build), and two failures.
    const today = `${new Date().toISOString().slice(0, 10)}Z`
    const perDay = (await call(server, "GET", "/api/v1/builds-per-day")).body as {
      labels: Array<string>
      datasets: Array<{ label: string; data: Array<number> }>
    }
    expect(perDay.labels).toHaveLength(30)
    expect(perDay.labels.at(-1)).toBe(today)
    const todays = Object.fromEntries(perDay.datasets.map((d) => [d.label, d.data.at(-1)]))
    expect(todays.Requests).toBeGreaterThanOrEqual(5)
    expect(todays["Cache-Hits"]).toBeGreaterThanOrEqual(1)
    expect(todays.Failures).toBe(2)
    const byVersion = (await call(server, "GET", "/api/v1/builds-by-version")).body as {
      labels: Array<string>
      datasets: Array<{ label: string; data: Array<number> }>
    }
    expect(byVersion.labels).toHaveLength(26)
    expect(byVersion.datasets.map((d) => d.label)).toEqual(["23.05"])
    const ofBranch = (await call(server, "GET", "/api/v1/builds-by-version?branch=23.05")).body
    expect((ofBranch.datasets as Array<{ label: string }>).map((d) => d.label)).toEqual(["23.05.5"])
    const top = await call(server, "GET", "/api/v1/top-packages?branch=23.05&n=2")
    expect(top.body).toMatchObject({ branch: "23.05", days: 30 })
    expect((top.body.packages as Array<{ name: string }>).map((p) => p.name)).toContain("luci")
    expect(top.body.packages).toHaveLength(2)
    expect((await call(server, "GET", "/api/v1/top-packages?n=0")).status).toBe(422)
    const summary = await call(server, "GET", "/api/v1/stats/summary")
    expect(summary.body).toMatchObject({ days: 30, failures: 2, queue_length: 0 })
    // The failures, newest last, as plain text without anything about the client.
    const errors = await rawRequest(server.url, "/api/v1/build-errors?n_entries=1")
    const text = errors.body.toString("utf8")
    expect(String(errors.headers["content-type"])).toContain("text/plain")
    expect(text).toMatch(/^Total errors logged: 2 \(showing 1 most recent\)\nTime period: /)
    expect(text.trim().split("\n").at(-1)).toMatch(
      /^\S+Z 23\.05\.5 ath79\/generic tplink_archer-c7-v5: Error: Received incorrect version r24106-10cc5fcd00 \(requested some-bad-version-code\)$/,
    )
  })
  // After the statistics test, which counts the failures before it.
  it("fails a request whose image is too big for the device with upstream's detail", async () => {
    const submitted = await post(server, { ...base, profile: "ubnt_bullet-m-xw", packages: ["node"] })
    const failed = await poll(server, String(submitted.body.request_hash))
    expect(failed.status).toBe(500)
    expect(failed.body).toMatchObject({
      status: 500,
      imagebuilder_status: "failed",
      detail: "Error: Selected packages exceed device storage",
    })
    // As upstream, the Image Builder's output (its warning), then owrt's account of what it deleted.
    const stderr = String(failed.body.stderr)
    expect(stderr).toMatch(/WARNING: Image file \S+ is too big/)
    expect(stderr).toMatch(/image too big for the device, so the Image Builder deleted it: \S+/)
  }, 300_000)
})

describe("the ASU queue across restarts", () => {
  it("loses no queued job when the server is killed, and retries the one that was running", async () => {
    const project = await servedProject({})
    try {
      let server = await startServe(["--asu-concurrency", "1"], { cwd: project.dir, env: project.env })
      const hashes: Array<string> = []
      for (const packages of [["luci"], ["luci", "curl"], ["curl"]]) {
        const submitted = await post(server, { ...base, packages })
        expect(submitted.status).toBe(202)
        hashes.push(String(submitted.body.request_hash))
      }
      // Jobs behind the first report their place in the queue.
      const last = await call(server, "GET", `/api/v1/build/${hashes[2]}`)
      if (last.body.detail === "queued") expect(Number(last.headers["x-queue-position"])).toBeGreaterThan(0)
      // Killed while the first one builds: it is retried after the restart, the others still run.
      for (let i = 0; i < 200; i++) {
        const first = await call(server, "GET", `/api/v1/build/${hashes[0]}`)
        if (first.headers["x-imagebuilder-status"] !== "queued") break
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
      await server.stop("SIGKILL")
      server = await startServe(["--asu-concurrency", "1"], { cwd: project.dir, env: project.env })
      try {
        for (const hash of hashes) {
          const done = await poll(server, hash)
          expect(done.status, JSON.stringify(done.body)).toBe(200)
        }
      } finally {
        await server.stop()
      }
    } finally {
      await project.cleanup()
    }
  }, 600_000)
})

describe("ASU server limits", () => {
  it("answers 529 past max_pending_jobs, and takes defaults when allowed", async () => {
    const project = await servedProject({})
    const server = await startServe(["--asu-max-pending-jobs", "0", "--asu-allow-defaults"], {
      cwd: project.dir,
      env: project.env,
    })
    try {
      // One build runs (fetching its builder takes a while), the next waits: the queue is then full.
      const running = await post(server, { ...base, defaults: "echo hello > /tmp/asu" })
      expect(running.status).toBe(202)
      const hash = String(running.body.request_hash)
      for (let i = 0; i < 100; i++) {
        const state = await call(server, "GET", `/api/v1/build/${hash}`)
        if (state.headers["x-imagebuilder-status"] !== "queued") break
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
      const waiting = await post(server, { ...base, packages: ["curl"] })
      expect(waiting.status).toBe(202)
      expect(waiting.body).toMatchObject({ detail: "queued", queue_position: 0 })
      const refused = await post(server, { ...base, packages: ["luci"] })
      expect(refused.status).toBe(529)
      expect(refused.body).toEqual({
        status: 529,
        title: "Server overloaded",
        detail: "server overload, queue contains too many build requests: 1",
      })
      const done = await poll(server, hash)
      expect(done.status, JSON.stringify(done.body)).toBe(200)
      expect(done.body.build_cmd).toContain("FILES=/etc/uci-defaults/99-asu-defaults")
    } finally {
      await server.stop()
      await project.cleanup()
    }
  }, 600_000)
})

describe("ASU requests with custom repositories", () => {
  it("builds with an allowed feed and its key, fails when the feed's signature cannot be verified, and refuses bad keys", async () => {
    const project = await servedProject({})
    const feed = `${project.env.OWRT_UPSTREAM}/extra-feed`
    const server = await startServe(["--asu-repository-allow", `${project.env.OWRT_UPSTREAM}/`], {
      cwd: project.dir,
      env: project.env,
    })
    try {
      // The stand-in mirror's third-party feed is signed with a key the release keyring does not hold.
      const key = readFileSync(join(project.env.OWRT_KEYRING, "..", "secret", "untrusted.pub"), "utf8").split(
        "\n",
      )[1]
      const request = {
        ...base,
        packages: ["owrt-hello"],
        repositories: { extra: feed },
        repository_keys: [key],
        repositories_mode: "append",
      }
      const submitted = await post(server, request)
      expect(submitted.status, JSON.stringify(submitted.body)).toBe(202)
      const done = await poll(server, String(submitted.body.request_hash))
      expect(done.status, JSON.stringify(done.body)).toBe(200)
      expect(Object.keys(done.body.manifest as Record<string, string>)).toContain("owrt-hello")

      // The same feed without its key: opkg leaves it out, and the build fails as upstream's does.
      const unsigned = await post(server, { ...request, repository_keys: [] })
      expect(unsigned.status).toBe(202)
      const failed = await poll(server, String(unsigned.body.request_hash))
      expect(failed.status).toBe(500)
      expect(String(failed.body.detail)).toContain("Impossible package selection")

      // Upstream's name pattern lets `..` through; the package manager would name its list file after it.
      const dots = await post(server, { ...request, repositories: { "..": feed } })
      expect(dots.status).toBe(400)
      expect(dots.body.detail).toBe("Invalid repository name: ..")

      const badKey = await post(server, { ...request, repository_keys: ["not a key"] })
      expect(badKey.status).toBe(400)
      expect(String(badKey.body.detail)).toContain("Invalid repository key")
    } finally {
      await server.stop()
      await project.cleanup()
    }
  }, 600_000)
})

describe("ASU routes on a server with a token", () => {
  it("need the token, except CORS preflights; and a build past job_timeout fails", async () => {
    const project = await servedProject({})
    const server = await startServe(["--token", "s3cret", "--asu-job-timeout", "1"], {
      cwd: project.dir,
      env: project.env,
    })
    try {
      expect((await call(server, "GET", "/api/v1/stats")).status).toBe(401)
      const auth = { authorization: "Bearer s3cret" }
      expect((await call(server, "GET", "/api/v1/stats", undefined, auth)).status).toBe(200)
      const preflight = await rawRequest(server.url, "/api/v1/build", {
        method: "OPTIONS",
        headers: { origin: "https://selector.example", "access-control-request-method": "POST" },
      })
      expect(preflight.status).toBe(204)
      // Fetching the builder alone takes longer than a second.
      const submitted = await call(server, "POST", "/api/v1/build", base, auth)
      expect(submitted.status).toBe(202)
      const hash = String(submitted.body.request_hash)
      let failed: Answer | undefined
      for (let i = 0; i < 600 && failed === undefined; i++) {
        const answer = await call(server, "GET", `/api/v1/build/${hash}`, undefined, auth)
        if (answer.status !== 202) failed = answer
        else await new Promise((resolve) => setTimeout(resolve, 100))
      }
      expect(failed?.status).toBe(500)
      expect(failed?.body.detail).toBe("Error: Task exceeded maximum timeout value (1 seconds)")
    } finally {
      await server.stop()
      await project.cleanup()
    }
  }, 300_000)
})
