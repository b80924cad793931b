import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { buildMirror, serveMirror } from "../fixtures/mirror/index.js"
import { makeProject, owrt, repoRoot } from "../helpers/cli.js"

/**
 * A copy of the built CLI (launcher, the bundles, the build's code cache) in a directory of its own; the
 * other code caches the checkout's runs made are left behind.
 */
const install = (): string => {
  const dir = mkdtempSync(join(tmpdir(), "owrt-launcher-"))
  for (const sub of ["bin", "dist", "scripts"]) mkdirSync(join(dir, sub))
  const bundles = readdirSync(join(repoRoot, "dist"))
    .filter((name) => name.endsWith(".cjs"))
    .map((name) => `dist/${name}`)
  for (const file of [
    "bin/owrt.cjs",
    ...bundles,
    "dist/owrt.cjs.profiles.v8cache",
    "scripts/sqliteAddon.cjs",
    "package.json",
  ])
    copyFileSync(join(repoRoot, file), join(dir, file))
  symlinkSync(join(repoRoot, "node_modules"), join(dir, "node_modules"))
  return dir
}

/** The installation's CLI; every run counts as quick (see the last test), however loaded the machine. */
const run = (
  dir: string,
  args: ReadonlyArray<string>,
  options: { asUser?: number; cwd?: string; env?: Record<string, string> } = {},
) =>
  owrt(args, {
    bin: join(dir, "bin", "owrt.cjs"),
    cwd: options.cwd ?? dir,
    env: { OWRT_CODE_CACHE_LONG_MS: "60000", ...options.env },
    ...(options.asUser === undefined ? {} : { asUser: options.asUser }),
  })

/** The code caches in an installation's dist/, sorted. */
const caches = (dir: string) =>
  readdirSync(join(dir, "dist"))
    .filter((name) => name.endsWith(".v8cache"))
    .sort()

const dirs: Array<string> = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

