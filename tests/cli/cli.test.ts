import { chmodSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { type ErrorDocument, json, makeProject, owrt, repoRoot } from "../helpers/cli.js"

describe("the owrt CLI", () => {
  it("prints its version", async () => {
    const result = await owrt(["--version"], { cwd: repoRoot })
    expect(result.code).toBe(0)
    const manifest = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { version: string }
    expect(result.stdout.trim()).toContain(manifest.version)
  })

  it("validates every example profile", async () => {
    const result = await owrt(["profiles", "validate", "--json"], { cwd: repoRoot })
    expect(result.code, result.stdout + result.stderr).toBe(0)
    const report = json<{ valid: boolean; profiles: ReadonlyArray<{ id: string }> }>(result)
    expect(report.valid).toBe(true)
    expect(report.profiles.map((p) => p.id)).toEqual(
      expect.arrayContaining(["base", "home-ap", "x86-router"]),
    )
  })

  it("answers a usage error with exit 2 and, with --json, only a JSON error on stdout", async () => {
    const result = await owrt(["profiles", "frobnicate", "--json"], { cwd: repoRoot })
    expect(result.code).toBe(2)
    const { error } = json<ErrorDocument>(result)
    expect(error).toMatchObject({ code: "usage", exitCode: 2 })
    expect(Object.keys(error).sort()).toEqual(["code", "exitCode", "message"])
  })

  it("shows overlay file modes as octal strings, as profiles write them", async () => {
    const project = makeProject({
      "profiles/ap.yaml": 'release: "23.05.5"\ntarget: ath79/generic\ndevice: x\noverlay: files/ap\n',
      "profiles/files/ap/etc/banner": "hello\n",
    })
    try {
      chmodSync(join(project.dir, "profiles/files/ap/etc/banner"), 0o755)
      const result = await owrt(["profiles", "show", "ap", "--json"], { cwd: project.dir })
      expect(result.code, result.stderr).toBe(0)
      const shown = json<{ profile: { overlay: ReadonlyArray<{ path: string; mode: unknown }> } }>(result)
      expect(shown.profile.overlay).toEqual([expect.objectContaining({ path: "etc/banner", mode: "0755" })])
      const human = await owrt(["profiles", "show", "ap"], { cwd: project.dir })
      expect(human.stdout).toMatch(/\/etc\/banner {2}0755 6 B/)
    } finally {
      project.cleanup()
    }
  })

  it("prints human errors on stderr, leaving stdout empty", async () => {
    const result = await owrt(["profiles", "show", "no-such-profile"], { cwd: repoRoot })
    expect(result.code).toBe(4)
    expect(result.stdout).toBe("")
    expect(result.stderr).toMatch(/^owrt: error\[profile_not_found\]: no profile `no-such-profile`/)
  })

  it("ships a JSON Schema for editors that matches `owrt profiles schema`", async () => {
    const result = await owrt(["profiles", "schema"], { cwd: repoRoot })
    expect(result.code).toBe(0)
    const generated = JSON.parse(result.stdout) as {
      $defs: Record<string, { properties: Record<string, unknown> }>
    }
    expect(Object.keys(generated.$defs["OwrtProfile"]?.properties ?? {})).toContain("packages")
    const committed = JSON.parse(
      readFileSync(join(repoRoot, "docs", "profile.schema.json"), "utf8"),
    ) as unknown
    expect(committed).toEqual(generated)
  })
})
