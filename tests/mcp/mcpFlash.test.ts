import { createHash } from "node:crypto"
import { cpSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { buildMirror, serveMirror } from "../fixtures/mirror/index.js"
import { cleanEnv, makeProject, owrtBin, repoRoot } from "../helpers/cli.js"
import { attachLoop, type LoopDevice, loopDevicesUnavailable, readDirect } from "../helpers/loopDevice.js"

interface FlashReport {
  readonly status: string
  readonly mode: string
  readonly image: {
    readonly bytes: number
    readonly artifact?: { readonly sha256: string; readonly type: string }
  }
  readonly writtenSha256?: string
}

const MiB = 1024 * 1024

const result = (call: CallToolResult): { isError: boolean; text: string } => {
  const [content] = call.content
  return { isError: call.isError === true, text: content?.type === "text" ? content.text : "" }
}

if (loopDevicesUnavailable) console.warn(`skipping MCP flash tests: ${loopDevicesUnavailable}`)

describe.skipIf(loopDevicesUnavailable !== undefined)("owrt mcp flash on a real loop device", () => {
  const project = makeProject({})
  let card: LoopDevice
  let client: Client
  let mirror: { url: string; close: () => Promise<void> }
  const call = (args: Record<string, unknown>) =>
    client.callTool({ name: "flash", arguments: args }) as Promise<CallToolResult>

  beforeAll(async () => {
    cpSync(join(repoRoot, "profiles"), join(project.dir, "profiles"), { recursive: true })
    card = attachLoop(join(project.dir, "card.img"), { sizeBytes: 32 * MiB })
    project.write(
      "graph.config.ts",
      `import { defineConfig } from "owrt/config"\nexport default defineConfig({ flash: { allowDevices: [${JSON.stringify(card.device)}] } })\n`,
    )
    const built = await buildMirror()
    mirror = await serveMirror(built.root)
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [owrtBin, "mcp", "--upstream", mirror.url, "--keyring", built.keyring],
      cwd: project.dir,
      env: cleanEnv(),
      stderr: "pipe",
    })
    client = new Client({ name: "owrt-flash-test", version: "1.0.0" })
    await client.connect(transport)
  })
  afterAll(async () => {
    await client?.close()
    await mirror?.close()
    card?.detach()
    project.cleanup()
  })

  it("plans without force and writes nothing; with force writes the profile's card image and reads it back", async () => {
    const planned = result(await call({ source: "home-ap", device: card.device, allowLoop: true }))
    expect(planned.isError, planned.text).toBe(false)
    expect(JSON.parse(planned.text)).toMatchObject({ mode: "dry-run", status: "planned" })
    expect(readDirect(card.device, 0, MiB).every((b) => b === 0)).toBe(true)

    const written = result(
      await call({ source: "home-ap", device: card.device, allowLoop: true, force: true }),
    )
    expect(written.isError, written.text).toBe(false)
    const report = JSON.parse(written.text) as FlashReport
    expect(report).toMatchObject({ mode: "write", status: "succeeded" })
    expect(report.image.artifact?.type).not.toBe("sysupgrade")
    const onCard = readDirect(card.device, 0, report.image.bytes)
    expect(createHash("sha256").update(onCard).digest("hex")).toBe(report.image.artifact?.sha256)
  })

  it("never copies a file the client names onto the card", async () => {
    const before = readDirect(card.device, 0, MiB)
    const secret = join(project.dir, "secret.img")
    writeFileSync(secret, Buffer.alloc(MiB, 0x42))
    const refused = result(await call({ source: secret, device: card.device, allowLoop: true, force: true }))
    expect(refused.isError).toBe(true)
    expect(readDirect(card.device, 0, MiB).equals(before)).toBe(true)
  })
})
