import { createHash } from "node:crypto"
import { existsSync, mkdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { type Browser, chromium, type Page } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { repoRoot } from "../helpers/cli.js"
import { ap, type ServeProcess, servedProject, startServe } from "./serveProcess.js"

const chromiumPath = "/usr/bin/chromium"
const screenshots = join(repoRoot, "test-results", "web")
if (!existsSync(chromiumPath)) {
  console.warn(
    `skipping the web UI browser test: ${chromiumPath} is absent (scripts/setup.sh installs chromium)`,
  )
}

describe.skipIf(!existsSync(chromiumPath))("owrt serve: the web UI in a real browser", () => {
  let project: Awaited<ReturnType<typeof servedProject>>
  let server: ServeProcess
  let browser: Browser
  let page: Page
  const shot = (name: string) => page.screenshot({ path: join(screenshots, `${name}.png`), fullPage: true })

  beforeAll(async () => {
    mkdirSync(screenshots, { recursive: true })
    console.log(`screenshots: ${screenshots}`)
    project = await servedProject({
      "profiles/base.yaml": 'abstract: true\nrelease: "23.05.5"\ntags: [managed]\n',
      "profiles/living-room.yaml": ap(
        "tplink_archer-c7-v5",
        "extends: base\ndescription: Living-room access point\nfiles: [{path: /etc/banner, content: hello}]\n",
      ),
    })
    server = await startServe([], { cwd: project.dir, env: { ...project.env, OWRT_FAKE_IB_DELAY: "1" } })
    browser = await chromium.launch({
      executablePath: chromiumPath,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-quic",
        "--no-first-run",
        "--disable-sync",
      ],
    })
    page = await (
      await browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 900 } })
    ).newPage()
  })
  afterAll(async () => {
    await browser?.close()
    await server?.stop()
    await project?.cleanup()
  })

  it("realizes a profile, shows the task graph and log live, and downloads a verifiable image", async () => {
    await page.goto(server.url)
    await page.getByRole("heading", { name: "Profiles" }).waitFor()
    const row = page.getByRole("row").filter({ hasText: "living-room" })
    await row.getByText("to build").waitFor()
    expect(await page.getByRole("button", { name: "Realize base" }).count()).toBe(0)
    expect(await page.getByRole("link", { name: "Flash" }).isVisible()).toBe(false)
    await shot("profiles")

    await page.getByRole("button", { name: "Realize living-room" }).click()
    await page.waitForURL(/#\/jobs\/[0-9a-f]+$/)
    const graph = page.getByRole("list", { name: "Task graph" })
    await graph.waitFor()
    await page.getByLabel("make-image: running").waitFor()
    await shot("job-running")
    for (const kind of ["fetch-builder", "stage-overlay", "make-image", "collect-artifacts"]) {
      await page.getByLabel(`${kind}: done`).waitFor({ timeout: 60_000 })
    }
    const log = page.getByRole("log", { name: "Build log" })
    expect(await log.textContent()).toContain("make image")
    await page.getByRole("heading", { name: "Artifacts" }).waitFor()
    await shot("job-done")

    const manifestHref = await page.getByRole("link", { name: "owrt-manifest.json" }).getAttribute("href")
    const manifest = (await (
      await page.request.get(new URL(manifestHref ?? "", server.url).href)
    ).json()) as {
      images: Array<{ name: string; sha256: string; type: string }>
    }
    const image = manifest.images.find((i) => i.type === "sysupgrade") ?? manifest.images[0]
    if (!image) throw new Error("the manifest lists no image")
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.getByRole("link", { name: `Download ${image.name}` }).click(),
    ])
    expect(download.suggestedFilename()).toBe(image.name)
    const saved = await download.path()
    expect(createHash("sha256").update(readFileSync(saved)).digest("hex")).toBe(image.sha256)

    await page.emulateMedia({ colorScheme: "dark" })
    await shot("job-done-dark")
    await page.emulateMedia({ colorScheme: "light" })
  })

  it("lists builds (asked by the web) and artifacts with their checksums", async () => {
    await page.getByRole("link", { name: "Builds" }).click()
    await page.getByRole("heading", { name: "Builds" }).waitFor()
    const build = page.getByRole("row").filter({ hasText: "living-room@1" })
    await build.getByText("succeeded").waitFor()
    expect(await build.textContent()).toContain("web")
    await shot("builds")

    await page.getByRole("link", { name: "Artifacts" }).click()
    await page.getByRole("heading", { name: "Artifacts" }).waitFor()
    const rows = page.getByRole("row").filter({ hasText: "living-room@1" })
    expect(await rows.count()).toBeGreaterThan(0)
    expect(await rows.first().textContent()).toMatch(/[0-9a-f]{64}/)
    await shot("artifacts")

    await page.getByRole("link", { name: "Profiles" }).click()
    await page.getByRole("row").filter({ hasText: "living-room" }).getByText("cached").waitFor()
  })

  it("shows readable content on every page: no page renders an object where text belongs", async () => {
    const jobs = (await (await page.request.get(`${server.url}/api/jobs`)).json()) as {
      jobs: Array<{ id: string }>
    }
    const builds = (await (await page.request.get(`${server.url}/api/builds`)).json()) as {
      builds: Array<{ id: number }>
    }
    const pages: ReadonlyArray<{ hash: string; name: string; expect: ReadonlyArray<string | RegExp> }> = [
      { hash: "#/profiles", name: "page-profiles", expect: ["Profiles", "living-room"] },
      {
        hash: "#/profiles/living-room",
        name: "page-profile",
        expect: [
          "Resolved profile",
          "Release",
          "23.05.5",
          "Device",
          "tplink_archer-c7-v5",
          "Extends",
          "base",
        ],
      },
      { hash: "#/jobs", name: "page-jobs", expect: ["Jobs", jobs.jobs[0]?.id ?? "no job"] },
      { hash: `#/jobs/${jobs.jobs[0]?.id}`, name: "page-job", expect: ["make-image", "Artifacts"] },
      { hash: "#/builds", name: "page-builds", expect: ["Builds", "living-room@1", "succeeded"] },
      {
        hash: `#/builds/${builds.builds[0]?.id}`,
        name: "page-build",
        expect: [/Build #\d+/, "living-room@1"],
      },
      { hash: "#/artifacts", name: "page-artifacts", expect: ["Artifacts", "living-room@1", "sysupgrade"] },
    ]
    let text = ""
    for (const visited of pages) {
      await page.goto(`${server.url}/${visited.hash}`)
      // Visible text, as a person reads it (innerText, not the DOM's textContent).
      // biome-ignore lint/performance/useDomNodeTextContent: what is shown is what is asserted
      const shown = async () => (await page.locator("main").innerText()).trim()
      const complete = async () => {
        text = await shown()
        return visited.expect.every((e) => (typeof e === "string" ? text.includes(e) : e.test(text)))
      }
      await expect.poll(complete, { timeout: 15_000 }).toBe(true)
      for (const expected of visited.expect) expect(text, visited.hash).toMatch(expected)
      expect(text, visited.hash).not.toMatch(/\[object |undefined|NaN/)
      await shot(visited.name)
    }
  })

  it("lists a profile broken while the server runs with its located error, next to the good ones", async () => {
    project.write(
      "profiles/broken.yaml",
      "extends: base\ntarget: ath79/generic\ndevice: x\npacakges: [luci]\n",
    )
    await page.goto(server.url)
    await page.getByRole("heading", { name: "Profiles" }).waitFor()
    const broken = page.getByRole("row").filter({ hasText: "broken" })
    await broken.getByText("invalid").waitFor()
    expect(await broken.textContent()).toContain("profile_unknown_key")
    await broken.getByText("profiles/broken.yaml:4:1: pacakges: unknown key `pacakges`").waitFor()
    await page.getByRole("row").filter({ hasText: "living-room" }).getByRole("button").waitFor()
    await shot("profiles-broken")
  })
})
