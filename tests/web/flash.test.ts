import { createHash } from "node:crypto"
import { existsSync, mkdirSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { join } from "node:path"
import { chromium } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { json, owrt, repoRoot } from "../helpers/cli.js"
import { attachLoop, type LoopDevice, loopDevicesUnavailable, readDirect } from "../helpers/loopDevice.js"
import { ap, type ServeProcess, servedProject, startServe } from "./serveProcess.js"

const MiB = 1024 * 1024

const openDatabase = createRequire(import.meta.url)("better-sqlite3") as new (
  file: string,
  options: { readonly readonly: boolean; readonly fileMustExist: boolean },
) => { prepare(sql: string): { all(): Array<unknown> }; close(): void }

interface Realized {
  readonly results: ReadonlyArray<{
    key: string
    artifacts: ReadonlyArray<{ name: string; sha256: string; size: number }>
  }>
}

if (loopDevicesUnavailable) console.warn(`skipping web flash tests: ${loopDevicesUnavailable}`)

describe.skipIf(loopDevicesUnavailable !== undefined)("owrt serve --allow-flash on real loop devices", () => {
  let project: Awaited<ReturnType<typeof servedProject>>
  let server: ServeProcess
  let card: LoopDevice
  /** Big enough for the x86 profile's combined image (over 100 MiB): long enough a write to watch. */
  let bigCard: LoopDevice
  let stranger: LoopDevice
  let artifact: { key: string; name: string; sha256: string; size: number }
  // The store's records, read directly (fast enough to poll while a write runs).
  const flashRows = (): Array<{ id: number; status: string; mode: string }> => {
    const db = new openDatabase(join(project.dir, "store", "owrt.db"), {
      readonly: true,
      fileMustExist: true,
    })
    try {
      return db.prepare("SELECT id, status, mode FROM flashes ORDER BY id").all() as Array<{
        id: number
        status: string
        mode: string
      }>
    } finally {
      db.close()
    }
  }
  const post = (body: unknown) =>
    fetch(`${server.url}/api/flash`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    })

  beforeAll(async () => {
    project = await servedProject({
      "profiles/ap.yaml": ap("tplink_archer-c7-v5"),
      // Images for every purpose: combined and combined-efi (cards), rootfs and a kernel (not).
      "profiles/router.yaml": 'release: "24.10.2"\ntarget: x86/64\ndevice: generic\n',
    })
    const router = await owrt(["realize", "router"], { cwd: project.dir, env: project.env })
    expect(router.code, router.stderr).toBe(0)
    const realized = await owrt(["realize", "ap", "--json"], { cwd: project.dir, env: project.env })
    expect(realized.code, realized.stderr).toBe(0)
    const [result] = json<Realized>(realized).results
    const image = result?.artifacts[0]
    if (!result || !image) throw new Error("nothing realized")
    artifact = { key: result.key, ...image }
    card = attachLoop(join(project.dir, "card.img"), { sizeBytes: 8 * MiB })
    bigCard = attachLoop(join(project.dir, "big-card.img"), { sizeBytes: 256 * MiB })
    stranger = attachLoop(join(project.dir, "stranger.img"), { sizeBytes: 8 * MiB })
    project.write(
      "graph.config.ts",
      `import { defineConfig } from "owrt/config"\nexport default defineConfig({ flash: { allowDevices: ${JSON.stringify([card.device, bigCard.device])} } })\n`,
    )
    server = await startServe(["--allow-flash", "--allow-loop"], { cwd: project.dir, env: project.env })
  })
  afterAll(async () => {
    await server?.stop()
    card?.detach()
    bigCard?.detach()
    stranger?.detach()
    await project?.cleanup()
  })

  it("offers only eligible, allow-listed devices", async () => {
    const { devices } = (await (await fetch(`${server.url}/api/flash/devices`)).json()) as {
      devices: Array<{ path: string; isLoop: boolean }>
    }
    expect(devices.map((d) => d.path).sort()).toEqual([card.device, bigCard.device].sort())
  })

  it("plans without a confirmation, refuses a wrong one, writes and verifies with the device path typed", async () => {
    const source = `${artifact.key}/${artifact.name}`
    const planned = await post({ source, device: card.device })
    expect(planned.status).toBe(200)
    const plan = (await planned.json()) as { status: string; steps: Array<string> }
    expect(plan.status).toBe("planned")
    expect(plan.steps.join("\n")).toContain(card.device)
    expect(readDirect(card.device, 0, 4096).every((b) => b === 0)).toBe(true)

    const mistyped = await post({ source, device: card.device, confirm: "/dev/sda" })
    expect(mistyped.status).toBe(400)
    expect(readDirect(card.device, 0, 4096).every((b) => b === 0)).toBe(true)

    const written = await post({ source, device: card.device, confirm: card.device })
    const report = (await written.json()) as { status: string; verify: string }
    expect(written.status, JSON.stringify(report)).toBe(200)
    expect(report).toEqual(expect.objectContaining({ status: "succeeded", verify: "full" }))
    const onCard = readDirect(card.device, 0, artifact.size)
    expect(createHash("sha256").update(onCard).digest("hex")).toBe(artifact.sha256)

    // The history the server answers is `owrt flash list`'s, newest first: the write, then the plan.
    const history = (await (await fetch(`${server.url}/api/flashes`)).json()) as {
      flashes: Array<{ mode: string; status: string; requestedBy: string; device: { path: string } }>
    }
    expect(history.flashes.slice(0, 2)).toEqual([
      expect.objectContaining({ mode: "write", status: "succeeded", requestedBy: "api" }),
      expect.objectContaining({
        mode: "dry-run",
        status: "planned",
        device: expect.objectContaining({ path: card.device }),
      }),
    ])
    expect(history).toEqual(
      json(await owrt(["flash", "list", "--json"], { cwd: project.dir, env: project.env })),
    )
  })

  it("refuses a device that is not on the allow-list, even confirmed", async () => {
    const refused = await post({
      source: `${artifact.key}/${artifact.name}`,
      device: stranger.device,
      confirm: stranger.device,
    })
    expect(refused.status).toBe(409)
    expect(((await refused.json()) as { error: { code: string; exitCode: number } }).error).toEqual(
      expect.objectContaining({ code: "flash_device_not_allowed", exitCode: 8 }),
    )
    expect(readDirect(stranger.device, 0, 4096).every((b) => b === 0)).toBe(true)
  })

  it("never writes a file of the server's own, only store images and profiles", async () => {
    const secret = join(project.dir, "not-an-artifact.img")
    writeFileSync(secret, Buffer.alloc(64 * 1024, 0x5a))
    const before = readDirect(card.device, 0, 64 * 1024)
    const refused = await post({ source: secret, device: card.device, confirm: card.device })
    expect(refused.status).toBeGreaterThanOrEqual(400)
    expect(refused.status).toBeLessThan(500)
    expect(readDirect(card.device, 0, 64 * 1024).equals(before)).toBe(true)
  })

  it.skipIf(!existsSync("/usr/bin/chromium"))(
    "the flash page offers card images only, writes once the device path is typed, and shows the bytes as it writes",
    async () => {
      const browser = await chromium.launch({
        executablePath: "/usr/bin/chromium",
        args: [
          "--headless",
          "--no-sandbox",
          "--disable-gpu",
          "--disable-background-networking",
          "--no-first-run",
        ],
      })
      const screenshots = join(repoRoot, "test-results", "web")
      mkdirSync(screenshots, { recursive: true })
      try {
        const page = await browser.newPage()
        await page.goto(`${server.url}/#/flash`)
        await page.getByRole("heading", { name: "Flash a card" }).waitFor()
        expect(await page.getByRole("link", { name: "Flash" }).isVisible()).toBe(true)
        const devices = await page.getByLabel("Device").locator("option").allTextContents()
        expect(devices).toHaveLength(2)
        expect(devices.join("\n")).toContain(card.device)

        // Card images only: ap's factory image and router's combined ones; no sysupgrade, kernel or rootfs.
        const images = await page.getByLabel("Image").locator("option").allTextContents()
        expect(images).toHaveLength(5)
        expect(images.filter((i) => i.startsWith("ap@1") && i.includes("(factory, squashfs"))).toHaveLength(1)
        expect(images.filter((i) => i.startsWith("router@1") && /\(combined(-efi)?, /.test(i))).toHaveLength(
          4,
        )
        expect(images.join("\n")).not.toMatch(/sysupgrade|kernel|rootfs/)
        await page.screenshot({ path: join(screenshots, "flash.png"), fullPage: true })

        const factory = images.find((i) => i.startsWith("ap@1")) ?? ""
        await page.getByLabel("Image").selectOption({ label: factory })
        await page.getByLabel("Device").selectOption(card.device)
        await page.getByRole("button", { name: "Plan" }).click()
        const write = page.getByRole("button", { name: "Write the card" })
        await write.waitFor()
        expect(await write.isDisabled()).toBe(true)
        await page.getByLabel(/Type the device path to confirm/).fill("/dev/sda")
        expect(await write.isDisabled()).toBe(true)
        await page.getByLabel(/Type the device path to confirm/).fill(card.device)
        expect(await write.isDisabled()).toBe(false)
        await page.screenshot({ path: join(screenshots, "flash-confirm.png"), fullPage: true })
        await write.click()
        await page.getByText("Written and verified").waitFor({ timeout: 30_000 })

        // A write of over 100 MiB: the page shows how many bytes are written (and read back) as it goes.
        const combined = images.find((i) => i.startsWith("router@1")) ?? ""
        await page.getByLabel("Image").selectOption({ label: combined })
        await page.getByLabel("Device").selectOption(bigCard.device)
        await page.getByRole("button", { name: "Plan" }).click()
        await page.getByLabel(/Type the device path to confirm/).fill(bigCard.device)
        // Everything the progress shows while the write runs, as it is shown (each change of the page).
        // (A script of the page's own: the tests compile without the DOM's types.)
        await page.evaluate(`
          window.shown = []
          new MutationObserver(() => {
            const bar = document.querySelector("main progress")
            if (!bar) return
            const text = bar.nextElementSibling?.textContent ?? ""
            window.shown.push({ text, value: bar.hasAttribute("value") ? bar.value : 0, max: bar.max })
          }).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true })
        `)
        await page.getByRole("button", { name: "Write the card" }).click()
        await page.getByRole("progressbar", { name: "Card write progress" }).waitFor()
        await page.screenshot({ path: join(screenshots, "flash-writing.png"), fullPage: true })
        await page.getByText("Written and verified").waitFor({ timeout: 120_000 })
        const shown = (await page.evaluate("window.shown")) as Array<{
          text: string
          value: number
          max: number
        }>
        const bytesSoFar = new RegExp(
          `^(write|verify) ${bigCard.device}: [\\d.]+ [KM]B of 1[0-9]{2}\\.\\d MB \\(\\d+%\\)$`,
        )
        const during = shown.filter((s) => bytesSoFar.test(s.text))
        expect(during.length, JSON.stringify(shown.slice(0, 20))).toBeGreaterThan(0)
        // The bar moves with the words: bytes of the image's bytes.
        for (const s of during) expect(s.max).toBeGreaterThan(100 * MiB)
        expect(during.some((s) => s.value > 0 && s.value <= s.max)).toBe(true)
        await page.screenshot({ path: join(screenshots, "flash-written.png"), fullPage: true })
      } finally {
        await browser.close()
      }
    },
    240_000,
  )

  // Last: it stops the server.
  it("finishes a card write and its record when the server is stopped during it", async () => {
    const source = `${artifact.key}/${artifact.name}`
    const flashes = flashRows
    const before = Math.max(0, ...flashes().map((f) => f.id))
    // Zeroing the rest of the card makes the write long enough to stop the server in the middle of it.
    const answered = post({ source, device: card.device, confirm: card.device, wipe: true }).catch(
      () => undefined,
    )
    let running: { id: number; status: string } | undefined
    for (let i = 0; i < 400 && !running; i++) {
      running = flashes().find((f) => f.id > before && f.mode === "write")
      if (!running) await new Promise((resolve) => setTimeout(resolve, 10))
    }
    expect(running, "the write never started").toBeDefined()
    const exit = await server.stop("SIGTERM")
    await answered
    expect(exit).toBe(130)
    const record = flashes().find((f) => f.id === running?.id)
    // Not "running" nor "interrupted": the server waited for the write and recorded how it ended.
    expect(record?.status).toBe("succeeded")
    const onCard = readDirect(card.device, 0, artifact.size)
    expect(createHash("sha256").update(onCard).digest("hex")).toBe(artifact.sha256)
  })
})
