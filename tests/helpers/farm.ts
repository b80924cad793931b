import { type ChildProcess, spawn } from "node:child_process"
import pg from "pg"
import { cleanEnv, owrtBin } from "./cli.js"

/** A running `owrt worker` (the real CLI) with its own environment (store, counter file). */
export interface TestWorker {
  readonly name: string
  readonly child: ChildProcess
  readonly log: () => string
  /** Sends `signal` and waits for the process to end. */
  readonly stop: (signal?: NodeJS.Signals) => Promise<number | null>
}

export const startWorker = async (options: {
  readonly name: string
  readonly cwd: string
  readonly database: string
  readonly env: Record<string, string>
  readonly args?: ReadonlyArray<string>
}): Promise<TestWorker> => {
  const child = spawn(
    process.execPath,
    [owrtBin, "worker", "--database", options.database, "--name", options.name, ...(options.args ?? [])],
    { cwd: options.cwd, env: cleanEnv(options.env), stdio: ["ignore", "pipe", "pipe"] },
  )
  let log = ""
  child.stdout?.on("data", (chunk: Buffer) => (log += chunk.toString()))
  child.stderr?.on("data", (chunk: Buffer) => (log += chunk.toString()))
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
  // Registered: its row is in owrt_farm.workers (it heartbeats from then on).
  const deadline = Date.now() + 60_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`worker ${options.name} exited (${child.exitCode}):\n${log}`)
    if (Date.now() > deadline) throw new Error(`worker ${options.name} did not register:\n${log}`)
    const rows = await farmQuery(options.database, "select id from owrt_farm.workers where id = $1", [
      options.name,
    ]).catch(() => [])
    if (rows.length > 0) break
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return {
    name: options.name,
    child,
    log: () => log,
    stop: async (signal = "SIGTERM") => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      return exited
    },
  }
}

/** One query on the farm's database, on a connection of its own. */
export const farmQuery = async (
  url: string,
  text: string,
  values: ReadonlyArray<unknown> = [],
): Promise<Array<Record<string, unknown>>> => {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return (await client.query(text, [...values])).rows
  } finally {
    await client.end()
  }
}
