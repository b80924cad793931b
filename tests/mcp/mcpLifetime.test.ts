import { type ChildProcess, spawn } from "node:child_process"
import { cpSync, readdirSync, readFileSync, readlinkSync } from "node:fs"
import { join } from "node:path"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { buildMirror, serveMirror } from "../fixtures/mirror/index.js"
import { cleanEnv, json, makeProject, owrt, owrtBin, repoRoot } from "../helpers/cli.js"

/*
 * An MCP server must not outlive its client: whichever way the client goes (closes the transport, is
 * killed, or its parent dies while something else keeps stdin open), `owrt mcp` interrupts the builds
 * it runs, records them as interrupted and exits.
 */

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Whether `pid` is a live process (a zombie left for an init that does not reap counts as gone). */
const alive = (pid: number) => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z"
  } catch {
    return false
  }
}

const waitForExit = async (pid: number) => {
  while (alive(pid)) await sleep(100)
}

/** Live processes working for `serverPid` in `projectDir`: its make, the builder's scripts, itself. */
const leftovers = (serverPid: number, projectDir: string, except: ReadonlyArray<number> = []) =>
  readdirSync("/proc")
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter((pid) => pid !== process.pid && !except.includes(pid) && alive(pid))
    .filter((pid) => {
      try {
        const cwd = readlinkSync(`/proc/${pid}/cwd`)
        const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8")
        return (
          pid === serverPid ||
          [cwd, cmdline].some(
            (text) => text.includes(projectDir) || text.includes(`owrt-instance.${serverPid}.`),
          )
        )
      } catch {
        return false
      }
    })

describe("owrt mcp stops with its client", () => {
  let mirror: { url: string; close: () => Promise<void> }
  let env: Record<string, string>
  const projects: Array<ReturnType<typeof makeProject>> = []
  const holders: Array<number> = []

  beforeAll(async () => {
    const built = await buildMirror()
    mirror = await serveMirror(built.root)
    env = {
      OWRT_UPSTREAM: mirror.url,
      OWRT_KEYRING: built.keyring,
      // make image is still running when the client goes.
      OWRT_FAKE_IB_DELAY: "60",
    }
  })
  afterAll(async () => {
    for (const pid of holders) if (alive(pid)) process.kill(pid, "SIGKILL")
    await mirror?.close()
    for (const project of projects) project.cleanup()
  })

  const exampleProject = () => {
    const project = makeProject({})
    cpSync(join(repoRoot, "profiles"), join(project.dir, "profiles"), { recursive: true })
    projects.push(project)
    return project
  }

  /** Every build the project recorded: none may still be running. */
  const builds = async (dir: string) =>
    json<{ builds: ReadonlyArray<{ profile: string; status: string }> }>(
      await owrt(["builds", "list", "--json"], { cwd: dir, env }),
    ).builds

  it("interrupts a running batch and exits when the client closes the transport", async () => {
    const project = exampleProject()
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [owrtBin, "mcp"],
      cwd: project.dir,
      env: cleanEnv(env),
      stderr: "pipe",
    })
    let stderr = ""
    transport.stderr?.on("data", (chunk: Buffer) => {
      stderr += chunk.toString("utf8")
    })
    const client = new Client({ name: "leaving-client", version: "1.0.0" })
    await client.connect(transport)
    const server = transport.pid
    if (server === null) throw new Error("no server process")
    const making = new Promise<void>((resolve) => {
      void client
        .callTool(
          { name: "realize_batch", arguments: { profiles: ["home-ap", "x86-router"], mode: "best-effort" } },
          undefined,
          {
            timeout: 600_000,
            onprogress: (update) => {
              if (update.message?.includes("make-image")) resolve()
            },
          },
        )
        .catch(() => undefined)
    })
    await making
    // Closing the transport ends the server's stdin (and signals it only if it lingers).
    await transport.close()
    await waitForExit(server)
    const recorded = await builds(project.dir)
    expect(recorded.length).toBeGreaterThan(0)
    expect(recorded.map((b) => b.status)).toEqual(recorded.map(() => "interrupted"))
    expect(leftovers(server, project.dir)).toEqual([])
    expect(stderr).toMatch(/owrt mcp: the client closed stdin: stopping \(interrupting 1 running calls\)/)
  })

  const killedClient = async (extra: ReadonlyArray<string>) => {
    const project = exampleProject()
    const child: ChildProcess = spawn(
      process.execPath,
      [join(import.meta.dirname, "mcpClientProcess.mjs"), owrtBin, "home-ap", "x86-router", ...extra],
      { cwd: project.dir, env: cleanEnv(env), stdio: ["ignore", "pipe", "pipe"] },
    )
    let stderr = ""
    child.stderr?.on("data", (chunk: Buffer) => {
      stderr += chunk.toString("utf8")
    })
    const started = await new Promise<{ server: number; holder: number | null }>((resolve, reject) => {
      let out = ""
      child.stdout?.on("data", (chunk: Buffer) => {
        out += chunk.toString("utf8")
        if (out.includes("\n")) resolve(JSON.parse(out.split("\n")[0] ?? ""))
      })
      child.once("exit", (code) => reject(new Error(`the client exited ${code}:\n${stderr}`)))
    })
    if (started.holder !== null) holders.push(started.holder)
    child.kill("SIGKILL")
    await waitForExit(started.server)
    return { project, ...started, stderr: () => stderr }
  }

  it("interrupts its builds and exits when the client process is killed", async () => {
    const { project, server, stderr } = await killedClient([])
    const recorded = await builds(project.dir)
    expect(recorded.length).toBeGreaterThan(0)
    expect(recorded.map((b) => b.status)).toEqual(recorded.map(() => "interrupted"))
    expect(leftovers(server, project.dir)).toEqual([])
    expect(stderr()).toMatch(/owrt mcp: .*: stopping/)
  })

  it("exits when its parent dies even while another process keeps its stdin open", async () => {
    const { project, server, holder, stderr } = await killedClient(["--hold-stdin"])
    expect(holder).not.toBeNull()
    expect(alive(holder ?? 0)).toBe(true)
    expect(stderr()).toMatch(/owrt mcp: the parent process \(pid \d+\) exited: stopping/)
    const recorded = await builds(project.dir)
    expect(recorded.map((b) => b.status)).toEqual(recorded.map(() => "interrupted"))
    expect(leftovers(server, project.dir, holder === null ? [] : [holder])).toEqual([])
  })
})
