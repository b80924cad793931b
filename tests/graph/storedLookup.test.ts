import { join } from "node:path"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { buildMirror, serveMirror } from "../fixtures/mirror/index.js"
import { type ErrorDocument, json, makeProject, owrt } from "../helpers/cli.js"
import { attachLoop, type LoopDevice, loopDevicesUnavailable } from "../helpers/loopDevice.js"

/*
 * Looking up what is stored needs no network: `store path`, the lookup in `audit` and `flash profile@rev`
 * of a realized profile answer from the store and the database, offline or with another upstream (here a
 * closed port) configured. `audit` of a profile never realized is `not_found` (4).
 */

const profile = (packages: string) =>
  `release: "23.05.5"\ntarget: ath79/generic\ndevice: tplink_archer-c7-v5\npackages: [${packages}]\n`

/** Nothing listens on port 9 (discard): every connection is refused at once. */
const deadUpstream = ["--upstream", "http://127.0.0.1:9"]

describe("looking up what is stored, without the upstream", () => {
  let mirror: { url: string; close: () => Promise<void> }
  let env: Record<string, string>
  const project = makeProject({
    "profiles/plain.yaml": profile("luci"),
    "profiles/never.yaml": profile("luci, tcpdump"),
  })
  const run = (...args: ReadonlyArray<string>) => owrt(args, { cwd: project.dir, env })
  const attached: Array<LoopDevice> = []
  let storePath = ""

  beforeAll(async () => {
    const built = await buildMirror()
    mirror = await serveMirror(built.root)
    env = { OWRT_UPSTREAM: mirror.url, OWRT_KEYRING: built.keyring }
    const realized = await run("realize", "plain", "--json")
    expect(realized.code, realized.stderr).toBe(0)
    storePath = json<{ results: ReadonlyArray<{ storePath: string }> }>(realized).results[0]?.storePath ?? ""
    expect(storePath).not.toBe("")
  })
  afterEach(() => {
    for (const loop of attached.splice(0)) loop.detach()
  })
  afterAll(async () => {
    await mirror.close()
    project.cleanup()
  })

  it.each([
    ["offline", ["--offline"]],
    ["with another upstream", deadUpstream],
  ])("store path answers %s", async (_, flags) => {
    for (const spec of ["plain", "plain@1"]) {
      const result = await run("store", "path", spec, ...flags, "--json")
      expect(result.code, result.stdout + result.stderr).toBe(0)
      expect(json<{ path: string; rev: number }>(result)).toMatchObject({ path: storePath, rev: 1 })
    }
  })

  it.each([
    ["offline", ["--offline"]],
    ["with another upstream", deadUpstream],
  ])("audit finds the stored output %s", async (_, flags) => {
    const result = await run("audit", "plain", ...flags, "--json")
    expect(result.code, result.stdout + result.stderr).toBe(0)
    expect(json<{ identical: boolean }>(result).identical).toBe(true)
  })

  it("audit of a profile never realized is not_found (4), asking no upstream", async () => {
    for (const flags of [[], deadUpstream]) {
      const result = await run("audit", "never", ...flags, "--json")
      expect(result.code, result.stdout + result.stderr).toBe(4)
      const { error } = json<ErrorDocument>(result)
      expect(error.code).toBe("not_found")
      expect(error.message).toContain("not realized")
    }
    const stored = await run("store", "path", "never", "--json")
    expect(stored.code).toBe(4)
  })

  it.skipIf(loopDevicesUnavailable !== undefined).each([
    ["offline", ["--offline"]],
    ["with another upstream", deadUpstream],
  ])("flash of a realized profile finds its image %s", async (_, flags) => {
    const card = attachLoop(join(project.dir, "card.img"), { sizeBytes: 16 * 1024 * 1024 })
    attached.push(card)
    const result = await run("flash", "plain@1", card.device, "--allow-loop", "--dry-run", ...flags, "--json")
    expect(result.code, result.stdout + result.stderr).toBe(0)
    const report = json<{ status: string; image: { path: string; profile: string } }>(result)
    expect(report.status).toBe("planned")
    expect(report.image.profile).toBe("plain")
    expect(report.image.path.startsWith(`${storePath}/images/`)).toBe(true)
  })
})
