import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { createHash } from "node:crypto"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createServer as createHttpServer, request as httpRequest } from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { freePort } from "./freePort.js"

/**
 * A real OCI registry for tests: Debian's `docker-registry` (distribution/registry 2.8, installed by
 * scripts/setup.sh), started on 127.0.0.1 with a free port, its own config file and data directory in a
 * temp dir, optionally behind htpasswd basic auth. `stop` kills it and removes the temp dir.
 */
export interface TestRegistry {
  /** `http://127.0.0.1:PORT` */
  readonly url: string
  /** `127.0.0.1:PORT`, for `oci://HOST/repo` substituter URLs. */
  readonly host: string
  /** The registry's storage root (blobs under docker/registry/v2/blobs/sha256/…), for tampering in tests. */
  readonly dataDir: string
  readonly auth: { readonly user: string; readonly password: string } | undefined
  /** What the registry wrote to stderr (its log), for diagnosing a failing test. */
  readonly log: () => string
  readonly stop: () => Promise<void>
}

export interface RegistryOptions {
  /** Require basic auth with this user and password (bcrypt htpasswd, made with `htpasswd -nbB`). */
  readonly auth?: { readonly user: string; readonly password: string }
}

const exited = (child: ChildProcess): Promise<void> =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((resolve) => child.once("exit", () => resolve()))

/** Polls `GET /v2/` until the registry answers (200, or 401 with auth on) or the process exits. */
const ready = async (url: string, child: ChildProcess, log: () => string): Promise<void> => {
  const deadline = Date.now() + 20_000
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited (${child.exitCode}):\n${log()}`)
    try {
      const response = await fetch(`${url}/v2/`)
      if (response.status === 200 || response.status === 401) return
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`docker-registry did not answer on ${url}:\n${log()}`)
}

const startOnce = async (dir: string, options: RegistryOptions): Promise<TestRegistry> => {
  const port = await freePort()
  const host = `127.0.0.1:${port}`
  const dataDir = join(dir, "data")
  const auth = options.auth
  let authConfig = ""
  if (auth) {
    const line = execFileSync("htpasswd", ["-nbB", auth.user, auth.password], { encoding: "utf8" }).trim()
    writeFileSync(join(dir, "htpasswd"), `${line}\n`)
    authConfig = `auth:\n  htpasswd:\n    realm: owrt-test\n    path: ${join(dir, "htpasswd")}\n`
  }
  const config = join(dir, "config.yml")
  writeFileSync(
    config,
    [
      "version: 0.1",
      "log:",
      "  level: warn",
      "  accesslog:",
      "    disabled: true",
      "storage:",
      "  filesystem:",
      `    rootdirectory: ${dataDir}`,
      "  delete:",
      "    enabled: true",
      "http:",
      `  addr: ${host}`,
      "  secret: owrt-test-secret",
      "",
    ].join("\n") + authConfig,
  )
  const child = spawn("docker-registry", ["serve", config], { stdio: ["ignore", "ignore", "pipe"] })
  let output = ""
  child.stderr?.on("data", (chunk: Buffer) => {
    output += chunk.toString("utf8")
  })
  const log = () => output
  const url = `http://${host}`
  try {
    await ready(url, child, log)
  } catch (error) {
    child.kill("SIGKILL")
    await exited(child)
    throw error
  }
  return {
    url,
    host,
    dataDir,
    auth,
    log,
    stop: async () => {
      child.kill("SIGTERM")
      await exited(child)
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** Starts a registry; retries on a fresh port if another process took the chosen one first. */
export const startRegistry = async (options: RegistryOptions = {}): Promise<TestRegistry> => {
  let lastError: unknown
  for (let attempt = 0; attempt < 3; attempt++) {
    const dir = mkdtempSync(join(tmpdir(), "owrt-registry-"))
    try {
      return await startOnce(dir, options)
    } catch (error) {
      lastError = error
      rmSync(dir, { recursive: true, force: true })
    }
  }
  throw lastError
}

/**
 * A proxy in front of a registry that counts blob downloads (GET /v2/…/blobs/<digest>) per digest, and
 * manifest requests per method and tag (`GET <tag>`, `HEAD <tag>`).
 */
export interface BlobCountingProxy {
  /** `127.0.0.1:port`: what an `oci://` URL names. */
  readonly host: string
  readonly gets: Map<string, number>
  readonly manifests: Map<string, number>
  readonly close: () => void
}

export const startBlobCountingProxy = async (registryUrl: string): Promise<BlobCountingProxy> => {
  const target = new URL(registryUrl)
  const gets = new Map<string, number>()
  const manifests = new Map<string, number>()
  const proxy = createHttpServer((req, res) => {
    const blob = /\/blobs\/(sha256:[0-9a-f]{64})$/.exec(req.url ?? "")?.[1]
    if (req.method === "GET" && blob) gets.set(blob, (gets.get(blob) ?? 0) + 1)
    const tag = /\/manifests\/([^/?]+)$/.exec(req.url ?? "")?.[1]
    if (tag !== undefined) {
      const asked = `${req.method} ${tag}`
      manifests.set(asked, (manifests.get(asked) ?? 0) + 1)
    }
    const forward = httpRequest(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers)
        answer.pipe(res)
      },
    )
    req.pipe(forward)
  })
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve))
  const port = (proxy.address() as { port: number }).port
  return {
    host: `127.0.0.1:${port}`,
    gets,
    manifests,
    close: () => {
      proxy.closeAllConnections()
      proxy.close()
    },
  }
}

/**
 * Pushes `bytes` as a release of `repository` under `tag`, the way ORAS does (first layer = the firmware);
 * returns the manifest's digest.
 */
export const pushFirmware = async (
  registry: TestRegistry,
  repository: string,
  tag: string,
  bytes: Buffer,
): Promise<string> => {
  const sha = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`
  const upload = async (body: Buffer) => {
    const start = await fetch(`${registry.url}/v2/${repository}/blobs/uploads/`, { method: "POST" })
    const url = new URL(start.headers.get("location") ?? "", registry.url)
    url.searchParams.set("digest", sha(body))
    const put = await fetch(url, { method: "PUT", body })
    if (put.status !== 201) throw new Error(`blob upload: ${put.status}`)
  }
  const config = Buffer.from("{}")
  await upload(config)
  await upload(bytes)
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.empty.v1+json", digest: sha(config), size: 2 },
      layers: [
        {
          mediaType: "application/vnd.espressif.esp32.firmware.v1+binary",
          digest: sha(bytes),
          size: bytes.length,
        },
      ],
    }),
  )
  const put = await fetch(`${registry.url}/v2/${repository}/manifests/${tag}`, {
    method: "PUT",
    headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" },
    body: manifest,
  })
  if (put.status !== 201) throw new Error(`manifest put: ${put.status}`)
  return sha(manifest)
}
