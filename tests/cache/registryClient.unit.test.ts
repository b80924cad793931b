import { createHash, randomBytes } from "node:crypto"
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs"
import { createServer } from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { Readable } from "node:stream"
import { Effect, Either, Fiber } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { makeManifest } from "../../src/cache/manifest.js"
import { makeRegistryClient, parseChallenge, parseRegistryUrl } from "../../src/cache/registryClient.js"
import { startRegistry, type TestRegistry } from "../helpers/registry.js"

const digestOf = (bytes: Uint8Array) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`
const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(Effect.either(effect))
const code = (result: Either.Either<unknown, { code: string }>) =>
  Either.isLeft(result) ? result.left.code : "ok"

const clientFor = (registry: TestRegistry, extra: { password?: string; timeoutSeconds?: number } = {}) =>
  makeRegistryClient({
    location: Effect.runSync(parseRegistryUrl(`oci://${registry.host}/owrt/cache`, "test")),
    credentials: registry.auth
      ? { username: registry.auth.user, password: extra.password ?? registry.auth.password }
      : undefined,
    timeoutSeconds: extra.timeoutSeconds ?? 10,
  })

describe("OCI registry client against docker-registry", () => {
  let registry: TestRegistry
  const dir = mkdtempSync(join(tmpdir(), "owrt-client-"))
  beforeAll(async () => {
    registry = await startRegistry()
  })
  afterAll(async () => {
    await registry.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  it("parses oci:// locations: plain HTTP only for loopback or oci+http", () => {
    expect(Effect.runSync(parseRegistryUrl("oci://127.0.0.1:5000/owrt/cache", "x")).base).toBe(
      "http://127.0.0.1:5000",
    )
    expect(Effect.runSync(parseRegistryUrl("oci://ghcr.io/acme/owrt", "x")).base).toBe("https://ghcr.io")
    expect(Effect.runSync(parseRegistryUrl("oci+http://cache.lan:5000/owrt", "x")).base).toBe(
      "http://cache.lan:5000",
    )
    expect(Either.isLeft(Effect.runSync(Effect.either(parseRegistryUrl("https://x/y", "x"))))).toBe(true)
  })

  it("uploads blobs (once) and a manifest by tag, reads them back with their digests checked", async () => {
    const client = clientFor(registry)
    const tree = new TextEncoder().encode("tree bytes ".repeat(1000))
    const meta = new TextEncoder().encode('{"version":1}')
    expect(await Effect.runPromise(client.hasBlob(digestOf(tree)))).toBe(false)
    await Effect.runPromise(client.ensureEmptyConfig)
    await Effect.runPromise(client.uploadBlob(digestOf(tree), tree.length, tree))
    await Effect.runPromise(client.uploadBlob(digestOf(tree), tree.length, tree))
    await Effect.runPromise(client.uploadBlob(digestOf(meta), meta.length, meta))
    expect(await Effect.runPromise(client.hasBlob(digestOf(tree)))).toBe(true)
    const manifest = makeManifest({
      key: "k1",
      kind: "make-image",
      treeDigest: "abc",
      tree: { digest: digestOf(tree), size: tree.length },
      metadata: { digest: digestOf(meta), size: meta.length },
    })
    const bytes = new TextEncoder().encode(JSON.stringify(manifest))
    await Effect.runPromise(client.putManifest("k1", bytes))
    expect(await Effect.runPromise(client.hasManifest("k1"))).toBe(true)
    expect(await Effect.runPromise(client.hasManifest("k2"))).toBe(false)
    expect(await Effect.runPromise(client.getManifest("k1"))).toEqual(bytes)
    expect(await Effect.runPromise(client.getManifest("k2"))).toBeUndefined()
    expect(await Effect.runPromise(client.listTags)).toEqual(["k1"])
    const file = join(dir, "tree")
    await Effect.runPromise(
      client.downloadBlob({ mediaType: "x", digest: digestOf(tree), size: tree.length }, file),
    )
    expect(new Uint8Array(readFileSync(file))).toEqual(tree)
    // A descriptor that promises more bytes than the registry holds: refused.
    const wrong = await run(
      client.downloadBlob({ mediaType: "x", digest: digestOf(meta), size: tree.length }, join(dir, "x")),
    )
    expect(code(wrong)).toBe("cache_entry_truncated")
    const short = await run(client.getBlob({ mediaType: "x", digest: digestOf(tree), size: tree.length + 5 }))
    expect(code(short)).toBe("cache_entry_truncated")
  })

  it("a registry that is down is cache_registry_unavailable", async () => {
    const client = makeRegistryClient({
      location: Effect.runSync(parseRegistryUrl("oci://127.0.0.1:9/owrt/cache", "test")),
      timeoutSeconds: 5,
    })
    expect(code(await run(client.hasManifest("k")))).toBe("cache_registry_unavailable")
  })

  it("a registry that stops answering is cache_registry_timeout", async () => {
    const server = createServer(() => {
      // never answers
    })
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    const port = (server.address() as { port: number }).port
    try {
      const client = makeRegistryClient({
        location: Effect.runSync(parseRegistryUrl(`oci://127.0.0.1:${port}/owrt/cache`, "test")),
        timeoutSeconds: 1,
      })
      expect(code(await run(client.hasManifest("k")))).toBe("cache_registry_timeout")
    } finally {
      server.closeAllConnections()
      server.close()
    }
  })
})

describe("registry authentication", () => {
  it("htpasswd (Basic): the configured user gets in, a wrong password is cache_registry_auth", async () => {
    const registry = await startRegistry({ auth: { user: "ci", password: "s3cret-pass" } })
    try {
      const blob = new TextEncoder().encode("authed")
      await Effect.runPromise(clientFor(registry).uploadBlob(digestOf(blob), blob.length, blob))
      expect(await Effect.runPromise(clientFor(registry).hasBlob(digestOf(blob)))).toBe(true)
      expect(code(await run(clientFor(registry, { password: "wrong" }).hasBlob(digestOf(blob))))).toBe(
        "cache_registry_auth",
      )
    } finally {
      await registry.stop()
    }
  })

  it("the token flow: WWW-Authenticate Bearer realm/service/scope → token → retried with it", async () => {
    const seen: Array<string> = []
    const server = createServer((req, res) => {
      const url = new URL(req.url ?? "/", "http://x")
      if (url.pathname === "/token") {
        seen.push(
          `token ${url.searchParams.get("service")} ${url.searchParams.get("scope")} ${req.headers.authorization}`,
        )
        res.setHeader("content-type", "application/json")
        res.end(JSON.stringify({ token: "tok-1" }))
        return
      }
      if (req.headers.authorization !== "Bearer tok-1") {
        res.statusCode = 401
        res.setHeader(
          "www-authenticate",
          `Bearer realm="http://127.0.0.1:${port}/token",service="test-registry",scope="repository:owrt/cache:pull"`,
        )
        res.end()
        return
      }
      seen.push(`${req.method} ${url.pathname}`)
      res.statusCode = 404
      res.end()
    })
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    const port = (server.address() as { port: number }).port
    try {
      const client = makeRegistryClient({
        location: Effect.runSync(parseRegistryUrl(`oci://127.0.0.1:${port}/owrt/cache`, "test")),
        credentials: { username: "u", password: "p" },
        timeoutSeconds: 5,
      })
      expect(await Effect.runPromise(client.hasManifest("k"))).toBe(false)
      expect(await Effect.runPromise(client.hasManifest("k2"))).toBe(false)
      expect(seen).toEqual([
        `token test-registry repository:owrt/cache:pull Basic ${Buffer.from("u:p").toString("base64")}`,
        "HEAD /v2/owrt/cache/manifests/k",
        "HEAD /v2/owrt/cache/manifests/k2",
      ])
    } finally {
      server.close()
    }
  })

  it("parses challenges", () => {
    expect(parseChallenge('Bearer realm="https://a/token",service="reg",scope="repository:x:pull"')).toEqual({
      scheme: "bearer",
      params: { realm: "https://a/token", service: "reg", scope: "repository:x:pull" },
    })
  })
})

describe("streaming a blob", () => {
  it("interrupted, it stops the download and its consumer before it returns", async () => {
    const blob = randomBytes(4 * 1024 * 1024)
    let closed = false
    // A registry that sends the blob slowly: 16 KiB every 5 ms.
    const server = createServer((_req, res) => {
      res.writeHead(200, { "content-length": String(blob.length) })
      let offset = 0
      const timer = setInterval(() => {
        if (offset >= blob.length) {
          clearInterval(timer)
          res.end()
          return
        }
        res.write(blob.subarray(offset, offset + 16384))
        offset += 16384
      }, 5)
      res.on("close", () => {
        clearInterval(timer)
        closed = true
      })
    })
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    const port = (server.address() as { port: number }).port
    const work = mkdtempSync(join(tmpdir(), "owrt-stream-"))
    try {
      const client = makeRegistryClient({
        location: Effect.runSync(parseRegistryUrl(`oci://127.0.0.1:${port}/owrt/cache`, "test")),
        timeoutSeconds: 5,
      })
      const file = join(work, "blob")
      let written = 0
      // A consumer that writes what it reads into a file, as the unpack does into its directory.
      const consume = (input: Readable) =>
        Effect.async<void, Error>((resume) => {
          input.on("data", (chunk: Buffer) => {
            appendFileSync(file, chunk)
            written += chunk.length
          })
          input.on("end", () => resume(Effect.void))
          input.on("error", (error) => resume(Effect.fail(error)))
        })
      const fiber = Effect.runFork(
        client.streamBlob(
          { mediaType: "application/octet-stream", digest: digestOf(blob), size: blob.length },
          consume,
        ),
      )
      while (written < 64 * 1024) await new Promise((resolve) => setTimeout(resolve, 5))
      await Effect.runPromise(Fiber.interrupt(fiber))
      const atReturn = written
      await new Promise((resolve) => setTimeout(resolve, 200))
      expect(written).toBe(atReturn)
      expect(atReturn).toBeLessThan(blob.length)
      expect(statSync(file).size).toBe(atReturn)
      expect(closed).toBe(true)
    } finally {
      server.closeAllConnections()
      server.close()
      rmSync(work, { recursive: true, force: true })
    }
  })
})
