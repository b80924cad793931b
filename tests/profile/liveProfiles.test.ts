import { rmSync } from "node:fs"
import { join } from "node:path"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { cleanEnv, owrtBin } from "../helpers/cli.js"
import { ap, type ServeProcess, servedProject, startServe } from "../web/serveProcess.js"

/**
 * Long-running processes (`owrt serve`, `owrt mcp`) see the profiles directory as it is at each request:
 * an edit, a new file and a removed file show on the next request, and one broken profile hides no other.
 */

interface Summary {
  readonly id: string
  readonly revision: { readonly seq: number | null; readonly hash: string }
}
interface Listed {
  readonly profiles: ReadonlyArray<Summary>
  readonly errors?: ReadonlyArray<{ profile: string; code: string; message: string; exitCode: number }>
}
interface Shown {
  readonly id: string
  readonly revision: { readonly seq: number | null; readonly hash: string }
  readonly profile: { readonly packages: ReadonlyArray<string> }
}

const initial = {
  "profiles/base.yaml": 'abstract: true\nrelease: "23.05.5"\n',
  "profiles/ap.yaml": ap("tplink_archer-c7-v5"),
  "profiles/gone.yaml": ap("glinet_gl-ar300m16"),
}

describe("owrt serve sees profile edits, additions and removals on the next request", () => {
  let project: Awaited<ReturnType<typeof servedProject>>
  let server: ServeProcess
  const api = (path: string, init: RequestInit = {}) => fetch(`${server.url}${path}`, init)
  const getJson = async <T>(path: string): Promise<{ status: number; body: T }> => {
    const response = await api(path)
    return { status: response.status, body: (await response.json()) as T }
  }

  beforeAll(async () => {
    project = await servedProject(initial)
    // make image sleeps, so the jobs started here are still running when the server stops.
    server = await startServe([], { cwd: project.dir, env: { ...project.env, OWRT_FAKE_IB_DELAY: "5" } })
  })
  afterAll(async () => {
    await server?.stop()
    await project?.cleanup()
  })

  it("an edited profile is resolved, shown and realized at its new revision", async () => {
    const before = await getJson<Shown>("/api/profiles/ap")
    expect(before.status).toBe(200)
    // Looking records no revision: it has a number once something realizes it.
    expect(before.body.revision.seq).toBeNull()
    expect(before.body.profile.packages).toEqual(["luci"])

    project.write("profiles/ap.yaml", ap("tplink_archer-c7-v5").replace("[luci]", "[luci, tcpdump]"))
    const after = await getJson<Shown>("/api/profiles/ap")
    expect(after.body.profile.packages).toEqual(["luci", "tcpdump"])
    expect(after.body.revision.seq).toBeNull()
    expect(after.body.revision.hash).not.toBe(before.body.revision.hash)

    const listed = await getJson<Listed>("/api/profiles")
    expect(listed.body.profiles.find((p) => p.id === "ap")?.revision.hash).toBe(after.body.revision.hash)

    const realize = await api("/api/realize", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ profile: "ap" }),
    })
    expect(realize.status).toBe(202)
    const { job } = (await realize.json()) as { job: { rev: number; profile: string } }
    expect(job).toMatchObject({ profile: "ap", rev: 1 })
    expect((await getJson<Shown>("/api/profiles/ap")).body.revision.seq).toBe(1)
  })

  it("an edit to a parent reaches the profiles that extend it", async () => {
    project.write("profiles/base.yaml", 'abstract: true\nrelease: "23.05.5"\npackages: [htop]\n')
    project.write("profiles/child.yaml", "extends: base\ntarget: ath79/generic\ndevice: x\n")
    expect((await getJson<Shown>("/api/profiles/child")).body.profile.packages).toEqual(["htop"])
    project.write("profiles/base.yaml", 'abstract: true\nrelease: "23.05.5"\npackages: [nano]\n')
    expect((await getJson<Shown>("/api/profiles/child")).body.profile.packages).toEqual(["nano"])
  })

  it("an added profile is listed and shown; a removed one is gone", async () => {
    project.write("profiles/added.yaml", ap("tplink_archer-c7-v5"))
    const listed = await getJson<Listed>("/api/profiles")
    expect(listed.body.profiles.map((p) => p.id)).toContain("added")
    expect((await getJson<Shown>("/api/profiles/added")).status).toBe(200)

    rmSync(join(project.dir, "profiles/gone.yaml"))
    const relisted = await getJson<Listed>("/api/profiles")
    expect(relisted.body.profiles.map((p) => p.id)).not.toContain("gone")
    const gone = await getJson<{ error: { code: string } }>("/api/profiles/gone")
    expect(gone.status).toBe(404)
    expect(gone.body.error.code).toBe("profile_not_found")
  })

  it("a profile broken while the server runs is reported in `errors`; the others stay listed", async () => {
    project.write("profiles/added.yaml", `${ap("tplink_archer-c7-v5")}pacakges: [x]\n`)
    const listed = await getJson<Listed>("/api/profiles")
    expect(listed.status).toBe(200)
    expect(listed.body.profiles.map((p) => p.id)).toEqual(["ap", "base", "child"])
    expect(listed.body.errors).toEqual([
      expect.objectContaining({ profile: "added", code: "profile_unknown_key", exitCode: 3 }),
    ])
    expect(listed.body.errors?.[0]?.message).toContain("profiles/added.yaml:5")
    const shown = await getJson<{ error: { code: string } }>("/api/profiles/added")
    expect(shown.status).toBe(422)
    expect(shown.body.error.code).toBe("profile_unknown_key")
    // A batch over every profile starts the good ones' jobs and reports the broken one.
    const batch = await api("/api/realize/batch", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ all: true }),
    })
    expect(batch.status).toBe(202)
    const accepted = (await batch.json()) as {
      jobs: ReadonlyArray<{ job: { profile: string } }>
      errors: Listed["errors"]
    }
    expect(accepted.jobs.map((j) => j.job.profile).sort()).toEqual(["ap", "child"])
    expect(accepted.errors).toEqual([
      expect.objectContaining({ profile: "added", code: "profile_unknown_key", exitCode: 3 }),
    ])

    // Fixed again: listed again, and the errors are gone.
    project.write("profiles/added.yaml", ap("tplink_archer-c7-v5"))
    const fixed = await getJson<Listed>("/api/profiles")
    expect(fixed.body.profiles.map((p) => p.id)).toEqual(["added", "ap", "base", "child"])
    expect(fixed.body.errors).toEqual([])
  })
})

