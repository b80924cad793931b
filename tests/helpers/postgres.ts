import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { freePort } from "./freePort.js"

/**
 * A real PostgreSQL for tests (Debian `postgresql`, installed by scripts/setup.sh): `initdb` and
 * `postgres` in a temp dir, listening on a free 127.0.0.1 port, trust auth. PostgreSQL refuses to run as
 * root, so when the tests run as root the cluster belongs to `nobody` (started through `runuser`).
 */
export interface TestPostgres {
  /** `postgres://postgres@127.0.0.1:PORT/postgres` */
  readonly url: string
  readonly log: () => string
  readonly stop: () => Promise<void>
}

/** The directory of `initdb` and `postgres`: `pg_config --bindir`, else the newest /usr/lib/postgresql/N/bin. */
export const postgresBinDir = (): string => {
  const candidates: Array<string> = []
  try {
    candidates.push(execFileSync("pg_config", ["--bindir"], { encoding: "utf8" }).trim())
  } catch {
    // no pg_config (the libpq-dev package): look in Debian's versioned directories
  }
  if (existsSync("/usr/lib/postgresql")) {
    const versions = readdirSync("/usr/lib/postgresql")
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a))
    for (const v of versions) candidates.push(`/usr/lib/postgresql/${v}/bin`)
  }
  const found = candidates.find((dir) => existsSync(join(dir, "initdb")) && existsSync(join(dir, "postgres")))
  if (!found) throw new Error("PostgreSQL is not installed (run scripts/setup.sh): no initdb found")
  return found
}

const asRoot = process.getuid?.() === 0
/** The command line, run as `nobody` when this process is root. */
const unprivileged = (command: string, args: ReadonlyArray<string>): [string, Array<string>] =>
  asRoot ? ["runuser", ["-u", "nobody", "--", command, ...args]] : [command, [...args]]

export const startPostgres = async (): Promise<TestPostgres> => {
  const bin = postgresBinDir()
  const dir = mkdtempSync(join(tmpdir(), "owrt-pg-"))
  chmodSync(dir, 0o777)
  const data = join(dir, "data")
  if (asRoot) execFileSync("chown", ["nobody", dir])
  const [initCmd, initArgs] = unprivileged(join(bin, "initdb"), [
    "-D",
    data,
    "-U",
    "postgres",
    "--auth=trust",
    "--no-sync",
    "-E",
    "UTF8",
  ])
  execFileSync(initCmd, initArgs, { stdio: "pipe" })
  const port = await freePort()
  const [cmd, args] = unprivileged(join(bin, "postgres"), [
    "-D",
    data,
    "-p",
    String(port),
    "-k",
    dir,
    "-c",
    "listen_addresses=127.0.0.1",
    "-c",
    "fsync=off",
    "-c",
    "max_connections=200",
  ])
  const child: ChildProcess = spawn(cmd, args, { stdio: ["ignore", "ignore", "pipe"] })
  let log = ""
  child.stderr?.on("data", (chunk: Buffer) => {
    log += chunk.toString()
  })
  const deadline = Date.now() + 30_000
  while (!log.includes("ready to accept connections")) {
    if (child.exitCode !== null) throw new Error(`postgres exited (${child.exitCode}):\n${log}`)
    if (Date.now() > deadline) throw new Error(`postgres did not start:\n${log}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    log: () => log,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once("exit", resolve))
        // pg_ctl's immediate shutdown signals the postmaster itself (runuser does not pass signals on).
        const [stopCmd, stopArgs] = unprivileged(join(bin, "pg_ctl"), ["-D", data, "stop", "-m", "immediate"])
        try {
          execFileSync(stopCmd, stopArgs, { stdio: "pipe" })
        } catch {
          child.kill("SIGKILL")
        }
        await exited
      }
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