describe("bin/owrt.cjs code caches", () => {
  it("a command's first run saves what it ran, not the build's cache of another command", async () => {
    const dir = install()
    dirs.push(dir)
    const first = await run(dir, ["--version"])
    expect(first.code).toBe(0)
    const saved = join(dir, "dist", "owrt.cjs.version.v8cache")
    expect(existsSync(saved)).toBe(true)
    // `--version` alone loads no command: the cache that help and mistyped names share is not its to make.
    expect(existsSync(join(dir, "dist", "owrt.cjs.v8cache"))).toBe(false)
    // `--version` runs less than `profiles list` (the build's warm-up): started from that cache, the saved
    // one would hold all of it and more.
    expect(statSync(saved).size).toBeLessThan(statSync(join(dir, "dist", "owrt.cjs.profiles.v8cache")).size)
    const mtime = statSync(saved).mtimeMs
    const second = await run(dir, ["--version"])
    expect(second.code).toBe(0)
    expect(second.stdout).toBe(first.stdout)
    expect(statSync(saved).mtimeMs).toBe(mtime)
  })

  it("where dist/ is read-only, starts with the build's cache and writes none", async () => {
    const dir = install()
    dirs.push(dir)
    chmodSync(dir, 0o755)
    const result = await run(dir, ["--version"], { asUser: 65534 })
    expect(result.stderr).toBe("")
    expect(result.code).toBe(0)
    expect(result.stdout.trim()).toMatch(/^\S*\d+\.\d+\.\d+/)
    expect(existsSync(join(dir, "dist", "owrt.cjs.version.v8cache"))).toBe(false)
  })

  it("where dist/ is read-only, a command without a cache of its own runs from dist/owrt.cjs with the build's", async () => {
    const dir = install()
    dirs.push(dir)
    chmodSync(dir, 0o755)
    // Were dist/owrt.config.cjs run instead, it would say that it is from an older build.
    writeFileSync(join(dir, "dist", "owrt.config.cjs"), "module.exports = {}\n")
    const result = await run(dir, ["config", "--json"], { asUser: 65534 })
    expect(result.stderr).toBe("")
    expect(result.code).toBe(0)
    expect(JSON.parse(result.stdout)).toMatchObject({ projectRoot: dir })
    expect(caches(dir)).toEqual(["owrt.cjs.profiles.v8cache"])
  })

  it("where dist/ is read-only and the build's cache is missing, a command runs from its own bundle", async () => {
    const dir = install()
    dirs.push(dir)
    chmodSync(dir, 0o755)
    rmSync(join(dir, "dist", "owrt.cjs.profiles.v8cache"))
    writeFileSync(join(dir, "dist", "owrt.cjs"), "module.exports = {}\n")
    const result = await run(dir, ["config", "--json"], { asUser: 65534 })
    expect(result.stderr).toBe("")
    expect(result.code).toBe(0)
    expect(JSON.parse(result.stdout)).toMatchObject({ projectRoot: dir })
    expect(caches(dir)).toEqual([])
  })

  it("a command runs from its module's bundle; help, a mistyped name and --version from dist/owrt.cjs", async () => {
    const dir = install()
    dirs.push(dir)
    const whole = join(dir, "dist", "owrt.cjs")
    writeFileSync(whole, "module.exports = {}\n")
    const fromModule = await run(dir, ["profiles", "list", "--json"])
    expect(fromModule.stderr).toBe("")
    expect(fromModule.code).toBe(0)
    expect(JSON.parse(fromModule.stdout)).toMatchObject({ profiles: [] })
    expect(caches(dir)).toEqual(["owrt.cjs.profiles.v8cache", "owrt.profiles.cjs.profiles.v8cache"])
    for (const args of [["--version"], ["--help"], ["profils", "list"]]) {
      const result = await run(dir, args)
      expect(result.code, args.join(" ")).toBe(70)
      expect(result.stderr).toContain("dist/owrt.cjs is from an older build")
    }
  })

  it("a command whose module's bundle is missing runs from dist/owrt.cjs, with a cache of that", async () => {
    const dir = install()
    dirs.push(dir)
    const before = await run(dir, ["config", "--json"])
    expect(before.code, before.stderr).toBe(0)
    rmSync(join(dir, "dist", "owrt.config.cjs"))
    rmSync(join(dir, "dist", "owrt.config.cjs.config.v8cache"))
    const fromWhole = await run(dir, ["config", "--json"])
    expect(fromWhole.code, fromWhole.stderr).toBe(0)
    expect(fromWhole.stdout).toBe(before.stdout)
    expect(caches(dir)).toEqual(["owrt.cjs.config.v8cache", "owrt.cjs.profiles.v8cache"])
  })

  it("a cache V8 rejects is replaced, and the command runs as with none", async () => {
    const dir = install()
    dirs.push(dir)
    const cache = join(dir, "dist", "owrt.cjs.version.v8cache")
    // Larger than the bundle, as a real cache is: both are read into one buffer.
    const garbage = Buffer.alloc(statSync(join(dir, "dist", "owrt.cjs")).size + 4096, 7)
    writeFileSync(cache, garbage)
    const result = await run(dir, ["--version"])
    expect(result.stderr).toBe("")
    expect(result.code).toBe(0)
    expect(result.stdout.trim()).toMatch(/^\S*\d+\.\d+\.\d+/)
    expect(readFileSync(cache).equals(garbage)).toBe(false)
    const again = await run(dir, ["--version"])
    expect(again.stdout).toBe(result.stdout)
  })

  it("says what to run when the bundle is missing or from an older build (exit 70)", async () => {
    const dir = install()
    dirs.push(dir)
    const bundle = join(dir, "dist", "owrt.cjs")
    writeFileSync(bundle, "module.exports = {}\n")
    const old = await run(dir, ["--version"])
    expect(old.code).toBe(70)
    expect(old.stderr).toContain("from an older build: run `npm run build`")
    rmSync(bundle)
    const missing = await run(dir, ["--version"])
    expect(missing.code).toBe(70)
    expect(missing.stderr).toContain("dist/owrt.cjs is missing: run `npm install`")
    expect(missing.stdout).toBe("")
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
      // Which run counts as long is set here, as a build's length and a noop's depend on the machine.
      const realize = (longMs: number) =>
        run(dir, ["realize", "ap"], {
          cwd: project.dir,
          env: {
            OWRT_UPSTREAM: mirror.url,
            OWRT_KEYRING: keyring,
            OWRT_CODE_CACHE_LONG_MS: String(longMs),
          },
        })
      const cache = join(dir, "dist", "owrt.realize.cjs.realize.v8cache")
      const mark = `${cache}.long`
      const built = await realize(0)
      expect(built.code, built.stderr).toBe(0)
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
