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
    project = await servedProject({ "profiles/ap.yaml": ap("tplink_archer-c7-v5") })
    const realized = await owrt(["realize", "ap", "--json"], { cwd: project.dir, env: project.env })
    expect(realized.code, realized.stderr).toBe(0)
    const [result] = json<Realized>(realized).results
    const image = result?.artifacts[0]
    if (!result || !image) throw new Error("nothing realized")
    artifact = { key: result.key, ...image }
    card = attachLoop(join(project.dir, "card.img"), { sizeBytes: 8 * MiB })
    stranger = attachLoop(join(project.dir, "stranger.img"), { sizeBytes: 8 * MiB })
    project.write(
      "graph.config.ts",
      `import { defineConfig } from "owrt/config"\nexport default defineConfig({ flash: { allowDevices: [${JSON.stringify(card.device)}] } })\n`,
    )
    server = await startServe(["--allow-flash", "--allow-loop"], { cwd: project.dir, env: project.env })
  })
  afterAll(async () => {
    await server?.stop()
    card?.detach()
    stranger?.detach()
    await project?.cleanup()
  })

  it("offers only eligible, allow-listed devices", async () => {
    const { devices } = (await (await fetch(`${server.url}/api/flash/devices`)).json()) as {
      devices: Array<{ path: string; isLoop: boolean }>
    }
    expect(devices.map((d) => d.path)).toEqual([card.device])
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
    "the flash page offers the card and writes only once the device path is typed",
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
      try {
        const page = await browser.newPage()
        await page.goto(`${server.url}/#/flash`)
        await page.getByRole("heading", { name: "Flash a card" }).waitFor()
        expect(await page.getByRole("link", { name: "Flash" }).isVisible()).toBe(true)
        const devices = await page.getByLabel("Device").locator("option").allTextContents()
        expect(devices).toHaveLength(1)
        expect(devices[0]).toContain(card.device)
        await page.getByRole("button", { name: "Plan" }).click()
        const write = page.getByRole("button", { name: "Write the card" })
        await write.waitFor()
        expect(await write.isDisabled()).toBe(true)
        await page.getByLabel(/Type the device path to confirm/).fill("/dev/sda")
        expect(await write.isDisabled()).toBe(true)
        await page.getByLabel(/Type the device path to confirm/).fill(card.device)
        expect(await write.isDisabled()).toBe(false)
        const screenshots = join(repoRoot, "test-results", "web")
        mkdirSync(screenshots, { recursive: true })
        await page.screenshot({ path: join(screenshots, "flash-confirm.png"), fullPage: true })
        await write.click()
        await page.getByText("Written and verified").waitFor({ timeout: 30_000 })
      } finally {
        await browser.close()
      }
    },
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
