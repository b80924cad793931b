import { execFileSync, spawnSync } from "node:child_process"
import {
  appendFileSync,
  chmodSync,
  existsSync,
  lstatSync,
  readdirSync,
  readFileSync,
  statSync,
} from "node:fs"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { buildMirror, serveMirror } from "../fixtures/mirror/index.js"
import { extractSquashfs } from "../helpers/artifacts.js"
import { type ErrorDocument, json, makeProject, owrt } from "../helpers/cli.js"

interface Realized {
  readonly results: ReadonlyArray<{
    readonly key: string
    readonly cacheHit: boolean
    readonly storePath: string
    readonly artifacts: ReadonlyArray<{ name: string; type: string; path: string }>
  }>
}

const profile = [
  'release: "23.05.5"',
  "target: ath79/generic",
  "device: tplink_archer-c7-v5",
  "packages: [luci]",
  "overlay: files",
  "files: [{path: /etc/owner-only, mode: '0600', content: hush}]",
  "",
].join("\n")

/** Every entry of a tree with its permission bits, the tree's own directory as "". */
const modes = (root: string): Array<{ path: string; kind: string; mode: number }> => {
  const out = [{ path: "", kind: "dir", mode: statSync(root).mode & 0o7777 }]
  const visit = (relative: string) => {
    for (const name of readdirSync(join(root, relative)).sort()) {
      const path = relative === "" ? name : `${relative}/${name}`
      const stat = lstatSync(join(root, path))
      if (stat.isSymbolicLink()) continue
      out.push({ path, kind: stat.isDirectory() ? "dir" : "file", mode: stat.mode & 0o7777 })
      if (stat.isDirectory()) visit(path)
    }
  }
  visit("")
  return out
}

/** Store paths: `<16 hex digits>-<name>` directories. */
const storePaths = (store: string) =>
  readdirSync(store)
    .filter((name) => /^[0-9a-f]{16}-/.test(name))
    .map((name) => join(store, name))

/** What an older owrt left: directories 0755, files 0644 (0755 when executable). */
const makeWritableAsBefore = (root: string) => {
  for (const entry of modes(root).reverse()) {
    chmodSync(join(root, entry.path), entry.kind === "dir" || entry.mode & 0o111 ? 0o755 : 0o644)
  }
}

const nobody = 65534
/** Above the kernel's largest pid: a process that cannot be alive. */
const deadPid = 4_194_305
const canDropPrivileges =
  process.getuid?.() === 0 && spawnSync("setpriv", ["--version"], { stdio: "ignore" }).status === 0

/** A shell command run as `nobody` (who owns the project in the second suite). */
const asNobody = (script: string, ...args: Array<string>) =>
  spawnSync(
    "setpriv",
    [`--reuid=${nobody}`, `--regid=${nobody}`, "--clear-groups", "--", "sh", "-c", script, "sh", ...args],
    { encoding: "utf8" },
  )

