import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { buildMirror, serveMirror } from "../fixtures/mirror/index.js"
import { json, makeProject, owrt } from "../helpers/cli.js"

/** `owrt realize a a a` builds, and records, each profile revision once however often it is named. */
describe("owrt realize with a profile named more than once", () => {
  let mirror: { url: string; close: () => Promise<void> }
  let env: Record<string, string>
  const project = makeProject({
    "profiles/lab.yaml": 'release: "23.05.5"\ntarget: x86/64\ndevice: generic\n',
  })

  beforeAll(async () => {
    const built = await buildMirror()
    mirror = await serveMirror(built.root)
    env = { OWRT_UPSTREAM: mirror.url, OWRT_KEYRING: built.keyring }
  })
  afterAll(async () => {
    await mirror?.close()
    project.cleanup()
  })

  it("merges specs that name the same revision: one result, one build record", async () => {
    const realized = await owrt(["realize", "lab", "lab", "lab@1", "lab", "--json"], {
      cwd: project.dir,
      env,
    })
    expect(realized.code, realized.stderr).toBe(0)
    const { results } = json<{ results: ReadonlyArray<{ profile: string; rev: number }> }>(realized)
    expect(results.map((r) => `${r.profile}@${r.rev}`)).toEqual(["lab@1"])
    const { builds } = json<{ builds: ReadonlyArray<{ profile: string }> }>(
      await owrt(["builds", "list", "--json"], { cwd: project.dir, env }),
    )
    expect(builds).toHaveLength(1)
  })

  it("still reports a spec that does not resolve, once", async () => {
    const failed = await owrt(["realize", "lab", "nope", "nope", "--keep-going", "--json"], {
      cwd: project.dir,
      env,
    })
    expect(failed.code).toBe(4)
    const document = json<{
      results: ReadonlyArray<{ profile: string }>
      failures: ReadonlyArray<{ profile: string; error: { code: string } }>
    }>(failed)
    expect(document.results.map((r) => r.profile)).toEqual(["lab"])
    expect(document.failures).toEqual([
      { profile: "nope", error: expect.objectContaining({ code: "profile_not_found" }) },
    ])
  })
})
