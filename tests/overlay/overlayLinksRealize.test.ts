import { execFileSync } from "node:child_process"
import { existsSync, lstatSync, readdirSync, readFileSync, symlinkSync } from "node:fs"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { buildMirror, serveMirror } from "../fixtures/mirror/index.js"
import { type ErrorDocument, json, makeProject, owrt } from "../helpers/cli.js"

/*
 * The Image Builder copies FILES= with `cp -L`: a link in an overlay is dereferenced on the build machine.
 * These drive the real CLI against the stand-in Image Builder (which copies the same way) and look inside
 * the image that comes out.
 */

const ap = (overlay: string) =>
  `release: "23.05.5"\ntarget: ath79/generic\ndevice: tplink_archer-c7-v5\npackages: [luci]\noverlay: ${overlay}\n`

const hostSecret = "host-only-secret-5d1c0d"

describe("overlay links and the Image Builder's cp -L", () => {
  let mirror: { url: string; close: () => Promise<void> }
  let keyring: string
  const project = makeProject({
    "profiles/leak.yaml": ap("files/leak"),
    "profiles/files/leak/etc/motd": "hello\n",
    "profiles/relative.yaml": ap("files/relative"),
    "profiles/files/relative/etc/motd": "hello from the overlay\n",
    "profiles/files/relative/etc/config/system": "config system\n",
    "host/shadow": `${hostSecret}\n`,
  })
  const run = (args: Array<string>) =>
    owrt(args, { cwd: project.dir, env: { OWRT_UPSTREAM: mirror.url, OWRT_KEYRING: keyring } })

  beforeAll(async () => {
    const built = await buildMirror()
    keyring = built.keyring
    mirror = await serveMirror(built.root)
    // An absolute link to a file of the build machine, as `ln -s /etc/shadow files/x/etc/leak` makes.
    symlinkSync(join(project.dir, "host/shadow"), join(project.dir, "profiles/files/leak/etc/leak"))
    symlinkSync("motd", join(project.dir, "profiles/files/relative/etc/motd.link"))
    symlinkSync("config", join(project.dir, "profiles/files/relative/etc/config.link"))
  })
  afterAll(async () => {
    await mirror?.close()
    project.cleanup()
  })

  it("refuses an absolute link before any work: realize and plan exit 3 with profile_path_escape", async () => {
    for (const command of [
      ["realize", "leak", "--json"],
      ["plan", "leak", "--json"],
    ]) {
      const result = await run(command)
      expect(result.code, result.stderr).toBe(3)
      const { error } = json<ErrorDocument>(result)
      expect(error.code).toBe("profile_path_escape")
      expect(error.message).toContain("etc/leak")
      expect(error.message).toContain("cp -L")
    }
    const store = join(project.dir, "store")
    const outputs = existsSync(store) ? readdirSync(store).filter((name) => /^[0-9a-f]{16}-/.test(name)) : []
    expect(outputs.filter((name) => name.includes("image"))).toEqual([])
    expect((await run(["profiles", "validate", "leak"])).code).toBe(3)
  })

  it("builds links inside the overlay into the image as copies of their targets, and nothing from the host", async () => {
    const result = await run(["realize", "relative", "--json"])
    expect(result.code, result.stderr).toBe(0)
    const realized = json<{ results: ReadonlyArray<{ storePath: string }> }>(result).results[0]
    const storePath = realized?.storePath ?? ""
    const manifest = JSON.parse(readFileSync(join(storePath, "owrt-manifest.json"), "utf8"))
    const image = manifest.images.find((i: { type: string }) => i.type === "sysupgrade").name
    const bytes = readFileSync(join(storePath, "images", image))
    expect(bytes.includes(Buffer.from(hostSecret))).toBe(false)
    const rootfs = join(project.dir, "rootfs")
    execFileSync("unsquashfs", [
      "-q",
      "-n",
      "-o",
      String(bytes.indexOf(Buffer.from("hsqs"))),
      "-d",
      rootfs,
      join(storePath, "images", image),
    ])
    expect(readFileSync(join(rootfs, "etc/motd.link"), "utf8")).toBe("hello from the overlay\n")
    expect(lstatSync(join(rootfs, "etc/motd.link")).isFile()).toBe(true)
    expect(readFileSync(join(rootfs, "etc/config.link/system"), "utf8")).toBe("config system\n")
  })
})