describe("published store paths are read-only", () => {
  let mirror: { url: string; close: () => Promise<void> }
  let keyring: string
  const project = makeProject({
    "profiles/plain.yaml": profile,
    "profiles/files/etc/motd": "hello\n",
    "profiles/files/usr/bin/hello": "#!/bin/sh\necho hello\n",
  })
  chmodSync(join(project.dir, "profiles/files/usr/bin/hello"), 0o755)
  const store = join(project.dir, "store")
  const counter = join(project.dir, "make-runs")
  const run = (args: Array<string>) =>
    owrt(args, {
      cwd: project.dir,
      env: { OWRT_UPSTREAM: mirror.url, OWRT_KEYRING: keyring, OWRT_FAKE_IB_COUNTER: counter },
    })
  const realize = async () => {
    const result = await run(["realize", "plain", "--json"])
    expect(result.code, result.stdout + result.stderr).toBe(0)
    return json<Realized>(result).results[0] as Realized["results"][number]
  }
  const makeRuns = () => (existsSync(counter) ? readFileSync(counter, "utf8").split("\n").length : 0)

  beforeAll(async () => {
    const built = await buildMirror()
    keyring = built.keyring
    mirror = await serveMirror(built.root)
  })
  afterAll(async () => {
    await mirror?.close()
    project.cleanup()
  })

  it("files 0444 (0555 executable) and directories 0555 in every store path, as Nix does", async () => {
    const built = await realize()
    const paths = storePaths(store)
    // builder, staged overlay, make-image, collect-artifacts
    expect(paths.length).toBe(4)
    for (const path of paths) {
      for (const entry of modes(path)) {
        const allowed = entry.kind === "dir" ? [0o555] : [0o444, 0o555]
        expect(allowed, `${path}/${entry.path} is ${entry.mode.toString(8)}`).toContain(entry.mode)
      }
    }
    // The images (hard links shared by make-image and collect-artifacts) are read-only under both names.
    for (const artifact of built.artifacts) expect(statSync(artifact.path).mode & 0o777).toBe(0o444)
  })

  it("the image still holds each overlay file with the mode it was staged with", async () => {
    const built = await realize()
    const image = built.artifacts.find((a) => a.type === "sysupgrade")?.path as string
    const rootfs = extractSquashfs(image, project.dir)
    expect(statSync(join(rootfs, "etc/owner-only")).mode & 0o777).toBe(0o600)
    expect(statSync(join(rootfs, "etc/motd")).mode & 0o777).toBe(0o644)
    expect(statSync(join(rootfs, "usr/bin/hello")).mode & 0o777).toBe(0o755)
  })

  it("audit finds a rebuild identical to the read-only stored output", async () => {
    const audit = await run(["audit", "plain", "--json"])
    expect(audit.code, audit.stdout + audit.stderr).toBe(0)
    expect(json<{ identical: boolean }>(audit).identical).toBe(true)
  })

  it("store verify finds nothing changed, and still catches a changed file", async () => {
    const verify = await run(["store", "verify", "--json"])
    expect(verify.code, verify.stdout).toBe(0)
    const built = await realize()
    const image = built.artifacts[0]?.path as string
    appendFileSync(image, "bit rot") // root ignores the permission bits
    const drifted = await run(["store", "verify", "--json"])
    expect(drifted.code).toBe(6)
    expect(json<ErrorDocument>(drifted).error.message).toContain(built.artifacts[0]?.name)
    const rebuilt = await realize()
    expect(rebuilt.cacheHit).toBe(false)
    expect(statSync(rebuilt.artifacts[0]?.path as string).mode & 0o777).toBe(0o444)
    // The replaced paths are garbage that gc removes, read-only directories and all.
    const gc = await run(["store", "gc", "--json"])
    expect(gc.code, gc.stdout + gc.stderr).toBe(0)
    expect((await run(["store", "verify", "--json"])).code).toBe(0)
  })

  it("a path an older owrt left writable verifies clean and is made read-only when next used", async () => {
    const built = await realize()
    makeWritableAsBefore(built.storePath)
    expect(statSync(built.artifacts[0]?.path as string).mode & 0o777).toBe(0o644)
    expect((await run(["store", "verify", "--json"])).code).toBe(0)
    const runs = makeRuns()
    const again = await realize()
    expect(again.cacheHit).toBe(true)
    expect(makeRuns()).toBe(runs)
    expect(modes(built.storePath).every((e) => e.mode === 0o555 || e.mode === 0o444)).toBe(true)
    expect((await run(["store", "verify", "--json"])).code).toBe(0)
  })
})

/*
 * Root ignores permission bits, and the tests run as root: this suite hands the project to `nobody` and runs
 * owrt as `nobody`, to show that a write to a stored image is refused even to the store's owner, and that
 * verify, gc and builders prune still work without privileges (gc and prune empty read-only directories).
 */
