import { spawn } from "node:child_process"
import { cpSync, existsSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { type CallToolResult, CallToolResultSchema, type Progress } from "@modelcontextprotocol/sdk/types.js"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { buildMirror, serveMirror } from "../fixtures/mirror/index.js"
import { expectArtifactsOnDisk } from "../helpers/artifacts.js"
import { cleanEnv, json, makeProject, owrt, owrtBin, repoRoot } from "../helpers/cli.js"

interface Artifact {
  readonly name: string
  readonly type: string
  readonly sha256: string
  readonly size: number
  readonly path: string
}
interface Realized {
  readonly profile: string
  readonly rev: number
  readonly key: string
  readonly cacheHit: boolean
  readonly storePath: string
  readonly buildId: number
  readonly artifacts: ReadonlyArray<Artifact>
}
interface ToolError {
  readonly error: { readonly code: string; readonly message: string; readonly exitCode: number }
}

const expectedTools = [
  "list_profiles",
  "get_profile",
  "profile_history",
  "plan",
  "realize",
  "realize_batch",
  "list_builds",
  "get_build",
  "list_artifacts",
  "audit",
  "diff",
  "list_builders",
  "builder_devices",
  "builder_packages",
  "prune_builders",
  "list_store",
  "store_path",
  "store_verify",
  "collect_garbage",
  "cache_list",
  "cache_push",
  "cache_pull",
  "cache_verify",
  "flash_devices",
  "list_flashes",
  "flash",
]

/** The text of a tool error: the document `owrt --json` prints for the same failure. */
const toolError = (result: CallToolResult): ToolError["error"] => {
  expect(result.isError, JSON.stringify(result)).toBe(true)
  const [content] = result.content
  if (content?.type !== "text") throw new Error(`tool error without text: ${JSON.stringify(result)}`)
  return (JSON.parse(content.text) as ToolError).error
}

const structured = <T>(result: CallToolResult): T => {
  expect(result.isError ?? false, JSON.stringify(result.content)).toBe(false)
  return result.structuredContent as T
}

describe("owrt mcp over stdio, driven by the official MCP client", () => {
  let mirror: { url: string; close: () => Promise<void> }
  let keyring: string
  let client: Client
  let transport: StdioClientTransport
  let stderr = ""
  const transportErrors: Array<Error> = []
  const project = makeProject({
    // Example profiles plus one that cannot build, for batches.
    "profiles/missing-pkg.yaml":
      "extends: base\ntarget: ath79/generic\ndevice: tplink_archer-c7-v5\npackages: [no-such-package]\n",
  })
  // Stand-ins for cards: plain files, so that a write would show and no real device is ever at risk.
  const cardBytes = Buffer.alloc(64 * 1024, 0x5a)
  const allowedCard = join(project.dir, "allowed-card.img")
  const otherCard = join(project.dir, "other-card.img")
  project.write(
    "graph.config.ts",
    [
      'import { defineConfig } from "owrt/config"',
      `export default defineConfig({ flash: { allowDevices: [${JSON.stringify(allowedCard)}] } })`,
      "",
    ].join("\n"),
  )
  writeFileSync(allowedCard, cardBytes)
  writeFileSync(otherCard, cardBytes)
  cpSync(join(repoRoot, "profiles"), join(project.dir, "profiles"), { recursive: true })
  const counter = join(project.dir, "make-image-runs")
  const makeRuns = () =>
    existsSync(counter) ? readFileSync(counter, "utf8").trim().split("\n").filter(Boolean).length : 0
  const call = (name: string, args: Record<string, unknown> = {}) =>
    client.callTool({ name, arguments: args }) as Promise<CallToolResult>

  beforeAll(async () => {
    const built = await buildMirror()
    keyring = built.keyring
    mirror = await serveMirror(built.root)
    transport = new StdioClientTransport({
      command: process.execPath,
      args: [owrtBin, "mcp", "--upstream", mirror.url, "--keyring", keyring],
      cwd: project.dir,
      env: cleanEnv({ OWRT_FAKE_IB_COUNTER: counter }),
      stderr: "pipe",
    })
    transport.stderr?.on("data", (chunk: Buffer) => {
      stderr += chunk.toString("utf8")
    })
    client = new Client({ name: "owrt-test", version: "1.0.0" })
    await client.connect(transport)
    // Anything on stdout that is not a protocol message makes the client's transport report an error.
    transport.onerror = (error) => transportErrors.push(error)
  })
  afterAll(async () => {
    await client?.close()
    await mirror?.close()
    project.cleanup()
  })

  it("lists every tool with JSON Schemas and read-only hints", async () => {
    const { tools } = await client.listTools()
    expect(tools.map((t) => t.name)).toEqual(expectedTools)
    const tool = (name: string) => {
      const found = tools.find((t) => t.name === name)
      if (!found) throw new Error(`no tool ${name}`)
      return found
    }
    // No Effect-internal titles (`"int"`, `"between(1, 1000)"`) for clients to show as field names.
    const titles = JSON.stringify(tools).match(/"title":"[^"]*"/g) ?? []
    expect(titles).toEqual([])
    const realize = tool("realize")
    expect(realize.inputSchema).toMatchObject({
      type: "object",
      required: ["profile"],
      properties: { profile: { type: "string" }, rebuild: { type: "boolean" } },
      additionalProperties: false,
    })
    expect(realize.outputSchema).toMatchObject({
      type: "object",
      properties: {
        cacheHit: { type: "boolean" },
        artifacts: { type: "array" },
        buildId: { type: "integer" },
      },
    })
    expect(realize.annotations).toMatchObject({
      readOnlyHint: false,
      destructiveHint: false,
      idempotentHint: true,
    })
    expect(tool("realize_batch").inputSchema.properties).toMatchObject({
      mode: { enum: ["fail-fast", "best-effort"] },
    })
    for (const name of [
      "list_profiles",
      "get_profile",
      "profile_history",
      "plan",
      "list_builds",
      "get_build",
      "list_artifacts",
      "list_builders",
      "list_store",
      "store_path",
      "diff",
      "list_flashes",
    ]) {
      expect(tool(name).annotations?.readOnlyHint, name).toBe(true)
      expect(tool(name).outputSchema?.type, name).toBe("object")
    }
    expect(tool("store_verify").inputSchema).toEqual({
      type: "object",
      properties: {},
      additionalProperties: false,
    })
  })

  it("lists the example profiles", async () => {
    const { profiles } = structured<{ profiles: ReadonlyArray<{ id: string; abstract: boolean }> }>(
      await call("list_profiles"),
    )
    expect(profiles.map((p) => [p.id, p.abstract])).toEqual(
      expect.arrayContaining([
        ["base", true],
        ["home-ap", false],
        ["x86-router", false],
      ]),
    )
  })

  it("realizes an example profile, then reuses it: the second call runs no make and reports cacheHit", async () => {
    const first = structured<Realized>(await call("realize", { profile: "home-ap" }))
    expect(first.cacheHit).toBe(false)
    expect(first.profile).toBe("home-ap")
    expect(first.artifacts.map((a) => a.type).sort()).toEqual(["factory", "sysupgrade"])
    expectArtifactsOnDisk(first.artifacts)
    expect(makeRuns()).toBe(1)

    const second = structured<Realized>(await call("realize", { profile: "home-ap@1" }))
    expect(second).toEqual({ ...first, cacheHit: true, buildId: second.buildId })
    expect(second.buildId).not.toBe(first.buildId)
    expect(makeRuns()).toBe(1)

    const build = structured<{
      id: number
      status: string
      cacheHit: boolean
      requestedBy: string
      keys: { collectArtifacts: string | null; makeImage: string | null }
      artifacts: ReadonlyArray<{ sha256: string; path: string; buildId: number | null }>
      logTail: string | null
    }>(await call("get_build", { id: first.buildId }))
    expect(build).toMatchObject({
      id: first.buildId,
      status: "succeeded",
      cacheHit: false,
      requestedBy: "mcp",
    })
    expect(build.keys.collectArtifacts).toBe(first.key)
    expect(build.artifacts.map((a) => a.sha256).sort()).toEqual(first.artifacts.map((a) => a.sha256).sort())
    expect(build.logTail).toMatch(/\S/)

    const { artifacts } = structured<{ artifacts: ReadonlyArray<{ profile: string; path: string }> }>(
      await call("list_artifacts", { profile: "home-ap" }),
    )
    expect(artifacts.map((a) => a.path).sort()).toEqual(first.artifacts.map((a) => a.path).sort())

    const { builds } = structured<{
      builds: ReadonlyArray<{ id: number; requestedBy: string; cacheHit: boolean }>
    }>(await call("list_builds", { profile: "home-ap" }))
    expect(builds.slice(0, 2).map((b) => [b.id, b.cacheHit, b.requestedBy])).toEqual([
      [second.buildId, true, "mcp"],
      [first.buildId, false, "mcp"],
    ])
  })

  it("rejects bad arguments with a usage error naming the problem, before doing anything", async () => {
    const wrongType = toolError(await call("realize", { profile: 42 }))
    expect(wrongType).toMatchObject({ code: "usage", exitCode: 2 })
    expect(wrongType.message).toMatch(/profile/)
    expect(wrongType.message).toMatch(/Expected string, actual 42/)

    const misspelt = toolError(await call("realize", { profil: "home-ap" }))
    expect(misspelt.code).toBe("usage")
    expect(misspelt.message).toMatch(/profil/)

    const badMode = toolError(await call("realize_batch", { profiles: ["home-ap"], mode: "sometimes" }))
    expect(badMode.code).toBe("usage")
    expect(badMode.message).toMatch(/fail-fast/)
  })

  it("answers arguments that are not an object, or nest too deep, with a usage tool error", async () => {
    const listed = await client.request(
      // Not what the types allow: what a confused client sends.
      {
        method: "tools/call",
        params: { name: "realize", arguments: [1, 2] as unknown as Record<string, unknown> },
      },
      CallToolResultSchema,
    )
    const notAnObject = toolError(listed)
    expect(notAnObject).toMatchObject({ code: "usage", exitCode: 2 })
    expect(notAnObject.message).toMatch(/Expected an object of named arguments, actual an array/)

    const deep = JSON.parse(`${"[".repeat(3000)}${"]".repeat(3000)}`) as unknown
    const tooDeep = toolError(await call("realize", { profile: deep }))
    expect(tooDeep).toMatchObject({ code: "usage", exitCode: 2 })
    expect(tooDeep.message).toMatch(/more than 64 deep/)
    // Within the limit, the usual per-field message.
    const shallow = toolError(await call("realize", { profile: [[["home-ap"]]] }))
    expect(shallow.message).toMatch(/profile: Expected string/)
  })

  it("answers a message over 10 MiB with an error and goes on serving", async () => {
    // The SDK writes the request id after the arguments, at the very end of the message.
    await expect(call("realize", { profile: "x".repeat(11 * 1024 * 1024) })).rejects.toThrow(
      /message too large: \d+ bytes, owrt mcp accepts at most 10485760 bytes/,
    )
    const profiles = structured<{ profiles: ReadonlyArray<{ id: string }> }>(await call("list_profiles"))
    expect(profiles.profiles.map((p) => p.id)).toContain("home-ap")
    expect(stderr).toMatch(/owrt mcp: dropped a message of \d+ bytes/)
  })

  it("reports an unknown profile as profile_not_found with a suggestion", async () => {
    const error = toolError(await call("realize", { profile: "home-aq" }))
    expect(error).toMatchObject({ code: "profile_not_found", exitCode: 4 })
    expect(error.message).toMatch(/did you mean `home-ap`/)
  })

  it("refuses an unknown tool at the protocol level", async () => {
    await expect(call("flash_everything")).rejects.toThrow(/unknown tool `flash_everything`/)
  })

  it("sends progress notifications to a client that asked for them", async () => {
    const updates: Array<Progress> = []
    const result = (await client.callTool(
      { name: "realize", arguments: { profile: "x86-router" } },
      undefined,
      {
        onprogress: (update) => updates.push(update),
      },
    )) as CallToolResult
    expect(structured<Realized>(result).cacheHit).toBe(false)
    expect(updates.length).toBeGreaterThan(0)
    const messages = updates.map((u) => u.message ?? "")
    expect(messages).toEqual(expect.arrayContaining([expect.stringMatching(/^x86-router@1: make-image/)]))
    // Progress only rises.
    const counts = updates.map((u) => u.progress)
    expect(counts).toEqual([...counts].sort((a, b) => a - b))
  })

  it("sends each of two concurrent calls only its own progress", async () => {
    const heard = { "home-ap": [] as Array<string>, "x86-router": [] as Array<string> }
    const realize = (profile: keyof typeof heard) =>
      client.callTool({ name: "realize", arguments: { profile, rebuild: true } }, undefined, {
        onprogress: (update) => void heard[profile].push(update.message ?? ""),
      }) as Promise<CallToolResult>
    const [a, b] = await Promise.all([realize("home-ap"), realize("x86-router")])
    expect(structured<Realized>(a).cacheHit).toBe(false)
    expect(structured<Realized>(b).cacheHit).toBe(false)
    for (const [profile, messages] of Object.entries(heard)) {
      expect(messages.some((m) => m.includes("make-image"))).toBe(true)
      // Every message names this call's own task: the other call's progress never reached it.
      expect(messages.filter((m) => !m.startsWith(`${profile}@`))).toEqual([])
    }
  })

  it("realizes a batch best-effort: per-profile results, failures with their codes, and totals", async () => {
    const batch = structured<{
      mode: string
      results: ReadonlyArray<Realized>
      failures: ReadonlyArray<{ profile: string; error: { code: string; exitCode: number } }>
      skipped: ReadonlyArray<string>
      totals: Record<string, number>
    }>(await call("realize_batch", { profiles: ["home-ap", "missing-pkg"], mode: "best-effort" }))
    expect(batch.mode).toBe("best-effort")
    expect(batch.results.map((r) => [r.profile, r.cacheHit])).toEqual([["home-ap", true]])
    expect(batch.failures).toEqual([
      {
        profile: "missing-pkg",
        error: expect.objectContaining({ code: "package_selection_invalid", exitCode: 7 }),
      },
    ])
    expect(batch.totals).toEqual({
      requested: 2,
      merged: 0,
      succeeded: 1,
      cacheHits: 1,
      failed: 1,
      skipped: 0,
    })
  })

  it("merges specs naming the same revision in a batch: one build record each", async () => {
    const buildIds = async () =>
      structured<{ builds: ReadonlyArray<{ id: number }> }>(
        await call("list_builds", { limit: 1000 }),
      ).builds.map((b) => b.id)
    const before = await buildIds()
    const batch = structured<{ results: ReadonlyArray<Realized>; totals: Record<string, number> }>(
      await call("realize_batch", { profiles: ["home-ap", "home-ap", "home-ap@1", "home-ap"] }),
    )
    expect(batch.results.map((r) => r.profile)).toEqual(["home-ap"])
    expect(batch.totals).toMatchObject({ requested: 1, merged: 3, succeeded: 1 })
    expect((await buildIds()).length).toBe(before.length + 1)
  })

  it("refuses a batch of more than 256 specs as a usage error before any work", async () => {
    const runs = makeRuns()
    const builds = structured<{ builds: ReadonlyArray<unknown> }>(await call("list_builds", { limit: 1000 }))
    const error = toolError(await call("realize_batch", { profiles: Array(20_000).fill("home-ap") }))
    expect(error).toMatchObject({ code: "usage", exitCode: 2 })
    expect(error.message).toMatch(/at most 256 profiles per batch/)
    // One short line, not the 20,000 specs quoted back.
    expect(error.message.length).toBeLessThan(300)
    expect(toolError(await call("realize_batch", { profiles: Array(257).fill("x86-router") })).code).toBe(
      "usage",
    )
    const after = structured<{ builds: ReadonlyArray<unknown> }>(await call("list_builds", { limit: 1000 }))
    expect(after.builds.length).toBe(builds.builds.length)
    expect(makeRuns()).toBe(runs)
    const { tools } = await client.listTools()
    expect(tools.find((t) => t.name === "realize_batch")?.inputSchema).toMatchObject({
      properties: { profiles: { type: "array", maxItems: 256 } },
    })
  })

  it("plans and verifies the store through the same tools", async () => {
    const planned = structured<{ profiles: ReadonlyArray<{ profile: string; status: string }> }>(
      await call("plan", { profiles: ["home-ap"] }),
    )
    expect(planned.profiles).toEqual([expect.objectContaining({ profile: "home-ap", status: "cached" })])
    const verified = structured<{ checked: number; drifted: ReadonlyArray<unknown> }>(
      await call("store_verify"),
    )
    expect(verified.checked).toBeGreaterThan(0)
    expect(verified.drifted).toEqual([])
  })

  it("refuses to flash a device that is not on the allow-list, writing nothing", async () => {
    const error = toolError(
      await call("flash", { source: "home-ap", device: otherCard, force: true, allowLoop: true }),
    )
    expect(error).toMatchObject({ code: "flash_device_not_allowed", exitCode: 8 })
    expect(error.message).toMatch(/allow-list/)
    expect(readFileSync(otherCard).equals(cardBytes)).toBe(true)
  })

  it("still runs every pre-flight check on an allow-listed device", async () => {
    const error = toolError(await call("flash", { source: "home-ap", device: allowedCard, force: true }))
    expect(error).toMatchObject({ code: "flash_not_block_device", exitCode: 8 })
    expect(readFileSync(allowedCard).equals(cardBytes)).toBe(true)
  })

  it("marks flash destructive and offers only allow-listed devices", async () => {
    const { tools } = await client.listTools()
    const flashTool = tools.find((t) => t.name === "flash")
    expect(flashTool?.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: true })
    expect(flashTool?.inputSchema.required).toEqual(["source", "device"])
    const listed = structured<{ allowDevices: ReadonlyArray<string>; devices: ReadonlyArray<unknown> }>(
      await call("flash_devices", { allowLoop: true }),
    )
    // A plain file is allowed by the configuration but is no block device, so it is not offered.
    expect(listed).toEqual({ allowDevices: [allowedCard], devices: [] })
  })

  it("answers the store, builder and flash listings with what `owrt … --json` prints", async () => {
    const cli = async (args: ReadonlyArray<string>) =>
      json(
        await owrt([...args, "--json", "--upstream", mirror.url, "--keyring", keyring], {
          cwd: project.dir,
          env: { OWRT_FAKE_IB_COUNTER: counter },
        }),
      )
    expect(structured(await call("list_store"))).toEqual(await cli(["store", "ls"]))
    expect(structured(await call("list_builders"))).toEqual(await cli(["builders", "list"]))
    const builder = { release: "23.05.5", target: "ath79/generic" }
    expect(structured(await call("builder_devices", builder))).toEqual(
      await cli(["builders", "devices", builder.release, builder.target]),
    )
    expect(structured(await call("builder_packages", { ...builder, search: "luci-app" }))).toEqual(
      await cli(["builders", "packages", builder.release, builder.target, "--search", "luci-app"]),
    )
    expect(structured(await call("store_path", { profile: "home-ap" }))).toEqual(
      await cli(["store", "path", "home-ap"]),
    )
    // The failed profile of the batch has no artifacts in this store.
    expect(toolError(await call("store_path", { profile: "missing-pkg" }))).toMatchObject({
      code: "not_found",
      exitCode: 4,
    })
    const diff = structured<{ identical: boolean }>(await call("diff", { from: "home-ap", to: "home-ap" }))
    expect(diff.identical).toBe(true)
    expect(diff).toEqual(await cli(["diff", "home-ap", "home-ap"]))
    expect(toolError(await call("diff", { from: "home-ap", to: "missing-pkg" }))).toMatchObject({
      code: "not_found",
      exitCode: 4,
      message: expect.stringContaining("second reference"),
    })
    // The pre-flight refusal above was recorded.
    const flashes = structured<{ flashes: ReadonlyArray<{ status: string }> }>(await call("list_flashes"))
    expect(flashes.flashes[0]).toMatchObject({ status: "refused" })
    expect(flashes).toEqual(await cli(["flash", "list"]))
  })

  it("offers garbage collection and builder pruning as non-destructive, with a dry run", async () => {
    const { tools } = await client.listTools()
    for (const name of ["collect_garbage", "prune_builders"]) {
      expect(tools.find((t) => t.name === name)?.annotations, name).toMatchObject({
        readOnlyHint: false,
        destructiveHint: false,
        idempotentHint: true,
      })
    }
    const builders = structured<{ builders: ReadonlyArray<{ key: string }> }>(await call("list_builders"))
    const pruned = structured<{ removed: ReadonlyArray<{ key: string }>; dryRun: boolean }>(
      await call("prune_builders", { dryRun: true }),
    )
    expect(pruned.dryRun).toBe(true)
    expect(pruned.removed.map((b) => b.key).sort()).toEqual(builders.builders.map((b) => b.key).sort())
    expect(structured(await call("list_builders"))).toEqual(builders)
    expect(structured(await call("collect_garbage", { dryRun: true }))).toMatchObject({ dryRun: true })
    expect(toolError(await call("prune_builders", { olderThanDays: -1 }))).toMatchObject({ code: "usage" })
  })

  it("kept stdout to protocol messages and logged to stderr", () => {
    expect(transportErrors).toEqual([])
    expect(stderr).toMatch(/owrt mcp .*serving \d+ tools on stdio/)
  })
})

