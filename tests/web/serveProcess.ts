import { type ChildProcess, spawn } from "node:child_process"
import { request as httpRequest } from "node:http"
import { buildMirror, serveMirror } from "../fixtures/mirror/index.js"
import { cleanEnv, makeProject, owrtBin } from "../helpers/cli.js"

/** A running `owrt serve`: the real bundled CLI in a subprocess. */
export interface ServeProcess {
  readonly url: string
  readonly child: ChildProcess
  readonly stderr: () => string
  /** Sends `signal` and resolves with the exit code. */
  readonly stop: (signal?: NodeJS.Signals) => Promise<number | null>
}

/** Starts `owrt serve --port 0 …` (or another serving command) and waits for its `listening:` line. */
export const startServe = (
  args: ReadonlyArray<string>,
  options: {
    cwd: string
    env?: Record<string, string | undefined>
    command?: ReadonlyArray<string>
  },
): Promise<ServeProcess> =>
  new Promise((resolve, reject) => {
    const command = options.command ?? ["serve"]
    const child = spawn(process.execPath, [owrtBin, ...command, "--port", "0", ...args], {
      cwd: options.cwd,
      env: cleanEnv(options.env),
      stdio: ["ignore", "pipe", "pipe"],
    })
    let stdout = ""
    let stderr = ""
    const exited = new Promise<number | null>((done) => child.once("exit", (code) => done(code)))
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")))
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString("utf8")
      const url = /^listening: (\S+)$/m.exec(stdout)?.[1]
      if (url) {
        resolve({
          url,
          child,
          stderr: () => stderr,
          stop: (signal = "SIGTERM") => {
            if (child.exitCode === null) child.kill(signal)
            return exited
          },
        })
      }
    })
    void exited.then((code) => reject(new Error(`owrt serve exited ${code} before listening:\n${stderr}`)))
  })

/** A scratch project with profiles, served by the stand-in mirror; `env` points owrt at both. */
export const servedProject = async (files: Record<string, string>) => {
  const built = await buildMirror()
  const mirror = await serveMirror(built.root)
  const project = makeProject(files)
  return {
    dir: project.dir,
    write: project.write,
    env: { OWRT_UPSTREAM: mirror.url, OWRT_KEYRING: built.keyring },
    cleanup: async () => {
      await mirror.close()
      project.cleanup()
    },
  }
}

export interface RawResponse {
  readonly status: number
  readonly headers: Record<string, string | Array<string> | undefined>
  readonly body: Buffer
}

/**
 * One request with node:http, path sent exactly as given: fetch() and URL normalise `..` away, which
 * would hide what a hostile client can really send.
 */
export const rawRequest = (
  base: string,
  path: string,
  options: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<RawResponse> =>
  new Promise((resolve, reject) => {
    const { hostname, port } = new URL(base)
    const request = httpRequest(
      { host: hostname, port, path, method: options.method ?? "GET", headers: options.headers },
      (response) => {
        const chunks: Array<Buffer> = []
        response.on("data", (chunk: Buffer) => chunks.push(chunk))
        response.on("end", () =>
          resolve({
            status: response.statusCode ?? 0,
            headers: response.headers,
            body: Buffer.concat(chunks),
          }),
        )
      },
    )
    request.on("error", reject)
    request.end(options.body)
  })

export const ap = (device: string, extra = "") =>
  `release: "23.05.5"\ntarget: ath79/generic\ndevice: ${device}\npackages: [luci]\n${extra}`