describe("owrt mcp sees profile edits, additions and removals on the next call", () => {
  let project: Awaited<ReturnType<typeof servedProject>>
  let client: Client
  let stderr = ""
  const call = async (name: string, args: Record<string, unknown> = {}) =>
    (await client.callTool({ name, arguments: args })) as CallToolResult
  const structured = <T>(result: CallToolResult): T => {
    expect(result.isError ?? false, `${JSON.stringify(result.content)}\n${stderr}`).toBe(false)
    return result.structuredContent as T
  }
  const toolError = (result: CallToolResult) => {
    expect(result.isError).toBe(true)
    const [content] = result.content
    if (content?.type !== "text") throw new Error(`tool error without text: ${JSON.stringify(result)}`)
    return (JSON.parse(content.text) as { error: { code: string; exitCode: number } }).error
  }

  beforeAll(async () => {
    project = await servedProject(initial)
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [owrtBin, "mcp"],
      cwd: project.dir,
      env: cleanEnv(project.env),
      stderr: "pipe",
    })
    transport.stderr?.on("data", (chunk: Buffer) => {
      stderr += chunk.toString("utf8")
    })
    client = new Client({ name: "owrt-live-profiles-test", version: "1.0.0" })
    await client.connect(transport)
  })
  afterAll(async () => {
    await client?.close()
    await project?.cleanup()
  })

  it("get_profile and list_profiles follow edits, additions and removals", async () => {
    const before = structured<Shown>(await call("get_profile", { profile: "ap" }))
    expect(before.profile.packages).toEqual(["luci"])

    project.write("profiles/ap.yaml", ap("tplink_archer-c7-v5").replace("[luci]", "[luci, tcpdump]"))
    const after = structured<Shown>(await call("get_profile", { profile: "ap" }))
    expect(after.profile.packages).toEqual(["luci", "tcpdump"])
    expect(after.revision.seq).toBeNull()
    expect(after.revision.hash).not.toBe(before.revision.hash)

    project.write("profiles/added.yaml", ap("tplink_archer-c7-v5"))
    rmSync(join(project.dir, "profiles/gone.yaml"))
    const listed = structured<Listed>(await call("list_profiles"))
    expect(listed.profiles.map((p) => p.id)).toEqual(["added", "ap", "base"])
    expect(listed.profiles.find((p) => p.id === "ap")?.revision.hash).toBe(after.revision.hash)
    expect(toolError(await call("get_profile", { profile: "gone" })).code).toBe("profile_not_found")
  })

  it("list_profiles reports a broken profile in `errors` and still lists the others", async () => {
    project.write("profiles/broken.yaml", "extends: nowhere\n")
    const listed = structured<Listed>(await call("list_profiles"))
    expect(listed.profiles.map((p) => p.id)).toEqual(["added", "ap", "base"])
    expect(listed.errors).toEqual([
      expect.objectContaining({ profile: "broken", code: "profile_parent_missing", exitCode: 3 }),
    ])
    expect(listed.errors?.[0]?.message).toContain("profiles/broken.yaml:1")
  })
})
