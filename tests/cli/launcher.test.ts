import { spawnSync } from "node:child_process"
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  statSync,
  symlinkSync,
} from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { cleanEnv, repoRoot } from "../helpers/cli.js"

/** A copy of the built CLI (launcher, bundle, the build's code cache) in a directory of its own. */
const install = (): string => {
  const dir = mkdtempSync(join(tmpdir(), "owrt-launcher-"))
  for (const sub of ["bin", "dist", "scripts"]) mkdirSync(join(dir, sub))
  for (const file of [
    "bin/owrt.cjs",
    "dist/owrt.cjs",
    "dist/pg.cjs",
    "dist/owrt.cjs.profiles.v8cache",
    "scripts/sqliteAddon.cjs",
    "package.json",
  ])
    copyFileSync(join(repoRoot, file), join(dir, file))
  symlinkSync(join(repoRoot, "node_modules"), join(dir, "node_modules"))
  return dir
}

const run = (dir: string, args: ReadonlyArray<string>, asUser?: number) => {
  const command = [process.execPath, join(dir, "bin", "owrt.cjs"), ...args]
  const [file, ...argv] =
    asUser === undefined
      ? command
      : ["setpriv", `--reuid=${asUser}`, `--regid=${asUser}`, "--clear-groups", "--", ...command]
  return spawnSync(file ?? "", argv, { cwd: dir, env: cleanEnv(), encoding: "utf8" })
}

const dirs: Array<string> = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

describe("bin/owrt.cjs code caches", () => {
  it("a command's first run saves what it ran, not the build's cache of another command", () => {
    const dir = install()
    dirs.push(dir)
    const first = run(dir, ["--version"])
    expect(first.status).toBe(0)
    const saved = join(dir, "dist", "owrt.cjs.v8cache")
    expect(existsSync(saved)).toBe(true)
    // `--version` runs less than `profiles list` (the build's warm-up): started from that cache, the saved
    // one would hold all of it and more.
    expect(statSync(saved).size).toBeLessThan(statSync(join(dir, "dist", "owrt.cjs.profiles.v8cache")).size)
    const mtime = statSync(saved).mtimeMs
    const second = run(dir, ["--version"])
    expect(second.status).toBe(0)
    expect(second.stdout).toBe(first.stdout)
    expect(statSync(saved).mtimeMs).toBe(mtime)
  })

  it("where dist/ is read-only, starts with the build's cache and writes none", () => {
    const dir = install()
    dirs.push(dir)
    chmodSync(dir, 0o755)
    const result = run(dir, ["--version"], 65534)
    expect(result.stderr).toBe("")
    expect(result.status).toBe(0)
    expect(result.stdout.trim()).toMatch(/^\S*\d+\.\d+\.\d+/)
    expect(existsSync(join(dir, "dist", "owrt.cjs.v8cache"))).toBe(false)
  })
})
