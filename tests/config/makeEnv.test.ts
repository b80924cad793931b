import { existsSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { buildMirror, serveMirror } from "../fixtures/mirror/index.js"
import { makeProject, owrt } from "../helpers/cli.js"

/*
 * make runs in a clean environment: the caller's variables reach it only when the `makeEnv` setting names
 * them. The stand-in Image Builder's OWRT_FAKE_IB_COUNTER knob shows whether one got through.
 */
describe("makeEnv: the environment variables make sees", () => {
  let mirror: { url: string; close: () => Promise<void> }
  let keyring: string
  const profile = (device: string) =>
    `release: "23.05.5"\ntarget: ath79/generic\ndevice: ${device}\npackages: [luci]\n`
  const project = makeProject(
    { "profiles/a.yaml": profile("tplink_archer-c7-v5"), "profiles/b.yaml": profile("8dev_carambola2") },
    {
      config:
        'import { defineConfig } from "owrt/config"\nexport default defineConfig({ makeEnv: ["OWRT_FAKE_IB_COUNTER"] })\n',
    },
  )
  const counter = join(project.dir, "make-runs")
  const realize = async (profileId: string, env: Record<string, string | undefined>) => {
    const result = await owrt(["realize", profileId, "--json"], {
      cwd: project.dir,
      env: { OWRT_UPSTREAM: mirror.url, OWRT_KEYRING: keyring, OWRT_FAKE_IB_COUNTER: counter, ...env },
    })
    expect(result.code, result.stdout + result.stderr).toBe(0)
  }
  const runs = () => (existsSync(counter) ? readFileSync(counter, "utf8").trim().split("\n").length : 0)

  beforeAll(async () => {
    const built = await buildMirror()
    keyring = built.keyring
    mirror = await serveMirror(built.root)
  })
  afterAll(async () => {
    await mirror?.close()
    project.cleanup()
  })

  it("passes a variable graph.config.ts names, and OWRT_MAKE_ENV overrides the list", async () => {
    // The tests' default OWRT_MAKE_ENV (tests/helpers/cli.ts) is unset: the file's list applies.
    await realize("a", { OWRT_MAKE_ENV: undefined })
    expect(runs()).toBe(1)
    // A list without it: make never sees the variable, however it is set in owrt's environment.
    await realize("b", { OWRT_MAKE_ENV: "HTTP_PROXY" })
    expect(runs()).toBe(1)
  })
})
