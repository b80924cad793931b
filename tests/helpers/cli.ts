import { spawn } from "node:child_process"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"

export const repoRoot = join(import.meta.dirname, "..", "..")
export const owrtBin = join(repoRoot, "bin", "owrt.cjs")

export interface CliResult {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/**
 * Environment for a CLI run: no OWRT_* settings leak in from the developer's shell. The stand-in Image
 * Builder's knobs (`OWRT_FAKE_IB_*`, tests/fixtures/imagebuilder/README.md) reach its make through the
 * `makeEnv` setting, as any variable a build should see would.
 */
export const cleanEnv = (extra: Record<string, string | undefined> = {}): Record<string, string> => {
  const env: Record<string, string> = { OWRT_MAKE_ENV: "OWRT_FAKE_IB_*" }
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith("OWRT_") && value !== undefined) env[key] = value
  }
  for (const [key, value] of Object.entries(extra)) {
    if (value === undefined) delete env[key]
    else env[key] = value
  }
  return env
}

/**
 * Runs the real `owrt` CLI as a subprocess (with `asUser`, as that unprivileged user, via `setpriv`; with
 * `bin`, another installation's launcher).
 */
export const owrt = (
  args: ReadonlyArray<string>,
  options: {
    cwd: string
    env?: Record<string, string | undefined>
    input?: string
    asUser?: number
    bin?: string
  },
): Promise<CliResult> =>
  new Promise((resolve, reject) => {
    const bin = options.bin ?? owrtBin
    const [command, argv] =
      options.asUser === undefined
        ? [process.execPath, [bin, ...args]]
        : [
            "setpriv",
            [`--reuid=${options.asUser}`, `--regid=${options.asUser}`, "--clear-groups", "--"].concat(
              process.execPath,
              bin,
              ...args,
            ),
          ]
    const child = spawn(command, argv, {
      cwd: options.cwd,
      env: cleanEnv(options.env),
      stdio: ["pipe", "pipe", "pipe"],
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")))
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")))
    child.on("error", reject)
    child.on("close", (code) => resolve({ code, stdout, stderr }))
    child.stdin.end(options.input ?? "")
  })

/** Parses stdout as the single JSON document `--json` promises. */
export const json = <T = Record<string, unknown>>(result: CliResult): T => {
  try {
    return JSON.parse(result.stdout) as T
  } catch {
    throw new Error(`stdout is not one JSON document:\n${result.stdout}\n--- stderr ---\n${result.stderr}`)
  }
}

export interface ErrorDocument {
  readonly error: { readonly code: string; readonly message: string; readonly exitCode: number }
}

/** A scratch project: graph.config.ts, profiles and files, removed by `cleanup`. */
export const makeProject = (
  files: Record<string, string>,
  options: { config?: string } = {},
): { dir: string; write: (path: string, content: string) => void; cleanup: () => void } => {
  const dir = mkdtempSync(join(tmpdir(), "owrt-test-"))
  const write = (path: string, content: string) => {
    const full = join(dir, path)
    mkdirSync(dirname(full), { recursive: true })
    writeFileSync(full, content)
  }
  write(
    "graph.config.ts",
    options.config ?? 'import { defineConfig } from "owrt/config"\nexport default defineConfig({})\n',
  )
  for (const [path, content] of Object.entries(files)) write(path, content)
  return { dir, write, cleanup: () => rmSync(dir, { recursive: true, force: true }) }
}
