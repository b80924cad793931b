import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { makeProject, owrt } from "../helpers/cli.js"
import { rawRequest, type ServeProcess, startServe } from "./serveProcess.js"

/*
 * `owrt serve --downloads DIR`: a download tree and the Firmware Selector's pages under /downloads/, on the
 * same origin as the ASU API — files only, never outside DIR.
 */
describe("owrt serve --downloads: a download tree for a same-origin Firmware Selector", () => {
  const project = makeProject({})
  const outside = mkdtempSync(join(tmpdir(), "owrt-outside-"))
  const tree = join(project.dir, "www")
  let server: ServeProcess
  let bare: ServeProcess

  beforeAll(async () => {
    mkdirSync(join(tree, "releases", "23.05.5", "targets", "ath79", "generic"), { recursive: true })
    writeFileSync(join(tree, "index.html"), "<!doctype html><title>Firmware Selector</title>\n")
    writeFileSync(join(tree, "config.js"), 'var config = { image_url: "/downloads", asu_url: "" };\n')
    writeFileSync(join(tree, ".versions.json"), '{"stable_version":"23.05.5","versions_list":["23.05.5"]}\n')
    writeFileSync(
      join(tree, "releases", "23.05.5", "targets", "ath79", "generic", "profiles.json"),
      '{"profiles":{}}\n',
    )
    writeFileSync(join(outside, "secret.txt"), "not for the web\n")
    symlinkSync(join(outside, "secret.txt"), join(tree, "escape.txt"))
    symlinkSync(outside, join(tree, "escape-dir"))
    server = await startServe(["--downloads", "www"], { cwd: project.dir })
    bare = await startServe([], { cwd: project.dir })
  })
  afterAll(async () => {
    await server?.stop()
    await bare?.stop()
    project.cleanup()
    rmSync(outside, { recursive: true, force: true })
  })

  it("serves the selector's pages and the tree's files with their types, index.html for a directory", async () => {
    const index = await rawRequest(server.url, "/downloads/")
    expect(index.status).toBe(200)
    expect(index.headers["content-type"]).toBe("text/html; charset=utf-8")
    expect(index.headers["x-content-type-options"]).toBe("nosniff")
    expect(index.body.toString()).toContain("Firmware Selector")
    const config = await rawRequest(server.url, "/downloads/config.js")
    expect(config.headers["content-type"]).toBe("text/javascript; charset=utf-8")
    const versions = await rawRequest(server.url, "/downloads/.versions.json")
    expect(versions.status).toBe(200)
    expect(versions.headers["content-type"]).toBe("application/json")
    expect(JSON.parse(versions.body.toString())).toMatchObject({ stable_version: "23.05.5" })
    const profiles = await rawRequest(
      server.url,
      "/downloads/releases/23.05.5/targets/ath79/generic/profiles.json",
    )
    expect(profiles.status).toBe(200)
    expect(profiles.body.toString()).toBe('{"profiles":{}}\n')
  })

  it("answers ETag revalidation (304), a range (206) and a range past the end (416)", async () => {
    const first = await rawRequest(server.url, "/downloads/.versions.json")
    const etag = String(first.headers.etag)
    expect(etag).toMatch(/^W\/"/)
    expect(
      (await rawRequest(server.url, "/downloads/.versions.json", { headers: { "if-none-match": etag } }))
        .status,
    ).toBe(304)
    const ranged = await rawRequest(server.url, "/downloads/.versions.json", {
      headers: { range: "bytes=2-16" },
    })
    expect(ranged.status).toBe(206)
    expect(ranged.body.toString()).toBe(first.body.subarray(2, 17).toString())
    expect(ranged.headers["content-range"]).toBe(`bytes 2-16/${first.body.length}`)
    expect(
      (await rawRequest(server.url, "/downloads/.versions.json", { headers: { range: "bytes=9999-" } }))
        .status,
    ).toBe(416)
  })

  it("never serves anything outside the tree: .., encoded .., links out of it, missing files", async () => {
    for (const path of [
      "/downloads/../owrt.db",
      "/downloads/%2e%2e/owrt.db",
      "/downloads/releases/..%2f..%2fowrt.db",
      "/downloads/escape.txt",
      "/downloads/escape-dir/secret.txt",
      "/downloads/nope.json",
    ]) {
      const answer = await rawRequest(server.url, path)
      expect(answer.status, path).toBe(404)
      expect(answer.body.toString(), path).not.toContain("not for the web")
    }
  })

  it("without --downloads there is no tree, and a directory that does not exist is refused at start", async () => {
    expect((await rawRequest(bare.url, "/downloads/index.html")).status).toBe(404)
    const refused = await owrt(["serve", "--port", "0", "--downloads", "no-such-dir"], { cwd: project.dir })
    expect(refused.code).toBe(2)
    expect(refused.stderr).toContain("--downloads no-such-dir")
  })
})
