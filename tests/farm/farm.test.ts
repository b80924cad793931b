import { existsSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { generateKeyPair } from "../../src/cache/signing.js"
import { buildMirror, serveMirror } from "../fixtures/mirror/index.js"
import { type ErrorDocument, json, makeProject, owrt } from "../helpers/cli.js"
import { farmQuery, startWorker, type TestWorker } from "../helpers/farm.js"
import { startPostgres, type TestPostgres } from "../helpers/postgres.js"
import { startRegistry, type TestRegistry } from "../helpers/registry.js"
import { startServe } from "../web/serveProcess.js"

interface BatchReport {
  readonly results: ReadonlyArray<{
    readonly profile: string
    readonly key: string
    readonly artifacts: ReadonlyArray<{ name: string; sha256: string }>
  }>
  readonly failures: ReadonlyArray<{ profile: string; error: { code: string; message: string } }>
}

const profiles = ["p1", "p2", "p3", "p4", "p5", "p6"]
const profileYaml = (name: string, packages = "[luci]") =>
  `release: "23.05.5"\ntarget: ath79/generic\ndevice: tplink_archer-c7-v5\npackages: ${packages}\noverlay: files/${name}\n`

// Real PostgreSQL, a real registry, two workers (separate stores: two machines) and coordinators with
// stores of their own. Minutes on a loaded machine.
describe("build farm: workers on PostgreSQL, outputs through the shared cache", () => {
  let database: TestPostgres
  let registry: TestRegistry
  let mirror: { url: string; close: () => Promise<void> }
  let keyring: string
  let project: ReturnType<typeof makeProject>
  const workers: Array<TestWorker> = []
  const signer = generateKeyPair("farm-1")
  const counter = () => join(project.dir, "make-image-runs")
  const makeRuns = () =>
    existsSync(counter()) ? readFileSync(counter(), "utf8").trim().split("\n").filter(Boolean) : []
  const env = (store: string, extra: Record<string, string> = {}) => ({
    OWRT_UPSTREAM: mirror.url,
    OWRT_KEYRING: keyring,
    OWRT_FAKE_IB_COUNTER: counter(),
    OWRT_STORE: join(project.dir, store),
    ...extra,
  })
  const worker = async (
    name: string,
    extra: Record<string, string> = {},
    args: ReadonlyArray<string> = [],
  ) => {
    const started = await startWorker({
      name,
      cwd: project.dir,
      database: database.url,
      env: env(`store-${name}`, { OWRT_CACHE_PUSH: "1", ...extra }),
      args: ["--lock-timeout", "2", ...args],
    })
    workers.push(started)
    return started
  }
  /** Waits until `w` runs a make-image node (its make is then busy for OWRT_FAKE_IB_DELAY seconds). */
  const makingImage = async (w: TestWorker) => {
    const deadline = Date.now() + 120_000
    for (;;) {
      const rows = await farmQuery(
        database.url,
        "select 1 from owrt_farm.nodes where kind = 'make-image' and worker = $1 and status = 'running'",
        [w.name],
      )
      if (rows.length > 0) return
      if (Date.now() > deadline) throw new Error(`${w.name} never ran make-image:\n${w.log()}`)
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
  }
  const coordinator = (store: string, args: ReadonlyArray<string>) =>
    owrt(["realize", ...args, "--json", "--jobs", "8", "--executor", database.url], {
      cwd: project.dir,
      env: env(store),
    })

  beforeAll(async () => {
    ;[database, registry] = await Promise.all([startPostgres(), startRegistry()])
    const built = await buildMirror()
    keyring = built.keyring
    mirror = await serveMirror(built.root)
    const files: Record<string, string> = {}
    for (const name of profiles) {
      files[`profiles/${name}.yaml`] = profileYaml(name)
      files[`profiles/files/${name}/etc/motd`] = `hello from ${name}\n`
    }
    files["profiles/broken.yaml"] = profileYaml("p1", "[no-such-package]")
    files["profiles/slow.yaml"] = profileYaml("slow")
    files["profiles/files/slow/etc/motd"] = "slow\n"
    files["profiles/lonely.yaml"] = profileYaml("lonely")
    files["profiles/files/lonely/etc/motd"] = "lonely\n"
    files["profiles/served.yaml"] = profileYaml("served")
    files["profiles/files/served/etc/motd"] = "served\n"
    files["profiles/steady.yaml"] = profileYaml("steady")
    files["profiles/files/steady/etc/motd"] = "steady\n"
    project = makeProject(files, {
      config: `import { defineConfig } from "owrt/config"
export default defineConfig({
  cache: {
    substituters: ["oci://${registry.host}/owrt/farm"],
    signingKey: "file:keys/farm-1.sec",
    trustedKeys: ["${signer.public}"],
  },
})
`,
    })
    project.write("keys/farm-1.sec", `${signer.secret}\n`)
  }, 120_000)
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop("SIGKILL")))
    await Promise.all([database?.stop(), registry?.stop(), mirror?.close()])
    project?.cleanup()
  })

  it("realize of 6 profiles: every node built once across two workers, both built some, same bytes as a local build", async () => {
    const [wa] = await Promise.all([worker("wa", {}, ["--metrics-port", "0"]), worker("wb")])
    const farmed = await coordinator("store-c", profiles)
    expect(farmed.code, farmed.stdout + farmed.stderr + workers.map((w) => w.log()).join("\n")).toBe(0)
    const report = json<BatchReport>(farmed)
    expect(report.results).toHaveLength(6)

    // make image ran once per profile, on the workers (the coordinator builds nothing).
    const runs = makeRuns()
    expect(runs).toHaveLength(6)
    const rows = await farmQuery(database.url, "select key, kind, status, worker from owrt_farm.nodes")
    // fetch-builder once, and stage-overlay, make-image, collect-artifacts per profile.
    expect(rows).toHaveLength(1 + 3 * 6)
    expect(rows.every((r) => r.status === "done")).toBe(true)
    expect(new Set(rows.map((r) => r.worker))).toEqual(new Set(["wa", "wb"]))
    expect(runs.every((line) => line.includes("/store-wa/") || line.includes("/store-wb/"))).toBe(true)

    const jobs = json<{ totals: { done: number } }>(
      await owrt(["jobs", "--json", "--database", database.url], { cwd: project.dir, env: env("store-c") }),
    )
    expect(jobs.totals.done).toBe(19)
    const live = json<{ workers: ReadonlyArray<{ id: string }> }>(
      await owrt(["workers", "--json", "--database", database.url], {
        cwd: project.dir,
        env: env("store-c"),
      }),
    )
    expect(live.workers.map((w) => w.id).sort()).toEqual(["wa", "wb"])

    // wa's Prometheus endpoint: the queue as the database holds it, and the jobs wa finished.
    const metricsUrl = /^metrics: (\S+)$/m.exec(wa.log())?.[1] ?? ""
    const text = await (await fetch(metricsUrl)).text()
    const value = (line: string) =>
      Number(new RegExp(`^${line.replace(/[{}]/g, "\\$&")} (\\S+)$`, "m").exec(text)?.[1] ?? Number.NaN)
    expect(value('owrt_farm_jobs{status="done"}')).toBe(19)
    expect(value('owrt_farm_jobs{status="failed"}')).toBe(0)
    expect(value("owrt_farm_workers")).toBe(2)
    const waDone = rows.filter((r) => r.worker === "wa")
    const finished = [...text.matchAll(/^owrt_worker_jobs_total\{kind="[^"]+",result="done"\} (\d+)$/gm)]
    expect(finished.reduce((sum, m) => sum + Number(m[1]), 0)).toBe(waDone.length)
    expect(text).toMatch(/^owrt_worker_job_duration_seconds_bucket\{/m)

    // The same profiles built here alone: byte-identical images.
    const local = await owrt(["realize", ...profiles, "--json", "--executor", "local"], {
      cwd: project.dir,
      env: env("store-local", { OWRT_SUBSTITUTERS: "" }),
    })
    expect(local.code, local.stderr).toBe(0)
    const localReport = json<BatchReport>(local)
    const shas = (r: BatchReport) =>
      Object.fromEntries(r.results.map((x) => [x.profile, x.artifacts.map((a) => a.sha256)]))
    expect(shas(report)).toEqual(shas(localReport))
    expect(Object.fromEntries(report.results.map((x) => [x.profile, x.key]))).toEqual(
      Object.fromEntries(localReport.results.map((x) => [x.profile, x.key])),
    )
  }, 600_000)

  it("a failing build on a worker comes back as the same typed error, with the worker's log", async () => {
    const failed = await coordinator("store-c", ["broken"])
    expect(failed.code).toBe(7)
    const { error } = json<ErrorDocument>(failed)
    expect(error.code, failed.stdout).toBe("package_selection_invalid")
    expect(error.message).toMatch(/no-such-package/)
    expect(error.message).toMatch(/on worker w[ab]/)
  }, 300_000)

  it("two coordinators realizing the same profile at once make one job per node", async () => {
    project.write("profiles/files/p1/etc/banner", "twice\n")
    const before = makeRuns().length
    const [one, two] = await Promise.all([coordinator("store-d", ["p1"]), coordinator("store-e", ["p1"])])
    expect(one.code, one.stderr).toBe(0)
    expect(two.code, two.stderr).toBe(0)
    expect(makeRuns().length - before).toBe(1)
    expect(json<BatchReport>(one).results[0]?.key).toBe(json<BatchReport>(two).results[0]?.key)
  }, 300_000)

  it("a worker killed in the middle of make image: the other takes the job over after the lock timeout", async () => {
    // wa builds slowly; wb is stopped until wa has the job.
    const [wa, wb] = workers
    await wb?.stop("SIGTERM")
    await wa?.stop("SIGTERM")
    const slow = await worker("wslow", { OWRT_FAKE_IB_DELAY: "30" })
    const realizing = coordinator("store-f", ["slow"])
    await makingImage(slow)
    // make image is sleeping: the worker dies without a word.
    await slow.stop("SIGKILL")
    await worker("wc")
    const done = await realizing
    expect(done.code, done.stdout + done.stderr).toBe(0)
    const rows = await farmQuery(
      database.url,
      "select worker from owrt_farm.nodes where kind = 'make-image' and graph like 'slow%'",
    )
    expect(rows.map((r) => r.worker)).toEqual(["wc"])
    const failures = json<BatchReport>(done).failures
    expect(failures).toEqual([])
  }, 300_000)

  it("a worker stopped with SIGTERM in the middle of make image finishes that job, then exits", async () => {
    for (const w of workers) await w.stop("SIGTERM")
    const steady = await worker("wsteady", { OWRT_FAKE_IB_DELAY: "4" })
    const realizing = coordinator("store-g", ["steady"])
    await makingImage(steady)
    // Stopped mid-build: no new jobs, but the running one is finished and reported, then the worker exits.
    // (One signal: a second one means "now", as Ctrl+C twice does.) make image sleeps 4 s: the worker
    // waits for it instead of leaving at once.
    const stopped = Date.now()
    const exit = await steady.stop("SIGTERM")
    expect(Date.now() - stopped).toBeGreaterThan(1000)
    const rows = await farmQuery(
      database.url,
      "select worker, status from owrt_farm.nodes where kind = 'make-image' and graph like 'steady%'",
    )
    expect(rows).toEqual([{ worker: "wsteady", status: "done" }])
    expect(exit, steady.log()).not.toBeNull()
    // Its collect-artifacts node was never started by it: another worker takes the rest.
    await worker("wafter")
    const done = await realizing
    expect(done.code, done.stdout + done.stderr).toBe(0)
    expect(json<BatchReport>(done).failures).toEqual([])
  }, 300_000)

  it("owrt serve with the farm as its executor: web realize jobs and ASU builds are built by the workers", async () => {
    if (workers.every((w) => w.child.exitCode !== null)) await worker("wserve")
    const server = await startServe([], {
      cwd: project.dir,
      env: env("store-s", { OWRT_EXECUTOR: database.url }),
    })
    try {
      const accepted = await fetch(`${server.url}/api/realize`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ profile: "served" }),
      })
      expect(accepted.status).toBe(202)
      const { job } = (await accepted.json()) as { job: { id: string } }
      let state = "queued"
      let error: unknown
      const deadline = Date.now() + 240_000
      while ((state === "queued" || state === "running") && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 250))
        const polled = (await (await fetch(`${server.url}/api/jobs/${job.id}`)).json()) as {
          state: string
          error: unknown
        }
        state = polled.state
        error = polled.error
      }
      expect(state, JSON.stringify(error) + workers.map((w) => w.log()).join("\n")).toBe("succeeded")
      // Its nodes were jobs of the farm, built by workers; the server's own store only received them.
      const rows = await farmQuery(
        database.url,
        "select kind, status, worker from owrt_farm.nodes where graph like 'served@%' and kind <> 'fetch-builder' order by kind",
      )
      expect(rows.map((r) => r.kind)).toEqual(["collect-artifacts", "make-image", "stage-overlay"])
      expect(rows.every((r) => r.status === "done" && typeof r.worker === "string")).toBe(true)
      expect(makeRuns().some((line) => line.includes("/store-s/"))).toBe(false)

      // The ASU queue realizes through the same executor: an ASU build request is built by the workers too.
      const submitted = await fetch(`${server.url}/api/v1/build`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          version: "23.05.5",
          target: "ath79/generic",
          profile: "tplink_archer-c7-v5",
          packages: ["luci", "tcpdump"],
        }),
      })
      expect([200, 202]).toContain(submitted.status)
      const { request_hash: hash } = (await submitted.json()) as { request_hash: string }
      let answer = { status: 202, body: {} as Record<string, unknown> }
      for (let i = 0; i < 2400 && answer.status === 202; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100))
        const polled = await fetch(`${server.url}/api/v1/build/${hash}`)
        answer = { status: polled.status, body: (await polled.json()) as Record<string, unknown> }
      }
      expect(answer.status, JSON.stringify(answer.body)).toBe(200)
      const asuRows = await farmQuery(
        database.url,
        "select kind, status, worker from owrt_farm.nodes where graph like 'asu-%' and kind = 'make-image'",
      )
      expect(asuRows).toHaveLength(1)
      expect(asuRows[0]?.status).toBe("done")
      expect(typeof asuRows[0]?.worker).toBe("string")
      expect(makeRuns().some((line) => line.includes("/store-s/"))).toBe(false)
    } finally {
      await server.stop()
    }
  }, 300_000)

  it("a worker that cannot push its output fails the job with the registry's error, not a done nobody can fetch", async () => {
    // Only this worker is left, and its shared cache is a registry that is not there.
    await Promise.all(workers.map((w) => w.stop()))
    await worker("wbad", { OWRT_SUBSTITUTERS: "oci://127.0.0.1:9/owrt/none" })
    const failed = await coordinator("store-c", ["lonely"])
    expect(failed.code, failed.stdout + failed.stderr).toBe(5)
    const { error } = json<ErrorDocument>(failed)
    expect(error.code).toBe("cache_registry_unavailable")
    expect(error.message).toMatch(/pushing stage-overlay [0-9a-f]{16} failed/)
    expect(error.message).toMatch(/on worker wbad/)
    const rows = await farmQuery(
      database.url,
      "select status from owrt_farm.nodes where graph like 'lonely@%' and kind = 'stage-overlay'",
    )
    expect(rows).toEqual([{ status: "failed" }])
  }, 300_000)

  it("a coordinator with the farm down fails with farm_unavailable", async () => {
    const down = await owrt(
      ["realize", "p2", "--json", "--rebuild", "--executor", "postgres://postgres@127.0.0.1:9/x"],
      {
        cwd: project.dir,
        env: env("store-g"),
      },
    )
    expect(json<ErrorDocument>(down).error.code).toBe("farm_unavailable")
  }, 120_000)
})
