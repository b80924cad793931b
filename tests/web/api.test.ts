import { createHash } from "node:crypto"
import { chmodSync, readFileSync, renameSync, symlinkSync } from "node:fs"
import { connect } from "node:net"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { json, owrt } from "../helpers/cli.js"
import { ap, rawRequest, type ServeProcess, servedProject, startServe } from "./serveProcess.js"

interface Job {
  readonly id: string
  readonly profile: string
  readonly rev: number
  readonly state: string
  readonly requests: number
  readonly nodes: ReadonlyArray<{ kind: string; state: string }>
  readonly logLines: number
  readonly log: ReadonlyArray<string>
  readonly result: {
    readonly key: string
    readonly storePath: string
    readonly buildId: number
    readonly artifacts: ReadonlyArray<{ name: string; sha256: string; size: number }>
  } | null
  readonly error: { code: string } | null
}

interface SentEvent {
  readonly id: number
  readonly event: string
  readonly data: { seq: number; type: string; kind?: string; state?: string; line?: string }
}

const parseEvents = (text: string): ReadonlyArray<SentEvent> =>
  text
    .split("\n\n")
    .filter((frame) => frame.includes("data: "))
    .map((frame) => {
      const field = (name: string) => new RegExp(`^${name}: (.*)$`, "m").exec(frame)?.[1] ?? ""
      return { id: Number(field("id")), event: field("event"), data: JSON.parse(field("data")) }
    })

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex")

