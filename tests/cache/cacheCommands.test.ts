import { existsSync, readFileSync, statSync } from "node:fs"
import { join } from "node:path"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { buildMirror, serveMirror } from "../fixtures/mirror/index.js"
import { cleanEnv, type ErrorDocument, json, makeProject, owrt, owrtBin } from "../helpers/cli.js"
import { startRegistry, type TestRegistry } from "../helpers/registry.js"

interface Planned {
  readonly profiles: ReadonlyArray<{
    readonly status: string
    readonly nodes: ReadonlyArray<{ kind: string; key: string | null; status: string }>
  }>
  readonly summary: { readonly remote: number; readonly cached: number }
}

const profile =
  'release: "23.05.5"\ntarget: ath79/generic\ndevice: tplink_archer-c7-v5\npackages: [luci]\noverlay: files/ap\n'

// Each case runs the real CLI several times (builds included): minutes on a loaded machine.
describe("owrt cache keygen|push|pull|ls|verify against a registry with htpasswd auth", () => {
  let registry: TestRegistry
  let mirror: { url: string; close: () => Promise<void> }
  let keyring: string
  let project: ReturnType<typeof makeProject>
  const password = "registry-s3cret"
  const counter = () => join(project.dir, "make-image-runs")
  const makeRuns = () =>
    existsSync(counter()) ? readFileSync(counter(), "utf8").trim().split("\n").filter(Boolean).length : 0
  const run = (store: string, args: Array<string>, extra: Record<string, string> = {}) =>
    owrt(args, {
      cwd: project.dir,
      env: {
        OWRT_UPSTREAM: mirror.url,
        OWRT_KEYRING: keyring,
        OWRT_FAKE_IB_COUNTER: counter(),
        OWRT_STORE: join(project.dir, store),
        REGISTRY_PASSWORD: password,
        ...extra,
      },
    })
  const ok = async (store: string, args: Array<string>, extra: Record<string, string> = {}) => {
    const result = await run(store, args, extra)
    expect(result.code, result.stdout + result.stderr).toBe(0)
    return result
  }

  beforeAll(async () => {
    registry = await startRegistry({ auth: { user: "ci", password } })
    const built = await buildMirror()
    keyring = built.keyring
    mirror = await serveMirror(built.root)
    project = makeProject({ "profiles/ap.yaml": profile, "profiles/files/ap/etc/motd": "pulled\n" })
  })
  afterAll(async () => {
    await registry.stop()
    await mirror.close()
    project.cleanup()
  })

  it("keygen, push, ls, plan remote → pull → plan cached, verify; no make on B", async () => {
    const made = json<{ secretKeyFile: string; publicKey: string }>(
      await ok("store-a", ["cache", "keygen", "ci-2", "--dir", "keys", "--json"]),
    )
    expect(statSync(made.secretKeyFile).mode & 0o777).toBe(0o600)
    expect(made.publicKey).toMatch(/^ci-2:/)
    // Keys are never overwritten.
    expect((await run("store-a", ["cache", "keygen", "ci-2", "--dir", "keys"])).code).toBe(2)
    // Making keys opens neither the store nor the database.
    expect(existsSync(join(project.dir, "store-a"))).toBe(false)
    project.write(
      "graph.config.ts",
      `import { defineConfig } from "owrt/config"
export default defineConfig({
  cache: {
    substituters: ["oci://${registry.host}/owrt/cmd"],
    signingKey: "file:keys/ci-2.sec",
    trustedKeys: ["${made.publicKey}"],
    credentials: { "${registry.host}": { username: "ci", password: "env:REGISTRY_PASSWORD" } },
  },
})
`,
    )
    const config = (await ok("store-a", ["config"])).stdout
    expect(config).toContain(`oci://${registry.host}/owrt/cmd`)
    expect(config).toContain("env:REGISTRY_PASSWORD")
    expect(config).not.toContain(password)

    // A builds (nothing in the cache yet, push is off), then pushes by command: here as an MCP tool
    // through the official client, which hears the upload's progress; then again with the CLI.
    await ok("store-a", ["realize", "ap", "--json"])
    expect(makeRuns()).toBe(1)
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [owrtBin, "mcp"],
      cwd: project.dir,
      env: cleanEnv({
        OWRT_UPSTREAM: mirror.url,
        OWRT_KEYRING: keyring,
        OWRT_STORE: join(project.dir, "store-a"),
        REGISTRY_PASSWORD: password,
      }),
    })
    const client = new Client({ name: "owrt-test", version: "1.0.0" })
    await client.connect(transport)
    try {
      const heard: Array<string> = []
      const pushed = (await client.callTool(
        { name: "cache_push", arguments: { profiles: ["ap"] } },
        undefined,
        {
          onprogress: (update) => heard.push(update.message ?? ""),
        },
      )) as CallToolResult
      expect(pushed.isError ?? false, JSON.stringify(pushed.content)).toBe(false)
      expect(pushed.structuredContent).toMatchObject({ totals: { pushed: 4, present: 0 } })
      expect(
        heard.some((m) => /^push [a-z-]+ [0-9a-f]+: [0-9.]+ [KMG]?i?B of /.test(m)),
        heard.join("\n"),
      ).toBe(true)
      // Each node's end is told once. The SDK's client may still drop the very last notification when
      // it reads it in the same chunk as the result (the server leaves a gap; a loaded machine can close it).
      const ends = heard.filter((m) => m.endsWith(": pushed"))
      expect(new Set(ends).size).toBe(ends.length)
      expect(ends.length).toBeGreaterThanOrEqual(3)
      expect(ends.length).toBeLessThanOrEqual(4)
      const again = json<{ totals: { pushed: number; present: number } }>(
        await ok("store-a", ["cache", "push", "ap", "--json"]),
      )
      expect(again.totals).toMatchObject({ pushed: 0, present: 4 })
      const listed = json<{
        registries: ReadonlyArray<{ entries: ReadonlyArray<{ signedBy: string; local: boolean }> }>
      }>(await ok("store-a", ["cache", "ls", "--json"]))
      expect(listed.registries[0]?.entries).toHaveLength(4)
      expect(listed.registries[0]?.entries.every((e) => e.signedBy === "ci-2" && e.local)).toBe(true)
      // The listing as an MCP tool: the CLI's answer.
      const viaMcp = (await client.callTool({ name: "cache_list", arguments: {} })) as CallToolResult
      expect(viaMcp.isError ?? false, JSON.stringify(viaMcp.content)).toBe(false)
      expect(viaMcp.structuredContent).toEqual(listed)
    } finally {
      await client.close()
    }

    const before = json<Planned>(await ok("store-b", ["plan", "ap", "--json"]))
    const known = before.profiles[0]?.nodes.filter((n) => n.key !== null) ?? []
    expect(known.length).toBeGreaterThan(0)
    expect(known.every((n) => n.status === "remote")).toBe(true)

    const pulled = json<{ pulled: ReadonlyArray<{ profile: string; cached: boolean }> }>(
      await ok("store-b", ["cache", "pull", "ap", "--json"]),
    )
    expect(pulled.pulled).toEqual([expect.objectContaining({ profile: "ap", cached: false })])
    expect(makeRuns()).toBe(1)
    const after = json<Planned>(await ok("store-b", ["plan", "ap", "--json"]))
    expect(after.profiles[0]?.nodes.every((n) => n.status === "cached")).toBe(true)

    const verified = json<{ checked: number; problems: ReadonlyArray<unknown> }>(
      await ok("store-b", ["cache", "verify", "--json"]),
    )
    expect(verified).toEqual({ checked: 4, problems: [] })
  }, 300_000)

  it("a wrong registry password is cache_registry_auth", async () => {
    const result = await run("store-b", ["cache", "ls", "--json"], { REGISTRY_PASSWORD: "not-the-password" })
    expect(result.code).toBe(5)
    expect(json<ErrorDocument>(result).error.code).toBe("cache_registry_auth")
  }, 300_000)
})