describe("owrt mcp lifetime", () => {
  it("serves the project named by --project, and exits cleanly when its client closes stdin", async () => {
    const project = makeProject({
      "profiles/lab.yaml": 'release: "23.05.5"\ntarget: x86/64\ndevice: generic\n',
    })
    try {
      // Started elsewhere, as clients that cannot set a working directory start it.
      const child = spawn(process.execPath, [owrtBin, "mcp", "--offline", "--project", project.dir], {
        cwd: tmpdir(),
        env: cleanEnv(),
        stdio: ["pipe", "pipe", "pipe"],
      })
      const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
      const responses: Array<{ id: number; result?: unknown }> = []
      let buffered = ""
      const answered = (id: number) =>
        new Promise<{ id: number; result?: unknown }>((resolve) => {
          const check = () => {
            const found = responses.find((r) => r.id === id)
            if (found) resolve(found)
            else setTimeout(check, 20)
          }
          check()
        })
      child.stdout.on("data", (chunk: Buffer) => {
        buffered += chunk.toString("utf8")
        const lines = buffered.split("\n")
        buffered = lines.pop() ?? ""
        for (const line of lines) if (line.trim()) responses.push(JSON.parse(line))
      })
      const send = (message: Record<string, unknown>) =>
        child.stdin.write(`${JSON.stringify({ jsonrpc: "2.0", ...message })}\n`)
      send({
        id: 1,
        method: "initialize",
        params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "t", version: "1" } },
      })
      expect(await answered(1)).toMatchObject({ result: { serverInfo: { name: "owrt" } } })
      send({ method: "notifications/initialized" })
      send({ id: 2, method: "tools/call", params: { name: "list_profiles", arguments: {} } })
      expect(await answered(2)).toMatchObject({
        result: { structuredContent: { profiles: [expect.objectContaining({ id: "lab" })] } },
      })
      child.stdin.end()
      expect(await exited).toBe(0)
    } finally {
      project.cleanup()
    }
  })
})

