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

/*
 * Large downloads under many clients. autocannon parses every body in JavaScript and tops out far below what a
 * server can send over loopback, so the downloads are driven by a separate Node process of plain `node:http`
 * clients (keep-alive, each reading and discarding its body): `connections` loops for `seconds`, counting
 * bytes as they arrive (a download still running at the end counts for what it received).
 */
const downloadClient = `
const http = require("node:http")
const [url, connections, seconds] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])]
const agent = new http.Agent({ keepAlive: true, maxSockets: connections })
const end = Date.now() + seconds * 1000
let bytes = 0, done = 0, errors = 0
const latencies = []
const one = () => new Promise((resolve) => {
  const started = Date.now()
  const req = http.get(url, { agent }, (res) => {
    if (res.statusCode !== 200) errors++
    res.on("data", (chunk) => { bytes += chunk.length })
    res.on("end", () => { done++; latencies.push(Date.now() - started); resolve() })
    res.on("error", () => { errors++; resolve() })
  })
  req.on("error", () => { errors++; resolve() })
})
const loop = async () => { while (Date.now() < end) await one() }
const started = Date.now()
const timer = setTimeout(() => {
  const elapsed = (Date.now() - started) / 1000
  latencies.sort((a, b) => a - b)
  const p99 = latencies.length === 0 ? 0 : latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * 0.99))]
  process.stdout.write(JSON.stringify({ requests: done / elapsed, bytesPerSecond: bytes / elapsed, p99, errors }))
  process.exit(0)
}, seconds * 1000)
Promise.all(Array.from({ length: connections }, loop)).then(() => {})
void timer
`

export interface DownloadResult {
  readonly requests: number
  readonly bytesPerSecond: number
  readonly p99: number
  readonly errors: number
}

export const downloadLoad = (url: string, connections: number, seconds: number) =>
  new Promise<DownloadResult>((resolve, reject) => {
    const child = spawn(process.execPath, ["-e", downloadClient, url, String(connections), String(seconds)], {
      stdio: ["ignore", "pipe", "inherit"],
    })
    let out = ""
    child.stdout?.on("data", (chunk: Buffer) => (out += chunk.toString("utf8")))
    child.once("exit", (code) => {
      try {
        resolve(JSON.parse(out) as DownloadResult)
      } catch {
        reject(new Error(`download client exited ${code}: ${out}`))
      }
    })
  })
