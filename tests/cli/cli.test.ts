import { spawn } from "node:child_process"
import { chmodSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { cleanEnv, type ErrorDocument, json, makeProject, owrt, owrtBin, repoRoot } from "../helpers/cli.js"

describe("the owrt CLI", () => {
  it("prints its version", async () => {
    const result = await owrt(["--version"], { cwd: repoRoot })
    expect(result.code).toBe(0)
    const manifest = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { version: string }
    expect(result.stdout).toBe(`${manifest.version}\n`)
    expect(result.stderr).toBe("")
  })

  it("checks an option that names a directory: a file there is a usage error (exit 2)", async () => {
    // @effect/cli asks its file system (Node's) whether the path is a directory.
    const result = await owrt(["mcp", "--project", join(repoRoot, "package.json")], { cwd: repoRoot })
    expect(result.code).toBe(2)
    expect(result.stderr).toContain("to be a directory")
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

  it("refuses to realize an abstract profile named on the command line (usage, exit 2), building nothing", async () => {
    const project = makeProject({
      "profiles/base.yaml": 'abstract: true\nrelease: "23.05.5"\ntarget: ath79/generic\n',
      "profiles/ap.yaml": "extends: base\ndevice: tplink_archer-c7-v5\n",
    })
    try {
      // Offline: what is refused must be refused before upstream is asked anything.
      const result = await owrt(["realize", "base", "--json", "--offline"], { cwd: project.dir })
      expect(result.code, result.stdout + result.stderr).toBe(2)
      expect(json<ErrorDocument>(result).error).toMatchObject({
        code: "usage",
        message: expect.stringContaining("base is abstract"),
      })
    } finally {
      project.cleanup()
    }
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

  describe("command-line mistakes are usage errors (exit 2) in owrt's format", () => {
    const usage = async (args: ReadonlyArray<string>) => {
      const human = await owrt(args, { cwd: repoRoot })
      expect(human.code, human.stdout + human.stderr).toBe(2)
      expect(human.stdout).toBe("")
      // One line, the usual format, no terminal colour codes.
      expect(human.stderr).toMatch(/^owrt: error\[usage\]: [^\n]+\n$/)
      expect(human.stderr).not.toContain("\u001b")
      const machine = await owrt([...args, "--json"], { cwd: repoRoot })
      expect(machine.code).toBe(2)
      expect(machine.stderr).toBe("")
      const { error } = json<ErrorDocument>(machine)
      expect(error).toMatchObject({ code: "usage", exitCode: 2 })
      expect(`owrt: error[usage]: ${error.message}\n`).toBe(human.stderr)
      return error.message
    }

    it("an unknown option is not taken for a profile name", async () => {
      expect(await usage(["realize", "--bogus", "home-ap"])).toContain(
        "unknown option --bogus for `owrt realize`",
      )
      expect(await usage(["profiles", "show", "home-ap", "--rebuild"])).toContain(
        "unknown option --rebuild for `owrt profiles show`",
      )
      expect(await usage(["realize", "home-ap", "--rebuld"])).toContain("did you mean --rebuild?")
    })

    it("a bad option value, an unknown command, and an argument a command does not take", async () => {
      expect(await usage(["builds", "list", "--limit", "zero"])).toContain("'zero' is not a integer")
      expect(await usage(["builds", "list", "--limit=zero"])).toContain("'zero'")
      expect(await usage(["flash", "--verify", "sometimes", "a.img", "/dev/sdx"])).toContain("full, none")
      expect(await usage(["frobnicate"])).toContain("`frobnicate` is not a command of `owrt`")
      expect(await usage(["profiles", "lisst"])).toContain("did you mean list?")
      expect(await usage(["flash", "list", "extra"])).toContain("`extra` is not taken by `owrt flash list`")
    })

    it("still accepts every way of writing a known option", async () => {
      for (const args of [
        ["config", "--json", "--jobs=3"],
        ["config", "--json", "-j", "3"],
        ["config", "--offline", "true", "--json", "--jobs", "3"],
      ]) {
        const result = await owrt(args, { cwd: repoRoot })
        expect(result.code, `${args.join(" ")}: ${result.stderr}`).toBe(0)
        expect(json<{ jobs: number }>(result).jobs).toBe(3)
      }
    })
  })

  describe("--help", () => {
    const esc = String.fromCharCode(27)
    const colourCode = new RegExp(`${esc}\\[[0-9;]*m`, "g")
    /** Runs owrt on a terminal (`script` makes one) of `columns` columns. */
    const onTerminal = (args: string, columns: number, env: Record<string, string | undefined> = {}) =>
      new Promise<string>((resolve, reject) => {
        const child = spawn(
          "script",
          ["-qec", `stty cols ${columns}; ${process.execPath} ${owrtBin} ${args}`, "/dev/null"],
          { cwd: repoRoot, env: cleanEnv(env), stdio: ["ignore", "pipe", "pipe"] },
        )
        let output = ""
        child.stdout.on("data", (chunk: Buffer) => {
          output += chunk.toString("utf8")
        })
        child.on("error", reject)
        child.on("close", () => resolve(output.replaceAll("\r", "")))
      })
    const longest = (text: string) => Math.max(...text.split("\n").map((line) => line.length))

    it("names the full command, says only what each option does, and fits 80 columns off a terminal", async () => {
      const result = await owrt(["flash", "list", "--help"], { cwd: repoRoot })
      expect(result.code).toBe(0)
      const help = result.stdout
      expect(help).toContain("owrt flash list [--limit integer] [--json]")
      expect(help).not.toMatch(/^\s*\$ /m)
      expect(help).toMatch(/--limit integer +Most recent N flashes \(default: 50\)/)
      expect(help).not.toContain("A true or false value.")
      expect(help).not.toContain("This setting is optional.")
      expect(help).not.toContain(esc)
      expect(longest(help)).toBeLessThanOrEqual(80)

      const root = await owrt(["--help"], { cwd: repoRoot })
      expect(root.stdout).toMatch(/^owrt \d+\.\d+\.\d+ — /)
      expect(root.stdout).toMatch(/^ {2}realize +Build profiles/m)
      // A group of commands run bare shows its own help.
      const group = await owrt(["profiles"], { cwd: repoRoot })
      expect(group.code).toBe(0)
      expect(group.stdout).toContain("owrt profiles <command>")
      expect(group.stdout).toMatch(/^ {2}validate +Check profiles/m)
    })

    it("wraps to the terminal's width, and is plain when NO_COLOR is set", async () => {
      const narrow = await onTerminal("realize --help", 60, { NO_COLOR: "1" })
      expect(narrow).toContain("owrt realize")
      expect(narrow).not.toContain(esc)
      expect(longest(narrow)).toBeLessThanOrEqual(60)
      const wide = await onTerminal("realize --help", 120)
      expect(wide).toContain(`${esc}[1mOPTIONS`)
      expect(longest(wide.replaceAll(colourCode, ""))).toBeGreaterThan(80)
    })
  })
})
