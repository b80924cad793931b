import { spawn, spawnSync } from "node:child_process"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"

export const repoRoot = join(import.meta.dirname, "..", "..")
export const owrtBin = join(repoRoot, "bin", "owrt.cjs")
export const benchWork = join(repoRoot, "bench", ".work")

/**
 * A helper script run as its own process for the length of a benchmark (benchmarks time commands
 * synchronously, which would stall a server in this process); resolves with the first match of `ready` in
 * its output.
 */
const startHelper = (
  script: string,
  args: ReadonlyArray<string>,
  ready: RegExp,
): Promise<{ match: RegExpExecArray; close: () => Promise<void> }> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", join(repoRoot, script), ...args], {
      stdio: ["ignore", "pipe", "inherit"],
    })
    let out = ""
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString("utf8")
      const match = ready.exec(out)
      if (match)
        resolve({
          match,
          close: () =>
            new Promise((done) => {
              child.once("exit", () => done())
              child.kill("SIGTERM")
            }),
        })
    })
    child.once("exit", (code) => reject(new Error(`${script} exited ${code}`)))
  })

/** The stand-in mirror, served on 127.0.0.1. */
export const startMirror = async (
  large = false,
): Promise<{ url: string; keyring: string; close: () => Promise<void> }> => {
  const { match, close } = await startHelper(
    "scripts/test-mirror.ts",
    ["--port", "0", ...(large ? ["--large"] : [])],
    /^upstream: (.+)\n(?:.*\n)*?keyring: (.+)\n/m,
  )
  return { url: match[1] ?? "", keyring: match[2] ?? "", close }
}

/** A link of `mbit` Mbit/s and `rtt` ms in front of `target` (host:port): bench/lib/shapedLink.ts. */
export const startShapedLink = async (
  target: string,
  mbit: number,
  rtt = 0,
): Promise<{ host: string; close: () => Promise<void> }> => {
  const { match, close } = await startHelper(
    "bench/lib/shapedLink.ts",
    ["--target", target, "--mbit", String(mbit), "--rtt", String(rtt)],
    /^link: (.+)\n/m,
  )
  return { host: match[1] ?? "", close }
}

/** A scratch project with the given profile files; removed by `cleanup` unless kept for reuse. */
export const makeBenchProject = (name: string, files: Record<string, string>, fresh = true) => {
  const dir = join(benchWork, name)
  if (fresh) rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, "graph.config.ts"), "export default {}\n")
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true })
    writeFileSync(join(dir, path), content)
  }
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) }
}

export const scratchDir = (label: string) => {
  mkdirSync(benchWork, { recursive: true })
  return mkdtempSync(join(benchWork, `${label}-`))
}

/** Runs owrt and fails loudly if it fails: a benchmark of a failing command measures nothing. */
export const owrtOk = (args: ReadonlyArray<string>, cwd: string, env: Record<string, string> = {}) => {
  const result = spawnSync(process.execPath, [owrtBin, ...args], {
    cwd,
    env: { ...process.env, ...env },
    encoding: "utf8",
  })
  if (result.status !== 0)
    throw new Error(`owrt ${args.join(" ")} exited ${result.status}:\n${result.stdout}\n${result.stderr}`)
  return result.stdout
}

export const seconds = (ms: number) => `${(ms / 1000).toFixed(2)}s`

export const time = (f: () => void): number => {
  const started = process.hrtime.bigint()
  f()
  return Number(process.hrtime.bigint() - started) / 1e6
}