describe("owrt serve: the HTTP API over the real CLI", () => {
  let project: Awaited<ReturnType<typeof servedProject>>
  let server: ServeProcess
  const api = (path: string, init: RequestInit = {}) => fetch(`${server.url}${path}`, init)
  const post = (path: string, body: unknown) =>
    api(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
  const waitForJob = async (id: string): Promise<Job> => {
    for (;;) {
      const job = (await (await api(`/api/jobs/${id}`)).json()) as Job
      if (job.state !== "queued" && job.state !== "running") return job
      await new Promise((done) => setTimeout(done, 100))
    }
  }
  let built: Job

  beforeAll(async () => {
    project = await servedProject({
      "profiles/ap.yaml": ap("tplink_archer-c7-v5", "files: [{path: /etc/banner, content: hi}]\n"),
      "profiles/other.yaml": ap("glinet_gl-ar300m16"),
      "profiles/base.yaml": 'abstract: true\nrelease: "23.05.5"\n',
      "profiles/elsewhere.yaml": ap("tplink_archer-c7-v5"),
      "profiles/sealed.yaml": ap(
        "tplink_archer-c7-v5",
        "files: [{path: /etc/sealed, secret: sealed}]\nsecrets: {sealed: file:sealed.txt}\n",
      ),
      "profiles/sealed.txt": "first value\n",
    })
    // make image sleeps a little, so a second request surely finds the first one's job still running.
    server = await startServe([], { cwd: project.dir, env: { ...project.env, OWRT_FAKE_IB_DELAY: "2" } })
  })
  afterAll(async () => {
    await server?.stop()
    await project?.cleanup()
  })

  it("answers a realize with 202 and a job; an identical request joins it; a rebuild does not", async () => {
    const first = await post("/api/realize", { profile: "ap" })
    expect(first.status).toBe(202)
    const accepted = (await first.json()) as { job: Job; joined: boolean }
    expect(accepted.joined).toBe(false)
    expect(first.headers.get("location")).toBe(`/api/jobs/${accepted.job.id}`)
    expect(["queued", "running"]).toContain(accepted.job.state)

    const again = (await (await post("/api/realize", { profile: "ap" })).json()) as {
      job: Job
      joined: boolean
    }
    expect(again.joined).toBe(true)
    expect(again.job.id).toBe(accepted.job.id)
    expect(again.job.requests).toBe(2)
    // The same revision by its number is the same request.
    const byNumber = (await (await post("/api/realize", { profile: "ap@1" })).json()) as { job: Job }
    expect(byNumber.job.id).toBe(accepted.job.id)

    const rebuild = (await (await post("/api/realize", { profile: "ap", rebuild: true })).json()) as {
      job: Job
      joined: boolean
    }
    expect(rebuild.joined).toBe(false)
    expect(rebuild.job.id).not.toBe(accepted.job.id)

    built = await waitForJob(accepted.job.id)
    const rebuilt = await waitForJob(rebuild.job.id)
    expect(rebuilt.state).toBe("succeeded")
    expect(built.state, JSON.stringify(built.error)).toBe("succeeded")
    // The two jobs run side by side: each node is built by one of them (the other finds it cached), and
    // the rebuild builds make-image and collect-artifacts again whatever the first job did.
    built.nodes.forEach((node, i) => {
      expect(["done", "cached"]).toContain(node.state)
      expect([node.state, rebuilt.nodes[i]?.state]).toContain("done")
    })
    expect(rebuilt.nodes.slice(2).map((n) => n.state)).toEqual(["done", "done"])
    // A job that ran make image carries its output in its log.
    for (const job of [built, rebuilt]) {
      if (job.nodes[2]?.state === "done")
        expect(job.log.some((line) => line.includes("make image"))).toBe(true)
    }
    expect(built.result?.artifacts.length).toBeGreaterThan(0)

    const later = (await (await api(`/api/jobs/${built.id}?since=${built.logLines - 1}`)).json()) as Job
    expect(later.log).toEqual(built.log.slice(-1))

    const builds = json<{ builds: Array<{ requestedBy: string; profile: string }> }>(
      await owrt(["builds", "list", "--json"], { cwd: project.dir, env: project.env }),
    ).builds
    // One build for the three identical requests, one for the rebuild; both asked by the API.
    expect(builds.filter((b) => b.profile === "ap")).toHaveLength(2)
    expect(builds.every((b) => b.requestedBy === "api")).toBe(true)
  })

  it("streams a job's events as SSE to the end, and resumes after Last-Event-ID", async () => {
    const { job } = (await (await post("/api/realize", { profile: "other" })).json()) as { job: Job }
    const response = await api(`/api/jobs/${job.id}/events`)
    expect(response.headers.get("content-type")).toMatch(/^text\/event-stream/)
    const events = parseEvents(await response.text())
    expect(events.map((e) => e.id)).toEqual(events.map((_, i) => i))
    expect(events.at(-1)?.event).toBe("end")
    expect(events.at(-1)?.data.state).toBe("succeeded")
    // The builder was fetched by an earlier job: this one finds it stored.
    expect(
      events.some((e) => e.event === "node" && e.data.kind === "fetch-builder" && e.data.state === "cached"),
    ).toBe(true)
    for (const kind of ["stage-overlay", "make-image", "collect-artifacts"]) {
      expect(events.some((e) => e.event === "node" && e.data.kind === kind && e.data.state === "done")).toBe(
        true,
      )
    }
    expect(events.filter((e) => e.event === "log").length).toBeGreaterThan(3)
    expect(events.some((e) => e.event === "result")).toBe(true)

    const resumed = parseEvents(
      await (await api(`/api/jobs/${job.id}/events`, { headers: { "last-event-id": "4" } })).text(),
    )
    expect(resumed[0]?.id).toBe(5)
    expect(resumed.at(-1)?.event).toBe("end")
  })

  const buildsOf = async (profile: string) =>
    json<{ builds: Array<{ profile: string }> }>(
      await owrt(["builds", "list", "--json", "--limit", "1000"], { cwd: project.dir, env: project.env }),
    ).builds.filter((b) => b.profile === profile)

  it("answers an identical request with the finished job while its result is current: no new build record", async () => {
    const before = (await buildsOf("ap")).length
    const answers = await Promise.all(
      Array.from({ length: 20 }, () => post("/api/realize", { profile: "ap" })),
    )
    for (const answer of answers) {
      expect(answer.status).toBe(200)
      const { job, joined } = (await answer.json()) as { job: Job; joined: boolean }
      expect(joined).toBe(true)
      expect(job.id).toBe(built.id)
      expect(job.state).toBe("succeeded")
      expect(job.result?.key).toBe(built.result?.key)
    }
    expect(answers[0]?.headers.get("location")).toBe(`/api/jobs/${built.id}`)
    // The batch route answers the same way, a profile named twice sharing its job.
    const batch = (await (await post("/api/realize/batch", { profiles: ["ap", "ap", "ap@1"] })).json()) as {
      jobs: Array<{ job: Job; joined: boolean }>
    }
    expect(batch.jobs.map(({ job }) => job.id)).toEqual([built.id, built.id, built.id])
    expect((await buildsOf("ap")).length).toBe(before)
    // The job is listed first again: it was asked for most recently.
    const listed = (await (await api("/api/jobs")).json()) as { jobs: Array<Job> }
    expect(listed.jobs[0]?.id).toBe(built.id)
  })

  it("starts a new job when the finished one's result is no longer what a realize would give", async () => {
    const first = (await (await post("/api/realize", { profile: "sealed" })).json()) as { job: Job }
    const sealed = await waitForJob(first.job.id)
    expect(sealed.state, JSON.stringify(sealed.error)).toBe("succeeded")
    const again = (await (await post("/api/realize", { profile: "sealed" })).json()) as { job: Job }
    expect(again.job.id).toBe(sealed.id)
    // Same revision (a secret is a reference), different value: a different key to build.
    project.write("profiles/sealed.txt", "second value\n")
    const changed = await post("/api/realize", { profile: "sealed" })
    expect(changed.status).toBe(202)
    const fresh = (await changed.json()) as { job: Job; joined: boolean }
    expect(fresh.joined).toBe(false)
    expect(fresh.job.rev).toBe(sealed.rev)
    const done = await waitForJob(fresh.job.id)
    expect(done.state).toBe("succeeded")
    expect(done.result?.key).not.toBe(sealed.result?.key)
    expect(await buildsOf("sealed")).toHaveLength(2)
  })

  it("reports a realize of something built elsewhere with every node cached, in a new job", async () => {
    const cli = await owrt(["realize", "elsewhere", "--json"], { cwd: project.dir, env: project.env })
    expect(cli.code, cli.stderr).toBe(0)
    const answer = await post("/api/realize", { profile: "elsewhere" })
    expect(answer.status).toBe(202)
    const { job, joined } = (await answer.json()) as { job: Job; joined: boolean }
    expect(joined).toBe(false)
    const done = await waitForJob(job.id)
    expect(done.state).toBe("succeeded")
    expect(done.nodes.find((n) => n.kind === "make-image")?.state).toBe("cached")
    expect(done.result?.key).toBe(json<{ results: Array<{ key: string }> }>(cli).results[0]?.key)
  })

  it("answers bodies nested too deep, and batches naming too many profiles, with 400 before any work", async () => {
    const deep = (depth: number) => `${"[".repeat(depth)}${"]".repeat(depth)}`
    const send = (path: string, body: string) =>
      api(path, { method: "POST", headers: { "content-type": "application/json" }, body })
    for (const [path, body] of [
      ["/api/realize", `{"profile":${deep(3000)}}`],
      ["/api/realize", deep(30_000)],
      ["/api/realize/batch", `{"profiles":[${deep(3000)}]}`],
      ["/api/audit", `{"profile":${deep(3000)}}`],
      ["/api/store/verify", `{"x":${'{"a":'.repeat(5000)}1${"}".repeat(5000)}}`],
    ] as const) {
      const response = await send(path, body)
      expect(response.status, path).toBe(400)
      const { error } = (await response.json()) as { error: { code: string; message: string } }
      expect(error.code).toBe("bad_request")
      expect(error.message).toMatch(/nests arrays and objects more than 64 deep/)
    }
    // Brackets inside strings do not count.
    const quoted = await send("/api/realize", JSON.stringify({ profile: "[".repeat(5000) }))
    expect(quoted.status).toBe(404)
    // Within the limit, the Schema's own message.
    const shallow = await send("/api/realize", `{"profile":${deep(60)}}`)
    expect(shallow.status).toBe(400)
    expect(((await shallow.json()) as { error: { message: string } }).error.message).toMatch(
      /invalid realize request/,
    )

    const jobs = ((await (await api("/api/jobs")).json()) as { jobs: Array<Job> }).jobs.length
    const tooMany = await post("/api/realize/batch", { profiles: Array(300).fill("ap") })
    expect(tooMany.status).toBe(400)
    const { error } = (await tooMany.json()) as { error: { code: string; message: string } }
    expect(error).toMatchObject({ code: "bad_request" })
    expect(error.message).toMatch(/300 profiles named, at most 256 per batch/)
    expect(((await (await api("/api/jobs")).json()) as { jobs: Array<Job> }).jobs.length).toBe(jobs)
    expect(server.stderr()).not.toMatch(/RangeError|Maximum call stack/)
  })

  it("downloads an artifact with Content-Length, its SHA-256 as ETag, 304, Range 206 and 416", async () => {
    const artifact = built.result?.artifacts[0]
    if (!artifact || !built.result) throw new Error("no artifact")
    const path = `/api/artifacts/${built.result.key}/${artifact.name}`
    const response = await api(path)
    expect(response.status).toBe(200)
    expect(response.headers.get("content-length")).toBe(String(artifact.size))
    expect(response.headers.get("etag")).toBe(`"${artifact.sha256}"`)
    expect(response.headers.get("accept-ranges")).toBe("bytes")
    const body = new Uint8Array(await response.arrayBuffer())
    expect(sha256(body)).toBe(artifact.sha256)
    const manifest = JSON.parse(readFileSync(join(built.result.storePath, "owrt-manifest.json"), "utf8")) as {
      images: Array<{ name: string; sha256: string }>
    }
    expect(manifest.images.find((i) => i.name === artifact.name)?.sha256).toBe(sha256(body))

    const head = await api(path, { method: "HEAD" })
    expect(head.status).toBe(200)
    expect(head.headers.get("content-length")).toBe(String(artifact.size))

    const unchanged = await api(path, { headers: { "if-none-match": `"${artifact.sha256}"` } })
    expect(unchanged.status).toBe(304)
    expect((await unchanged.arrayBuffer()).byteLength).toBe(0)
    const changed = await api(path, { headers: { "if-none-match": '"something-else"' } })
    expect(changed.status).toBe(200)
    await changed.arrayBuffer()

    const part = await api(path, { headers: { range: "bytes=100-199" } })
    expect(part.status).toBe(206)
    expect(part.headers.get("content-range")).toBe(`bytes 100-199/${artifact.size}`)
    expect(part.headers.get("content-length")).toBe("100")
    expect(Buffer.from(await part.arrayBuffer())).toEqual(Buffer.from(body.subarray(100, 200)))

    const tail = await api(path, { headers: { range: "bytes=-10" } })
    expect(tail.status).toBe(206)
    expect(Buffer.from(await tail.arrayBuffer())).toEqual(Buffer.from(body.subarray(body.length - 10)))

    const beyond = await api(path, { headers: { range: `bytes=${artifact.size}-` } })
    expect(beyond.status).toBe(416)
    expect(beyond.headers.get("content-range")).toBe(`bytes */${artifact.size}`)
    expect(((await beyond.json()) as { error: { code: string } }).error.code).toBe("range_not_satisfiable")

    const storeDir = built.result.storePath.split("/").pop()
    const viaStore = await api(`/api/store/${storeDir}/images/${artifact.name}`)
    expect(viaStore.headers.get("etag")).toBe(`"${artifact.sha256}"`)
    expect(sha256(new Uint8Array(await viaStore.arrayBuffer()))).toBe(artifact.sha256)
    const listed = (await (await api("/api/artifacts?profile=ap")).json()) as {
      artifacts: Array<{ sha256: string }>
    }
    expect(listed.artifacts.map((a) => a.sha256)).toContain(artifact.sha256)
  })

  it("lists the store and its builders as `owrt store ls` and `owrt builders list` do", async () => {
    const cli = async (args: ReadonlyArray<string>) =>
      json(await owrt([...args, "--json"], { cwd: project.dir, env: project.env }))
    const store = await api("/api/store")
    expect(store.status).toBe(200)
    expect(await store.json()).toEqual(await cli(["store", "ls"]))
    const builders = (await (await api("/api/builders")).json()) as { builders: Array<{ release: string }> }
    expect(builders).toEqual(await cli(["builders", "list"]))
    expect(builders.builders.map((b) => b.release)).toContain("23.05.5")
  })

  it("refuses paths that lead out of the store, raw or percent-encoded", async () => {
    const storeDir = built.result?.storePath.split("/").pop() ?? ""
    const key = built.result?.key ?? ""
    const attempts = [
      `/api/store/${storeDir}/../../../../etc/passwd`,
      `/api/store/${storeDir}/%2e%2e/%2e%2e/%2e%2e/etc/passwd`,
      `/api/store/${storeDir}/images%2f..%2f..%2f..%2fetc%2fpasswd`,
      `/api/store/..%2f..%2fetc/passwd`,
      `/api/artifacts/${key}/..%2f..%2fowrt-manifest.json`,
      `/api/artifacts/${key}/%2e%2e`,
    ]
    for (const path of attempts) {
      const response = await rawRequest(server.url, path)
      expect(response.status, path).toBe(403)
      expect(JSON.parse(response.body.toString()).error.code, path).toBe("path_outside_store")
      expect(response.body.toString()).not.toContain("root:")
    }
    // Staged overlays can hold secrets: never served, even by their exact name.
    const overlays = json<{ paths: Array<{ kind: string; path: string }> }>(
      await owrt(["store", "ls", "--json"], { cwd: project.dir, env: project.env }),
    ).paths.filter((p) => p.kind === "stage-overlay")
    expect(overlays.length).toBeGreaterThan(0)
    const overlay = overlays[0]?.path.split("/").pop()
    expect((await rawRequest(server.url, `/api/store/${overlay}/etc/banner`)).status).toBe(404)
  })

  it("describes every route in /openapi.json (OpenAPI 3.1, schemas resolvable)", async () => {
    const doc = (await (await api("/openapi.json")).json()) as {
      openapi: string
      paths: Record<string, Record<string, { responses: Record<string, unknown> }>>
      components: { schemas: Record<string, unknown> }
    }
    expect(doc.openapi).toBe("3.1.0")
    const routes = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`),
    )
    for (const route of [
      "GET /api/profiles",
      "GET /api/profiles/{profile}",
      "GET /api/profiles/{profile}/history",
      "GET /api/plan",
      "POST /api/realize",
      "POST /api/realize/batch",
      "GET /api/jobs",
      "GET /api/jobs/{id}",
      "GET /api/jobs/{id}/events",
      "GET /api/builds",
      "GET /api/builds/{id}",
      "GET /api/builds/{id}/log",
      "GET /api/artifacts",
      "GET /api/artifacts/{key}/{name}",
      "GET /api/store/{path}",
      "POST /api/audit",
      "POST /api/store/verify",
      "GET /api/store",
      "GET /api/builders",
      "GET /api/flash/devices",
      "GET /api/flash/progress",
      "POST /api/flash",
      "GET /api/flashes",
    ]) {
      expect(routes).toContain(route)
    }
    for (const methods of Object.values(doc.paths)) {
      for (const operation of Object.values(methods))
        expect(Object.keys(operation.responses).length).toBeGreaterThan(0)
    }
    const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)].map(
      (m) => m[1],
    )
    expect(refs).toContain("Job")
    for (const ref of refs) expect(doc.components.schemas, ref).toHaveProperty(ref ?? "")
  })

  it("answers bad requests with the error document and fitting statuses", async () => {
    const error = async (response: Response) =>
      ((await response.json()) as { error: { code: string; exitCode: number } }).error
    const unknown = await post("/api/realize", { profile: "nope" })
    expect(unknown.status).toBe(404)
    expect(await error(unknown)).toEqual(expect.objectContaining({ code: "profile_not_found", exitCode: 4 }))

    const wrongType = await post("/api/realize", { profile: 42 })
    expect(wrongType.status).toBe(400)
    expect((await error(wrongType)).code).toBe("bad_request")
    expect((await post("/api/realize", { profile: "ap", colour: "red" })).status).toBe(400)
    expect((await post("/api/realize", { profile: "base" })).status).toBe(400)

    const notJson = await api("/api/realize", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{profile:",
    })
    expect(notJson.status).toBe(400)
    const form = await api("/api/realize", { method: "POST", body: new URLSearchParams({ profile: "ap" }) })
    expect(form.status).toBe(415)

    const huge = await post("/api/realize", { profile: "ap", padding: "x".repeat(100 * 1024) })
    expect(huge.status).toBe(413)
    expect((await error(huge)).code).toBe("body_too_large")

    expect((await api("/api/nothing-here")).status).toBe(404)
    expect((await api("/api/jobs/0000")).status).toBe(404)
    const wrongMethod = await api("/api/realize")
    expect(wrongMethod.status).toBe(405)
    expect(wrongMethod.headers.get("allow")).toBe("POST")
    const deleteJobs = await api("/api/jobs", { method: "DELETE" })
    expect(deleteJobs.status).toBe(405)
    expect(deleteJobs.headers.get("allow")).toBe("GET, HEAD")
    expect((await error(deleteJobs)).code).toBe("method_not_allowed")
    // A body larger than the limit is refused however it is sent: without a Content-Length too.
    const chunked = await api("/api/realize", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: new Blob([JSON.stringify({ profile: "ap", padding: "x".repeat(100 * 1024) })]).stream(),
      duplex: "half",
    } as RequestInit)
    expect(chunked.status).toBe(413)
    const propfind = await rawRequest(server.url, "/api/jobs", { method: "PROPFIND" })
    expect(propfind.status).toBe(405)
    expect(propfind.headers.allow).toBe("GET, HEAD")
    // Paths match exactly: no case folding, no slashes folded or trimmed, `;` is part of its segment, and a
    // parameter may be long (image names are).
    for (const path of ["/API/JOBS", "/api//jobs", "/api/jobs/", "/api/jobs;x"]) {
      const response = await rawRequest(server.url, path)
      expect(response.status, path).toBe(404)
      expect(JSON.parse(response.body.toString()).error.code, path).toBe("not_found")
    }
    for (const path of ["/api/profiles/ap;v=1", `/api/profiles/${"x".repeat(150)}`]) {
      const response = await rawRequest(server.url, path)
      expect(JSON.parse(response.body.toString()).error.code, path).toBe("profile_not_found")
    }
    for (const path of ["/api/profiles/%zz", "/api/store/%E0%A4%A/x"]) {
      const malformed = await rawRequest(server.url, path)
      expect(malformed.status, path).toBe(400)
      expect(JSON.parse(malformed.body.toString()).error.code, path).toBe("bad_request")
    }
    expect((await api("/api/builds/99999")).status).toBe(404)
    expect((await api("/api/plan?profiles=ap")).status).toBe(200)

    const flash = await api("/api/flash/devices")
    expect(flash.status).toBe(404)
    expect((await error(flash)).code).toBe("flash_disabled")
    // Who flashed which card is as private as flashing itself.
    const flashes = await api("/api/flashes")
    expect(flashes.status).toBe(404)
    expect((await error(flashes)).code).toBe("flash_disabled")

    // A page elsewhere whose name was re-pointed at 127.0.0.1 (DNS rebinding) is not served.
    expect(
      (await rawRequest(server.url, "/api/profiles", { headers: { host: "evil.example:80" } })).status,
    ).toBe(421)
  })

  it("refuses a store file replaced by a symlink leading out", async () => {
    const storePath = built.result?.storePath ?? ""
    chmodSync(storePath, 0o755)
    renameSync(join(storePath, "owrt-manifest.json"), join(storePath, "owrt-manifest.json.orig"))
    symlinkSync("/etc/passwd", join(storePath, "owrt-manifest.json"))
    const response = await rawRequest(
      server.url,
      `/api/store/${storePath.split("/").pop()}/owrt-manifest.json`,
    )
    expect(response.status).toBe(403)
    expect(response.body.toString()).not.toContain("root:")
  })
})

describe("owrt serve: binding and tokens", () => {
  let project: Awaited<ReturnType<typeof servedProject>>
  beforeAll(async () => {
    project = await servedProject({ "profiles/ap.yaml": ap("tplink_archer-c7-v5") })
  })
  afterAll(async () => {
    await project?.cleanup()
  })

  it("refuses to listen beyond loopback without a token", async () => {
    const result = await owrt(["serve", "--host", "0.0.0.0", "--port", "0"], {
      cwd: project.dir,
      env: project.env,
    })
    expect(result.code).toBe(2)
    expect(result.stderr).toContain("serve_token_required")
    expect(result.stdout).not.toContain("listening")
  })

  it("with a token, every API request needs it; the page itself and /openapi.json do not", async () => {
    const server = await startServe(["--host", "0.0.0.0"], {
      cwd: project.dir,
      env: { ...project.env, OWRT_SERVE_TOKEN: "s3cret-token" },
    })
    try {
      const base = server.url.replace("0.0.0.0", "127.0.0.1")
      const missing = await fetch(`${base}/api/profiles`)
      expect(missing.status).toBe(401)
      expect(missing.headers.get("www-authenticate")).toMatch(/^Bearer/)
      expect(((await missing.json()) as { error: { code: string } }).error.code).toBe("unauthorized")
      expect(
        (await fetch(`${base}/api/profiles`, { headers: { authorization: "Bearer wrong" } })).status,
      ).toBe(401)
      expect(
        (await fetch(`${base}/api/profiles`, { headers: { authorization: "Bearer s3cret-token" } })).status,
      ).toBe(200)
      expect((await fetch(`${base}/api/profiles?token=s3cret-token`)).status).toBe(200)
      const postWithQueryToken = await fetch(`${base}/api/realize?token=s3cret-token`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ profile: "ap" }),
      })
      expect(postWithQueryToken.status).toBe(401)
      expect((await fetch(`${base}/`)).status).toBe(200)
      expect((await fetch(`${base}/openapi.json`)).status).toBe(200)
    } finally {
      await server.stop()
    }
  })

  it("stops on SIGTERM, recording a running build as interrupted", async () => {
    const server = await startServe([], {
      cwd: project.dir,
      env: { ...project.env, OWRT_FAKE_IB_DELAY: "30" },
    })
    const response = await fetch(`${server.url}/api/realize`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ profile: "ap", rebuild: true }),
    })
    const { job } = (await response.json()) as { job: Job }
    // Open requests do not hold the stop up: an event stream, and a body that never arrives.
    const events = await fetch(`${server.url}/api/jobs/${job.id}/events`)
    expect(events.headers.get("content-type")).toContain("text/event-stream")
    const stalled = connect(Number(new URL(server.url).port), "127.0.0.1")
    stalled.on("error", () => {})
    stalled.write(
      "POST /api/realize HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
    )
    // Wait until make runs, so there is a build to interrupt.
    for (;;) {
      const current = (await (await fetch(`${server.url}/api/jobs/${job.id}`)).json()) as Job
      if (current.nodes.some((n) => n.kind === "make-image" && n.state === "running")) break
      await new Promise((done) => setTimeout(done, 100))
    }
    const code = await server.stop("SIGTERM")
    expect(code).toBe(130)
    // The stream was ended by the stop.
    await events.text().catch(() => "")
    stalled.destroy()
    const builds = json<{ builds: Array<{ status: string }> }>(
      await owrt(["builds", "list", "--json"], { cwd: project.dir, env: project.env }),
    ).builds
    expect(builds[0]?.status).toBe("interrupted")
  })
})
