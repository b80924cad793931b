import { spawn, spawnSync } from "node:child_process"
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
import { buildMirror, serveMirror } from "../fixtures/mirror/index.js"
import { cleanEnv, makeProject, repoRoot } from "../helpers/cli.js"

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

const run = (
  dir: string,
  args: ReadonlyArray<string>,
  options: { asUser?: number; cwd?: string; env?: Record<string, string> } = {},
) => {
  const command = [process.execPath, join(dir, "bin", "owrt.cjs"), ...args]
  const [file, ...argv] =
    options.asUser === undefined
      ? command
      : [
          "setpriv",
          `--reuid=${options.asUser}`,
          `--regid=${options.asUser}`,
          "--clear-groups",
          "--",
          ...command,
        ]
  // Every run counts as quick (see the last test), however loaded the machine.
  return spawnSync(file ?? "", argv, {
    cwd: options.cwd ?? dir,
    env: cleanEnv({ OWRT_CODE_CACHE_LONG_MS: "60000", ...options.env }),
    encoding: "utf8",
  })
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
    const result = run(dir, ["--version"], { asUser: 65534 })
    expect(result.stderr).toBe("")
    expect(result.status).toBe(0)
    expect(result.stdout.trim()).toMatch(/^\S*\d+\.\d+\.\d+/)
    expect(existsSync(join(dir, "dist", "owrt.cjs.v8cache"))).toBe(false)
  })

  it("a cache made by a run that built is provisional: the next quick run drops it, the one after saves a lean one", async () => {
    const dir = install()
    dirs.push(dir)
    const { root, keyring } = await buildMirror()
    const mirror = await serveMirror(root)
    const project = makeProject({
      "profiles/ap.yaml":
        'release: "23.05.5"\ntarget: ath79/generic\ndevice: tplink_archer-c7-v5\npackages: [luci]\n',
    })
    try {
      // Asynchronously: the stand-in mirror answers from this process.
      // Which run counts as long is set here, as a build's length and a noop's depend on the machine.
      const realize = (longMs: number) =>
        new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve, reject) => {
          const child = spawn(process.execPath, [join(dir, "bin", "owrt.cjs"), "realize", "ap"], {
            cwd: project.dir,
            env: cleanEnv({
              OWRT_UPSTREAM: mirror.url,
              OWRT_KEYRING: keyring,
              OWRT_CODE_CACHE_LONG_MS: String(longMs),
            }),
            stdio: ["ignore", "pipe", "pipe"],
          })
          let stdout = ""
          let stderr = ""
          child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")))
          child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")))
          child.on("error", reject)
          child.on("close", (status) => resolve({ status, stdout, stderr }))
        })
      const cache = join(dir, "dist", "owrt.cjs.realize.v8cache")
      const mark = `${cache}.long`
      const built = await realize(0)
      expect(built.status, built.stderr).toBe(0)
      expect(built.stdout).toMatch(/ap@1 {2}built/)
      expect(existsSync(cache) && existsSync(mark)).toBe(true)
      const fromBuild = statSync(cache).size
      const first = await realize(60_000)
      expect(first.stdout).toMatch(/ap@1 {2}cached/)
      expect(existsSync(cache) || existsSync(mark)).toBe(false)
      const second = await realize(60_000)
      expect(second.stdout).toBe(first.stdout)
      expect(existsSync(cache)).toBe(true)
      expect(existsSync(mark)).toBe(false)
      expect(statSync(cache).size).toBeLessThan(fromBuild)
    } finally {
      await mirror.close()
      project.cleanup()
    }
  })
})
