import { existsSync } from "node:fs"
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { type Browser, chromium } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type ServeProcess, servedProject, startServe } from "./serveProcess.js"

/*
 * The ASU API from a web page of another origin, in Chromium: a small page of this project's own that
 * behaves as the Firmware Selector's ASU client does (POST with `Content-Type: application/json`, a poll
 * every few hundred milliseconds with that header on GET — each one preflighted —, the stage read from
 * `X-Imagebuilder-Status`, then the image fetched from `asu_url + "/store/" + bin_dir + "/" + name`). It
 * works only if the server answers CORS as a browser needs.
 */

const chromiumPath = "/usr/bin/chromium"
const launchArgs = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]

const clientPage = `<!doctype html>
<meta charset="utf-8">
<title>ASU client</title>
<pre id="result">running</pre>
<script type="module">
const asu = new URL(location.href).searchParams.get("asu")
const json = { "Content-Type": "application/json" }
const sleep = (ms) => new Promise((done) => setTimeout(done, ms))
const hex = (buffer) => [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, "0")).join("")
const show = (value) => (document.getElementById("result").textContent = JSON.stringify(value))
try {
  const request = {
    profile: "tplink_archer-c7-v5", target: "ath79/generic", version: "23.05.5", version_code: "",
    packages: ["luci"], defaults: "", diff_packages: true, client: "ofs/test",
    repositories: {}, repository_keys: [],
  }
  let answer = await fetch(asu + "/api/v1/build", { method: "POST", headers: json, body: JSON.stringify(request) })
  let body = await answer.json()
  const stages = [answer.headers.get("X-Imagebuilder-Status")]
  while (answer.status === 202) {
    await sleep(200)
    answer = await fetch(asu + "/api/v1/build/" + body.request_hash, { headers: json })
    body = await answer.json()
    stages.push(answer.headers.get("X-Imagebuilder-Status"))
  }
  if (answer.status !== 200) show({ failed: answer.status, detail: body.detail })
  else {
    const image = body.images.find((i) => i.type === "sysupgrade")
    const link = asu + "/store/" + body.bin_dir + "/" + image.name
    const download = await fetch(link)
    const digest = hex(await crypto.subtle.digest("SHA-256", await download.arrayBuffer()))
    show({ status: answer.status, stages, title: body.titles[0], link, digest, sha256: image.sha256,
      disposition: download.headers.get("Content-Disposition") })
  }
} catch (error) {
  show({ error: String(error) })
}
</script>`

describe.skipIf(!existsSync(chromiumPath))("the ASU API from a page of another origin, in Chromium", () => {
  let project: Awaited<ReturnType<typeof servedProject>>
  let open: ServeProcess
  let restricted: ServeProcess
  let site: Server
  let siteUrl: string
  let browser: Browser

  beforeAll(async () => {
    project = await servedProject({})
    open = await startServe([], { cwd: project.dir, env: project.env })
    restricted = await startServe(["--asu-cors-origin", "https://selector.example"], {
      cwd: project.dir,
      env: project.env,
    })
    site = createServer((_request, response) => {
      response.writeHead(200, { "content-type": "text/html; charset=utf-8" })
      response.end(clientPage)
    })
    await new Promise<void>((listening) => site.listen(0, "127.0.0.1", listening))
    siteUrl = `http://127.0.0.1:${(site.address() as AddressInfo).port}/`
    browser = await chromium.launch({ executablePath: chromiumPath, args: launchArgs })
  }, 300_000)

  afterAll(async () => {
    await browser?.close()
    await new Promise((closed) => site?.close(closed))
    await open?.stop()
    await restricted?.stop()
    await project?.cleanup()
  })

  const runClient = async (asu: string) => {
    const page = await browser.newPage()
    try {
      await page.goto(`${siteUrl}?asu=${encodeURIComponent(asu)}`)
      const result = page.locator("#result")
      await expect.poll(() => result.textContent(), { timeout: 120_000 }).not.toBe("running")
      return JSON.parse((await result.textContent()) ?? "{}") as Record<string, unknown>
    } finally {
      await page.close()
    }
  }

  it("builds, polls through the stages and downloads the image it links, across origins", async () => {
    expect(new URL(siteUrl).origin).not.toBe(new URL(open.url).origin)
    const result = await runClient(open.url)
    expect(result.error).toBeUndefined()
    expect(result.status).toBe(200)
    // The stage header is readable from the page (exposed), through to `done`.
    expect((result.stages as Array<string>).at(-1)).toBe("done")
    expect((result.stages as Array<string>).every((s) => typeof s === "string")).toBe(true)
    expect(result.title).toMatchObject({ vendor: "TP-Link", model: "Archer C7" })
    expect(result.digest).toBe(result.sha256)
    expect(String(result.disposition)).toMatch(/^attachment; filename=".+-sysupgrade\.bin"$/)
  }, 180_000)

  it("is refused by the browser when the server allows other origins only", async () => {
    const result = await runClient(restricted.url)
    expect(String(result.error)).toMatch(/TypeError: Failed to fetch/)
  }, 180_000)
})
