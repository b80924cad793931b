import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { cleanEnv, json, owrt, owrtBin } from "../helpers/cli.js"
import { ap, servedProject } from "../web/serveProcess.js"

/**
 * One broken profile file next to good ones: commands over every profile show the good ones and report
 * the broken one with its located error, and still exit 3.
 */

interface ProfileErrorEntry {
  readonly profile: string
  readonly code: string
  readonly message: string
  readonly exitCode: number
  readonly diagnostics: ReadonlyArray<{ file: string; line: number; column: number; path: string }>
}

describe("a broken profile next to good ones", () => {
  let project: Awaited<ReturnType<typeof servedProject>>
  const run = (args: ReadonlyArray<string>) => owrt(args, { cwd: project.dir, env: project.env })

  beforeAll(async () => {
    project = await servedProject({
      "profiles/base.yaml": 'abstract: true\nrelease: "23.05.5"\n',
      "profiles/good.yaml": ap("tplink_archer-c7-v5", "extends: base\n"),
      "profiles/also-good.yaml": ap("glinet_gl-ar300m16"),
      // Line 4 has the typo.
      "profiles/broken.yaml": 'release: "23.05.5"\ntarget: ath79/generic\ndevice: x\npacakges: [luci]\n',
    })
  })
  afterAll(async () => {
    await project?.cleanup()
  })

  const expectBrokenEntry = (errors: ReadonlyArray<ProfileErrorEntry> | undefined) => {
    expect(errors).toHaveLength(1)
    const [entry] = errors ?? []
    expect(entry).toMatchObject({ profile: "broken", code: "profile_unknown_key", exitCode: 3 })
    expect(entry?.message).toContain("profiles/broken.yaml:4:1: pacakges: unknown key `pacakges`")
    expect(entry?.diagnostics[0]).toMatchObject({ file: "profiles/broken.yaml", line: 4, path: "pacakges" })
  }

  it("profiles list --json lists the good ones, an `errors` entry for the broken one, and exits 3", async () => {
    const result = await run(["profiles", "list", "--json"])
    expect(result.code, result.stderr).toBe(3)
    const listed = json<{ profiles: Array<{ id: string }>; errors: Array<ProfileErrorEntry> }>(result)
    expect(listed.profiles.map((p) => p.id)).toEqual(["also-good", "base", "good"])
    expectBrokenEntry(listed.errors)
  })

  it("profiles list prints the good ones and the broken one's located error, and exits 3", async () => {
    const result = await run(["profiles", "list"])
    expect(result.code).toBe(3)
    expect(result.stdout).toMatch(/^good\s/m)
    expect(result.stdout).toMatch(/^also-good\s/m)
    expect(`${result.stdout}${result.stderr}`).toContain(
      "profiles/broken.yaml:4:1: pacakges: unknown key `pacakges`",
    )
  })

  it("plan --all --json plans the good ones, reports the broken one in `errors`, and exits 3", async () => {
    const result = await run(["plan", "--all", "--json"])
    expect(result.code, result.stderr).toBe(3)
    const planned = json<{
      profiles: Array<{ profile: string }>
      errors: Array<ProfileErrorEntry>
      summary: { profiles: number }
    }>(result)
    expect(planned.profiles.map((p) => p.profile)).toEqual(["also-good", "good"])
    expect(planned.summary.profiles).toBe(2)
    expectBrokenEntry(planned.errors)
  })

  it("realize --all builds the good ones and reports the broken one as a failure, then exits 3", async () => {
    const result = await run(["realize", "--all", "--json"])
    expect(result.code, result.stderr).toBe(3)
    const realized = json<{
      results: Array<{ profile: string }>
      failures: Array<{ profile: string; error: { code: string; message: string; exitCode: number } }>
    }>(result)
    expect(realized.results.map((r) => r.profile).sort()).toEqual(["also-good", "good"])
    expect(realized.failures).toEqual([
      {
        profile: "broken",
        error: expect.objectContaining({ code: "profile_unknown_key", exitCode: 3 }),
      },
    ])
    expect(realized.failures[0]?.error.message).toContain("profiles/broken.yaml:4:1")
  })

  it("MCP realize_batch (fail-fast) reports what realize --all --json does: the broken one stops nothing", async () => {
    const cli = json<Record<string, unknown>>(await run(["realize", "--all", "--json"]))
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [owrtBin, "mcp"],
      cwd: project.dir,
      env: cleanEnv(project.env),
      stderr: "pipe",
    })
    const client = new Client({ name: "owrt-test", version: "1.0.0" })
    await client.connect(transport)
    try {
      const called = await client.callTool({
        name: "realize_batch",
        arguments: { all: true, mode: "fail-fast" },
      })
      expect(called.isError ?? false, JSON.stringify(called.content)).toBe(false)
      const batch = called.structuredContent as Record<string, unknown>
      // Only the build ids differ: each request records builds of its own.
      const withoutIds = (report: Record<string, unknown>) => ({
        ...report,
        results: (report.results as Array<Record<string, unknown>>)
          .map(({ buildId: _, ...rest }) => rest)
          .sort((x, y) => String(x.profile).localeCompare(String(y.profile))),
      })
      expect(withoutIds(batch)).toEqual(withoutIds(cli))
      expect(batch).toMatchObject({
        mode: "fail-fast",
        skipped: [],
        totals: { requested: 3, succeeded: 2, cacheHits: 2, failed: 1, skipped: 0 },
      })
    } finally {
      await client.close()
    }
  })

  it("a profile named explicitly still fails on its own error", async () => {
    const result = await run(["plan", "broken", "--json"])
    expect(result.code).toBe(3)
    expect(json<{ error: { code: string } }>(result).error.code).toBe("profile_unknown_key")
  })

  it("with every profile valid, there are no errors and the exit code is 0", async () => {
    project.write("profiles/broken.yaml", 'release: "23.05.5"\ntarget: ath79/generic\ndevice: x\n')
    const result = await run(["profiles", "list", "--json"])
    expect(result.code, result.stderr).toBe(0)
    expect(json<{ errors: Array<unknown> }>(result).errors).toEqual([])
  })
})
