import { createHash } from "node:crypto"
import { existsSync, mkdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { type Browser, chromium, type Page } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest"
import { repoRoot } from "../helpers/cli.js"
import { ap, type ServeProcess, servedProject, startServe } from "./serveProcess.js"

/*
 * The web UI in a real browser, page by page: every page of the UI is visited and what it shows is read
 * back as a person sees it (text, roles, labels). Screenshots go to test-results/web/ (git-ignored).
 * The browser runs in a time zone with a half-hour offset, so local times are told apart from UTC.
 */

const chromiumPath = "/usr/bin/chromium"
const screenshots = join(repoRoot, "test-results", "web")
const launchArgs = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-quic",
  "--no-first-run",
  "--disable-sync",
]
/** How the UI shows a time: ISO 8601 in the browser's zone, to the second (Asia/Kolkata: +05:30). */
const localTime = /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+05:30/
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
  /** Opens a page of the UI by its address and waits for its heading. */
  const visit = async (hash: string, heading: string | RegExp) => {
    await page.goto(`${server.url}/${hash}`)
    await page.getByRole("heading", { level: 1, name: heading }).waitFor()
  }
  /** The visible text of the page's main part, with nothing a bug would leave in it. */
  const mainText = async () => {
    // biome-ignore lint/performance/useDomNodeTextContent: the rendered text is what a person sees
    const text = await page.locator("main").innerText()
    expect(text).not.toMatch(/\[object |undefined|NaN|Invalid Date/)
    return text
  }

  beforeAll(async () => {
    mkdirSync(screenshots, { recursive: true })
    console.log(`screenshots: ${screenshots}`)
    project = await servedProject({
      "profiles/base.yaml": 'abstract: true\nrelease: "23.05.5"\ntags: [managed]\n',
      "profiles/living-room.yaml": ap(
        "tplink_archer-c7-v5",
        "extends: base\ndescription: Living-room access point\nfiles: [{path: /etc/banner, content: hello}]\n",
      ),
      "profiles/kitchen.yaml": ap("glinet_gl-ar300m16"),
    })
    server = await startServe([], { cwd: project.dir, env: { ...project.env, OWRT_FAKE_IB_DELAY: "1" } })
    browser = await chromium.launch({ executablePath: chromiumPath, args: launchArgs })
    page = await (
      await browser.newContext({
        acceptDownloads: true,
        viewport: { width: 1280, height: 900 },
        timezoneId: "Asia/Kolkata",
      })
    ).newPage()
  })
  afterAll(async () => {
    await browser?.close()
    await server?.stop()
    await project?.cleanup()
  })

  it("says so where there is nothing yet: no jobs, builds or artifacts; flashing off, or on with nothing to flash", async () => {
    await visit("#/jobs", "Jobs")
    expect(await mainText()).toContain("No jobs yet")
    await shot("jobs-empty")
    await visit("#/builds", "Builds")
    expect(await mainText()).toContain("No builds yet")
    await shot("builds-empty")
    await visit("#/artifacts", "Artifacts")
    expect(await mainText()).toContain("No artifacts yet")
    await shot("artifacts-empty")
    await visit("#/flash", "Flash")
    expect(await mainText()).toContain("Flashing is disabled on this server")
    expect(await page.getByRole("link", { name: "Flash" }).isVisible()).toBe(false)
    await shot("flash-disabled")

    // With flashing on, but no card image stored and no device allowed: the page says both.
    const flashing = await startServe(["--allow-flash"], { cwd: project.dir, env: project.env })
    try {
      // The operator is told, on stderr, that web clients may flash.
      await vi.waitFor(() =>
        expect(flashing.stderr()).toContain("flashing is enabled for web clients (flash.allowDevices only)"),
      )
      await page.goto(`${flashing.url}/#/flash`)
      await page.getByRole("heading", { level: 1, name: "Flash a card" }).waitFor()
      const text = await mainText()
      expect(text).toContain("No card image in the store")
      expect(text).toContain("No eligible device.")
      expect(await page.getByRole("button", { name: "Plan" }).isDisabled()).toBe(true)
      await shot("flash-empty")
    } finally {
      await flashing.stop()
    }
  })

  it("shows a profile resolved, its task graph and its revision history", async () => {
    // Looking records no revision: it has no number until something realizes it.
    await visit("#/profiles/living-room", "living-room (not recorded)")
    const text = await mainText()
    expect(text).toContain("Living-room access point")
    // The resolved profile: each fact a term and its value.
    expect(await page.getByRole("term").allInnerTexts()).toEqual([
      "Release",
      "Target",
      "Device",
      "Packages",
      "Extends",
      "Overlay",
      "Files",
      "First boot",
      "Disabled services",
      "Root file system",
      "Secrets",
      "Tags",
      "Flash",
    ])
    expect(await page.getByRole("definition").allInnerTexts()).toEqual([
      "23.05.5",
      "ath79/generic",
      "tplink_archer-c7-v5",
      "luci",
      "base",
      "—",
      "/etc/banner",
      "—",
      "—",
      "the builder's default size",
      "—",
      "managed",
      "auto image, verify full",
    ])
    const graph = page.getByRole("table", { name: "Task graph" })
    for (const kind of ["fetch-builder", "stage-overlay", "make-image", "collect-artifacts"]) {
      expect(await graph.getByRole("row").filter({ hasText: kind }).textContent()).toContain("to build")
    }
    expect(text).toContain("No revision recorded yet")
    await shot("profile")

    await visit("#/profiles/base", "base (not recorded)")
    await page.getByText("abstract (a parent only)", { exact: true }).waitFor()
    expect(await page.getByRole("definition").first().textContent()).toBe("23.05.5")
    expect(await page.getByRole("button", { name: /^Realize/ }).count()).toBe(0)
    await mainText()
    await shot("profile-abstract")
  })

  it("realizes a profile, shows the task graph and log live, and downloads a verifiable image", async () => {
    await visit("", "Profiles")
    const row = page.getByRole("row").filter({ hasText: "living-room" })
    await row.getByText("to build").waitFor()
    expect(await page.getByRole("button", { name: "Realize base" }).count()).toBe(0)
    expect(await page.getByRole("link", { name: "Flash" }).isVisible()).toBe(false)
    await mainText()
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
    await mainText()
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

  it("lists the jobs, the builds (asked by the web) with one build's page, and the artifacts", async () => {
    await page.getByRole("link", { name: "Jobs" }).click()
    await page.getByRole("heading", { level: 1, name: "Jobs" }).waitFor()
    const job = page.getByRole("row").filter({ hasText: "living-room@1" })
    expect(await job.textContent()).toContain("succeeded")
    expect(await job.textContent()).toMatch(localTime)
    await mainText()
    await shot("jobs")

    await page.getByRole("link", { name: "Builds" }).click()
    await page.getByRole("heading", { level: 1, name: "Builds" }).waitFor()
    const build = page.getByRole("row").filter({ hasText: "living-room@1" })
    await build.getByText("succeeded").waitFor()
    expect(await build.textContent()).toContain("web")
    expect(await build.textContent()).toMatch(localTime)
    await mainText()
    await shot("builds")

    await build.getByRole("link", { name: /^#\d+$/ }).click()
    await page.getByRole("heading", { level: 1, name: /^Build #\d+$/ }).waitFor()
    expect(await page.locator(".lede").textContent()).toMatch(localTime)
    const keys = page.getByRole("table", { name: "Node keys" })
    // Node names spelled as everywhere else (fetch-builder, not fetchBuilder), each with its key.
    const keyRows = (await keys.getByRole("row").allInnerTexts()).slice(1)
    expect(keyRows.map((r) => r.split("\t")[0])).toEqual([
      "fetch-builder",
      "stage-overlay",
      "make-image",
      "collect-artifacts",
    ])
    for (const row of keyRows) expect(row).toMatch(/\t[0-9a-f]{16}/)
    expect(await page.getByRole("table", { name: "Artifacts" }).textContent()).toMatch(/[0-9a-f]{64}/)
    // The log's tail, and the whole log behind its link.
    expect(
      ((await page.getByRole("log", { name: "Build log" }).textContent()) ?? "").split("\n").length,
    ).toBeGreaterThan(20)
    const wholeLog = await page.getByRole("link", { name: "(whole log)" }).getAttribute("href")
    expect(await (await page.request.get(new URL(wholeLog ?? "", server.url).href)).text()).toContain(
      "make image",
    )
    await mainText()
    await shot("build")

    await page.getByRole("link", { name: "Artifacts" }).click()
    await page.getByRole("heading", { level: 1, name: "Artifacts" }).waitFor()
    const rows = page.getByRole("row").filter({ hasText: "living-room@1" })
    expect(await rows.count()).toBeGreaterThan(0)
    expect(await rows.first().textContent()).toMatch(/[0-9a-f]{64}/)
    await mainText()
    await shot("artifacts")

    await page.getByRole("link", { name: "Profiles" }).click()
    await page.getByRole("row").filter({ hasText: "living-room" }).getByText("cached").waitFor()

    // The realize recorded the revision: the profile page has its number and its history.
    await visit("#/profiles/living-room", "living-room@1")
    const revision = page.getByRole("table", { name: "Revisions" }).getByRole("row").filter({ hasText: "#1" })
    expect(await revision.textContent()).toMatch(localTime)
    await revision.getByRole("button", { name: "Realize living-room@1" }).waitFor()
    await mainText()
    await shot("profile-realized")
  })

  it("shows a node found in the store as cached: the builder another job fetched", async () => {
    await visit("", "Profiles")
    await page.getByRole("button", { name: "Realize kitchen" }).click()
    await page.waitForURL(/#\/jobs\/[0-9a-f]+$/)
    await page.getByLabel("fetch-builder: cached").waitFor({ timeout: 60_000 })
    await page.getByLabel("collect-artifacts: done").waitFor({ timeout: 60_000 })
    expect(await page.getByLabel("fetch-builder: cached").textContent()).toContain("cached")
    await mainText()
    await shot("job-builder-cached")
  })

  it("lists a profile broken while the server runs with its located error, next to the good ones", async () => {
    project.write(
      "profiles/broken.yaml",
      "extends: base\ntarget: ath79/generic\ndevice: x\npacakges: [luci]\n",
    )
    await visit("", "Profiles")
    const broken = page.getByRole("row").filter({ hasText: "broken" })
    await broken.getByText("invalid").waitFor()
    expect(await broken.textContent()).toContain("profile_unknown_key")
    await broken.getByText("profiles/broken.yaml:4:1: pacakges: unknown key `pacakges`").waitFor()
    await page.getByRole("row").filter({ hasText: "living-room" }).getByRole("button").waitFor()
    await mainText()
    await shot("profiles-broken")
  })

  it("answers an address naming nothing with the error, not a blank page", async () => {
    await visit("#/profiles/nowhere", "Something went wrong")
    expect(await page.getByRole("alert").textContent()).toContain("profile_not_found")
    await mainText()
    await shot("error")
  })

  it("asks for the token on a server that needs one, then shows the page", async () => {
    const guarded = await startServe([], {
      cwd: project.dir,
      env: { ...project.env, OWRT_SERVE_TOKEN: "s3cret-token" },
    })
    try {
      await page.goto(`${guarded.url}/#/builds`)
      await page.getByRole("heading", { level: 1, name: "Access token" }).waitFor()
      await mainText()
      await shot("token")
      await page.getByLabel("Token", { exact: true }).fill("s3cret-token")
      await page.getByRole("button", { name: "Continue" }).click()
      await page.getByRole("heading", { level: 1, name: "Builds" }).waitFor()
      expect(await page.getByRole("row").filter({ hasText: "living-room@1" }).count()).toBeGreaterThan(0)
    } finally {
      await guarded.stop()
    }
  })
})
