import { execFileSync } from "node:child_process"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { buildMirror, serveMirror } from "../fixtures/mirror/index.js"
import { json, makeProject, owrt } from "../helpers/cli.js"

interface Plan {
  readonly profiles: ReadonlyArray<{ readonly profile: string; readonly status: string }>
  readonly summary: { readonly profiles: number; readonly cached: number; readonly missing: number }
}

const git = (cwd: string, ...args: Array<string>) =>
  execFileSync("git", args, {
    cwd,
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: "t",
      GIT_AUTHOR_EMAIL: "t@x.invalid",
      GIT_COMMITTER_NAME: "t",
      GIT_COMMITTER_EMAIL: "t@x.invalid",
    },
  })

describe("owrt plan --since", () => {
  let mirror: { url: string; close: () => Promise<void> }
  let env: Record<string, string>
  const project = makeProject({
    "profiles/base.yaml": 'abstract: true\nrelease: "23.05.5"\ntarget: ath79/generic\npackages: [luci]\n',
    "profiles/a.yaml": "extends: base\ndevice: tplink_archer-c7-v5\noverlay: files/a\n",
    "profiles/b.yaml": "extends: base\ndevice: glinet_gl-ar300m16\n",
    "profiles/c.yaml": 'release: "23.05.5"\ntarget: x86/64\ndevice: generic\n',
    "profiles/files/a/etc/motd": "one\n",
  })
  const plan = async (...args: Array<string>) => {
    const result = await owrt(["plan", ...args, "--json"], { cwd: project.dir, env })
    expect(result.code, result.stderr).toBe(0)
    return json<Plan>(result)
  }

  beforeAll(async () => {
    const built = await buildMirror()
    mirror = await serveMirror(built.root)
    env = { OWRT_UPSTREAM: mirror.url, OWRT_KEYRING: built.keyring }
    git(project.dir, "init", "-q", "-b", "main")
    git(project.dir, "add", ".")
    git(project.dir, "commit", "-qm", "one")
  })
  afterAll(async () => {
    await mirror.close()
    project.cleanup()
  })

  it("selects nothing when nothing changed", async () => {
    expect((await plan("--since", "HEAD")).profiles).toEqual([])
  })

  it("selects the children of a changed parent", async () => {
    project.write(
      "profiles/base.yaml",
      'abstract: true\nrelease: "23.05.5"\ntarget: ath79/generic\npackages: [luci, luci-ssl]\n',
    )
    expect((await plan("--since", "HEAD")).profiles.map((p) => p.profile)).toEqual(["a", "b"])
    git(project.dir, "commit", "-qam", "two")
  })

  it("selects a profile whose overlay file changed, and a new profile", async () => {
    project.write("profiles/files/a/etc/motd", "two\n")
    project.write("profiles/d.yaml", "extends: base\ndevice: 8dev_carambola2\n")
    expect((await plan("--since", "HEAD")).profiles.map((p) => p.profile)).toEqual(["a", "d"])
    expect((await plan("--since", "HEAD~1")).profiles.map((p) => p.profile)).toEqual(["a", "b", "d"])
  })

  it("shows what is cached after a realize", async () => {
    const before = await plan("--all")
    expect(before.summary).toMatchObject({ profiles: 4, cached: 0, missing: 4 })
    const realized = await owrt(["realize", "b", "--json"], { cwd: project.dir, env })
    expect(realized.code, realized.stderr).toBe(0)
    const after = await plan("--all")
    expect(after.profiles.find((p) => p.profile === "b")?.status).toBe("cached")
    expect(after.summary.cached).toBe(1)
  })
})
