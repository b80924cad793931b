import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { buildMirror, serveMirror } from "../fixtures/mirror/index.js"
import { json, makeProject, owrt } from "../helpers/cli.js"

/*
 * Looking up what a profile can name before writing it: the device profiles (with titles) and the packages
 * of a release and target, from the Image Builder itself.
 */

describe("owrt builders devices|packages", () => {
  let mirror: { url: string; close: () => Promise<void> }
  let keyring: string
  const project = makeProject({})
  const run = (args: Array<string>) =>
    owrt(args, { cwd: project.dir, env: { OWRT_UPSTREAM: mirror.url, OWRT_KEYRING: keyring } })

  beforeAll(async () => {
    const built = await buildMirror()
    keyring = built.keyring
    mirror = await serveMirror(built.root)
  })
  afterAll(async () => {
    await mirror.close()
    project.cleanup()
  })

  it("lists the device profiles of a builder with their titles", async () => {
    const result = await run(["builders", "devices", "23.05.5", "ath79/generic", "--json"])
    expect(result.code, result.stderr).toBe(0)
    const body = json<{
      release: string
      target: string
      devices: ReadonlyArray<{ id: string; title: string | null; supportedDevices: ReadonlyArray<string> }>
    }>(result)
    expect(body.release).toBe("23.05.5")
    expect(body.devices.map((d) => d.id)).toEqual([
      "8dev_carambola2",
      "glinet_gl-ar300m16",
      "hak5_lan-turtle",
      "tplink_archer-c7-v5",
      "ubnt_bullet-m-xw",
    ])
    expect(body.devices.find((d) => d.id === "tplink_archer-c7-v5")).toMatchObject({
      title: "TP-Link Archer C7 v5",
      supportedDevices: ["tplink,archer-c7-v5", "archer-c7-v5"],
    })
    const human = await run(["builders", "devices", "23.05.5", "ath79/generic"])
    expect(human.stdout).toMatch(/^DEVICE\s+TITLE\s+ALSO ACCEPTED$/m)
    expect(human.stdout).toMatch(
      /^tplink_archer-c7-v5\s+TP-Link Archer C7 v5\s+tplink,archer-c7-v5 archer-c7-v5$/m,
    )
  })

  it("lists and searches the packages of a builder, opkg and apk alike", async () => {
    for (const release of ["23.05.5", "snapshot"]) {
      const result = await run([
        "builders",
        "packages",
        release,
        "ath79/generic",
        "--search",
        "DNSMASQ",
        "--json",
      ])
      expect(result.code, result.stderr).toBe(0)
      const body = json<{
        packages: ReadonlyArray<{ name: string; version: string; description: string | null }>
        total: number
      }>(result)
      expect(body.packages.map((p) => p.name)).toEqual(["dnsmasq", "dnsmasq-full"])
      expect(body.packages[0]?.description).toBe("DNS and DHCP server")
      expect(body.total).toBeGreaterThan(100)
    }
    const none = await run(["builders", "packages", "23.05.5", "ath79/generic", "--search", "no-such-thing"])
    expect(none.stdout).toContain('no package of 23.05.5 ath79/generic matches "no-such-thing"')
  })
})