describe.skipIf(!canDropPrivileges)("read-only store paths for an unprivileged user", () => {
  let mirror: { url: string; close: () => Promise<void> }
  let keyring: string
  const project = makeProject({ "profiles/plain.yaml": profile.replace("overlay: files\n", "") })
  const store = join(project.dir, "store")
  const run = (args: Array<string>, user: "root" | "nobody" = "nobody") =>
    owrt(args, {
      cwd: project.dir,
      ...(user === "nobody" ? { asUser: nobody } : {}),
      env: { OWRT_UPSTREAM: mirror.url, OWRT_KEYRING: keyring, HOME: project.dir },
    })
  const realize = async (user: "root" | "nobody" = "nobody", ...extra: Array<string>) => {
    const result = await run(["realize", "plain", "--json", ...extra], user)
    expect(result.code, result.stdout + result.stderr).toBe(0)
    return json<Realized>(result).results[0] as Realized["results"][number]
  }
  let built: Realized["results"][number]

  beforeAll(async () => {
    const fixture = await buildMirror()
    keyring = fixture.keyring
    mirror = await serveMirror(fixture.root)
    // Built as root (see the last test for a build by nobody), then handed over.
    built = await realize("root")
    execFileSync("chown", ["-R", `${nobody}:${nobody}`, project.dir])
  })
  afterAll(async () => {
    await mirror?.close()
    project.cleanup()
  })

  it("refuses a write to a stored image, even by the store's owner", async () => {
    expect(statSync(built.storePath).uid).toBe(nobody)
    for (const artifact of built.artifacts) {
      const write = asNobody('printf x >> "$1"', artifact.path)
      expect(write.status).not.toBe(0)
      expect(write.stderr).toMatch(/Permission denied/)
    }
    // Nor can a file be added to, or removed from, a stored directory.
    expect(asNobody('touch "$1/extra"', built.storePath).status).not.toBe(0)
    expect(asNobody('rm -f "$1"', built.artifacts[0]?.path as string).status).not.toBe(0)
    const verify = await run(["store", "verify", "--json"])
    expect(verify.code, verify.stdout + verify.stderr).toBe(0)
    // A cache hit as nobody.
    expect((await realize()).cacheHit).toBe(true)
  })

  it("gc and builders prune remove read-only trees", async () => {
    // What a process killed while publishing leaves: its work directory, holding a read-only output.
    const leftover = join(store, ".work", `${deadPid}.0.test.make-image-0123456789abcdef`)
    execFileSync("mkdir", ["-p", leftover])
    execFileSync("cp", ["-a", built.storePath, join(leftover, "out")])
    execFileSync("chmod", ["-R", "a-w", join(leftover, "out")])
    execFileSync("chown", ["-R", `${nobody}:${nobody}`, leftover])
    const gc = await run(["store", "gc", "--json"])
    expect(gc.code, gc.stdout + gc.stderr).toBe(0)
    expect(json<{ removed: Array<string> }>(gc).removed).toEqual([leftover])
    expect(existsSync(leftover)).toBe(false)
    const prune = await run(["builders", "prune", "--json"])
    expect(prune.code, prune.stdout + prune.stderr).toBe(0)
    expect(storePaths(store).filter((p) => p.endsWith("Linux-x86_64"))).toEqual([])
  })

  // make needs a writable /dev/null, which some sandboxes lack for unprivileged users.
  it.skipIf(!lstatSync("/dev/null").isCharacterDevice())(
    "builds, and rebuilds over its own read-only paths, as nobody",
    async () => {
      const first = await realize()
      const rebuilt = await realize("nobody", "--rebuild")
      expect(rebuilt.cacheHit).toBe(false)
      expect(rebuilt.storePath).toBe(first.storePath)
      expect(statSync(rebuilt.artifacts[0]?.path as string).mode & 0o777).toBe(0o444)
      expect(readdirSync(join(store, ".work"))).toEqual([])
    },
  )
})
