import { type ChildProcess, spawn } from "node:child_process"
import { createRequire } from "node:module"

/** What autocannon reports of one load run (the fields the benches print). */
export interface LoadResult {
  readonly requests: { readonly average: number }
  readonly latency: { readonly p99: number }
  readonly throughput: { readonly average: number }
  readonly errors: number
  readonly timeouts: number
  readonly non2xx: number
}

export type Autocannon = (options: {
  url: string
  connections: number
  duration: number
  timeout?: number
  method?: string
  headers?: Record<string, string>
  body?: string
}) => Promise<LoadResult>

export const autocannon = createRequire(import.meta.url)("autocannon") as Autocannon

/** Starts a process that prints `listening: <url>` and resolves with the URL. */
export const startListening = (args: ReadonlyArray<string>, cwd: string, env: Record<string, string>) =>
  new Promise<{ url: string; child: ChildProcess }>((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      cwd,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    })
    // Its stderr matters only when it fails to start (a stop by SIGTERM reports `interrupted` there).
    let errors = ""
    child.stderr?.on("data", (chunk: Buffer) => (errors += chunk.toString("utf8")))
    let out = ""
    child.stdout?.on("data", (chunk: Buffer) => {
      out += chunk.toString("utf8")
      const url = /^listening: (\S+)$/m.exec(out)?.[1]
      if (url) resolve({ url, child })
    })
    child.once("exit", (code) => reject(new Error(`${args.join(" ")} exited ${code}:\n${errors}`)))
  })

export const stop = (child: ChildProcess) =>
  new Promise<void>((done) => {
    child.once("exit", () => done())
    child.kill("SIGTERM")
  })