describe("owrt mcp cancellation", () => {
  it("interrupts a build whose call the client cancels, and records it as interrupted", async () => {
    const built = await buildMirror()
    const mirror = await serveMirror(built.root)
    const project = makeProject({})
    cpSync(join(repoRoot, "profiles"), join(project.dir, "profiles"), { recursive: true })
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [owrtBin, "mcp", "--upstream", mirror.url, "--keyring", built.keyring],
      cwd: project.dir,
      // Long enough that make image is still running when the client gives up.
      env: cleanEnv({ OWRT_FAKE_IB_DELAY: "20" }),
      stderr: "pipe",
    })
    const client = new Client({ name: "owrt-test", version: "1.0.0" })
    try {
      await client.connect(transport)
      const abort = new AbortController()
      const call = client.callTool({ name: "realize", arguments: { profile: "home-ap" } }, undefined, {
        signal: abort.signal,
        onprogress: (update) => {
          if (update.message?.includes("make-image")) abort.abort("changed my mind")
        },
      })
      await expect(call).rejects.toThrow(/changed my mind/)
      let status = "running"
      for (let i = 0; i < 100 && status === "running"; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100))
        const listed = (await client.callTool({ name: "list_builds", arguments: {} })) as CallToolResult
        status =
          (listed.structuredContent as { builds: ReadonlyArray<{ status: string }> }).builds[0]?.status ?? ""
      }
      expect(status).toBe("interrupted")
      // The server is still there for the next request.
      const plan = (await client.callTool({
        name: "plan",
        arguments: { profiles: ["home-ap"] },
      })) as CallToolResult
      expect((plan.structuredContent as { summary: { missing: number } }).summary.missing).toBe(1)
    } finally {
      await client.close()
      await mirror.close()
      project.cleanup()
    }
  })
})
