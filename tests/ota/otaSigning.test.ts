import { execFileSync } from "node:child_process"
import { createHash, generateKeyPairSync } from "node:crypto"
import { readFileSync, statSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { crc32 } from "node:zlib"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { buildMirror, serveMirror } from "../fixtures/mirror/index.js"
import { type ErrorDocument, json, makeProject, owrt } from "../helpers/cli.js"
import { freePort } from "../helpers/freePort.js"
import { pushFirmware, startRegistry, type TestRegistry } from "../helpers/registry.js"
import { ap, rawRequest, type ServeProcess, startServe } from "../web/serveProcess.js"
import { harborPush, type Published } from "./published.js"

/*
 * Releases signed cosign-style (ota.md §3) and served only when signed; releases kept in the local store for
 * a single machine. One project: the local-store half runs first (no `ota.registry`), then graph.config.ts
 * gains the `ota` section.
 */

interface SignatureManifest {
  readonly config: { readonly mediaType: string; readonly digest: string }
  readonly layers: ReadonlyArray<{
    readonly mediaType: string
    readonly digest: string
    readonly annotations?: Record<string, string>
  }>
}

const manifestAccept = { accept: "application/vnd.oci.image.manifest.v1+json" }

describe("OTA signatures and local releases", () => {
  let registry: TestRegistry
  let mirror: { url: string; close: () => Promise<void> }
  let keyring: string
  let project: ReturnType<typeof makeProject>
  let image: Buffer
  const servers: Array<ServeProcess> = []
  const env = () => ({ OWRT_UPSTREAM: mirror.url, OWRT_KEYRING: keyring })
  const run = (args: Array<string>) => owrt(args, { cwd: project.dir, env: env() })
  const serve = async (args: Array<string>) => {
    const server = await startServe(args, { cwd: project.dir, env: env(), command: ["ota", "serve"] })
    servers.push(server)
    return server
  }

  beforeAll(async () => {
    registry = await startRegistry()
    const built = await buildMirror()
    keyring = built.keyring
    mirror = await serveMirror(built.root)
    project = makeProject({ "profiles/hive-ap.yaml": ap("tplink_archer-c7-v5") })
    const realized = await run(["realize", "hive-ap", "--json"])
    expect(realized.code, realized.stderr).toBe(0)
  }, 300_000)
  afterAll(async () => {
    for (const server of servers) await server.stop()
    await registry?.stop()
    await mirror?.close()
    project?.cleanup()
  })

  it("without a registry, publish keeps the release in the local store and ota serve serves it from there", async () => {
    const result = await run(["publish", "hive-ap", "--version", "0.9.0", "--json"])
    expect(result.code, result.stdout + result.stderr).toBe(0)
    const published = json<Published>(result)
    expect(published).toMatchObject({
      repository: "local/hive-ap",
      status: "published",
      manifestDigest: null,
      signature: { status: "off", tag: null },
    })
    const stored = json<{ path: string }>(await run(["store", "path", "hive-ap", "--json"])).path
    image = readFileSync(join(stored, "images", published.image))
    // Another image under the same version is refused, as in a registry.
    const other = await run(["publish", "hive-ap", "--version", "0.9.0", "--image", "factory", "--json"])
    expect(other.code).toBe(6)
    expect(json<ErrorDocument>(other).error.code).toBe("ota_version_taken")

    const server = await serve([])
    const version = await rawRequest(server.url, "/version?device=hive-ap")
    expect(version.status).toBe(200)
    expect(version.body.toString()).toBe(`0.9.0\n${crc32(image) >>> 0}\n${image.length}`)
    const firmware = await rawRequest(server.url, "/firmware?device=hive-ap")
    expect(firmware.status).toBe(200)
    expect(firmware.body.equals(image)).toBe(true)
    expect(firmware.headers.etag).toBe(`"${published.sha256}"`)
    expect((await rawRequest(server.url, "/version?device=other")).status).toBe(404)
  })

  it("a registry that is down is a 502 that says so, not 'no firmware'", async () => {
    const port = await freePort()
    const server = await serve(["--registry", `oci://127.0.0.1:${port}`])
    const answer = await rawRequest(server.url, "/version?device=hive-ap")
    expect(answer.status).toBe(502)
    expect(answer.body.toString()).toMatch(/^registry error: /)
  })

  describe("with ota.registry, ota.signingKey and ota.publicKey in graph.config.ts", () => {
    let published: Published
    let server: ServeProcess
    let metricsPort = 0
    const manifestOf = async (repository: string, tag: string) =>
      (await (
        await fetch(`${registry.url}/v2/${repository}/manifests/${tag}`, { headers: manifestAccept })
      ).json()) as SignatureManifest
    const blobOf = async (repository: string, digest: string) =>
      Buffer.from(await (await fetch(`${registry.url}/v2/${repository}/blobs/${digest}`)).arrayBuffer())

    beforeAll(async () => {
      const keygen = await run(["ota", "keygen", "release", "--dir", "keys", "--json"])
      expect(keygen.code, keygen.stderr).toBe(0)
      writeFileSync(
        join(project.dir, "graph.config.ts"),
        `import { defineConfig } from "owrt/config"
export default defineConfig({
  ota: {
    registry: "oci://${registry.host}",
    prefix: "fw/",
    signingKey: "file:keys/release.key",
    publicKey: "keys/release.pub",
  },
})
`,
      )
      const result = await run(["publish", "hive-ap", "--version", "1.0.0", "--json"])
      expect(result.code, result.stdout + result.stderr).toBe(0)
      published = json<Published>(result)
      metricsPort = await freePort()
      server = await serve(["--tag-ttl", "0", "--metrics-port", String(metricsPort)])
    }, 120_000)

    it("ota keygen writes an ECDSA P-256 key pair in PEM, the private key 0600, and never overwrites", async () => {
      const key = readFileSync(join(project.dir, "keys", "release.key"), "utf8")
      expect(key).toMatch(/^-----BEGIN PRIVATE KEY-----\n/)
      expect(statSync(join(project.dir, "keys", "release.key")).mode & 0o777).toBe(0o600)
      const pub = readFileSync(join(project.dir, "keys", "release.pub"), "utf8")
      expect(pub).toMatch(/^-----BEGIN PUBLIC KEY-----\n/)
      expect(
        execFileSync("openssl", ["pkey", "-pubin", "-noout", "-text"], { input: pub }).toString(),
      ).toMatch(/prime256v1|P-256/)
      const again = await run(["ota", "keygen", "release", "--dir", "keys", "--json"])
      expect(again.code).toBe(2)
      expect(readFileSync(join(project.dir, "keys", "release.key"), "utf8")).toBe(key)
    })

    it("publish signs the release as cosign does: the .sig tag, the simple-signing payload, the signature openssl verifies", async () => {
      expect(published.repository).toBe(`oci://${registry.host}/fw/hive-ap`)
      const manifestBytes = Buffer.from(
        await (
          await fetch(`${registry.url}/v2/fw/hive-ap/manifests/1.0.0`, { headers: manifestAccept })
        ).arrayBuffer(),
      )
      const digest = `sha256:${createHash("sha256").update(manifestBytes).digest("hex")}`
      expect(published.manifestDigest).toBe(digest)
      const tag = `sha256-${digest.slice(7)}.sig`
      expect(published.signature).toEqual({ status: "signed", tag })

      const signature = await manifestOf("fw/hive-ap", tag)
      expect(signature.config.mediaType).toBe("application/vnd.oci.image.config.v1+json")
      expect(signature.layers).toHaveLength(1)
      const layer = signature.layers[0]
      expect(layer?.mediaType).toBe("application/vnd.dev.cosign.simplesigning.v1+json")
      const payload = await blobOf("fw/hive-ap", layer?.digest ?? "")
      expect(JSON.parse(payload.toString())).toEqual({
        critical: {
          identity: { "docker-reference": `${registry.host}/fw/hive-ap` },
          image: { "docker-manifest-digest": digest },
          type: "cosign container image signature",
        },
        optional: null,
      })
      // An independent check: openssl verifies the base64 DER ECDSA signature over the payload bytes.
      const dir = project.dir
      writeFileSync(join(dir, "payload.json"), payload)
      writeFileSync(
        join(dir, "payload.sig"),
        Buffer.from(layer?.annotations?.["dev.cosignproject.cosign/signature"] ?? "", "base64"),
      )
      const verified = execFileSync("openssl", [
        "dgst",
        "-sha256",
        "-verify",
        join(dir, "keys", "release.pub"),
        "-signature",
        join(dir, "payload.sig"),
        join(dir, "payload.json"),
      ]).toString()
      expect(verified.trim()).toBe("Verified OK")

      // Publishing the same release again leaves the signature as it is.
      const again = json<Published>(await run(["publish", "hive-ap", "--version", "1.0.0", "--json"]))
      expect(again).toMatchObject({ status: "present", signature: { status: "present", tag } })
      expect((await manifestOf("fw/hive-ap", tag)).layers).toHaveLength(1)
    })

    it("serves a signed release, checked against ota.publicKey", async () => {
      const version = await rawRequest(server.url, "/version?device=hive-ap")
      expect(version.status).toBe(200)
      expect(version.body.toString()).toBe(`1.0.0\n${crc32(image) >>> 0}\n${image.length}`)
      const firmware = await rawRequest(server.url, "/firmware?device=hive-ap")
      expect(firmware.status).toBe(200)
      expect(firmware.body.equals(image)).toBe(true)
    })

    it("refuses an unsigned release, one whose signature binds another release, and one signed by another key: 502, not 'no firmware'", async () => {
      // Unsigned: pushed around owrt, as ORAS would.
      const digest = await pushFirmware(registry, "fw/hive-ap", "1.1.0", Buffer.from("firmware 1.1.0"))
      const unsigned = await rawRequest(server.url, "/version?device=hive-ap")
      expect(unsigned.status).toBe(502)
      expect(unsigned.body.toString()).toMatch(
        /^release 1\.1\.0 of device 'hive-ap' is not served: .* is not signed/,
      )
      expect((await rawRequest(server.url, "/firmware?device=hive-ap")).status).toBe(502)

      // Tampered: 1.0.0's valid signature copied to 1.1.0's signature tag binds 1.0.0, not 1.1.0.
      const valid = await fetch(`${registry.url}/v2/fw/hive-ap/manifests/${published.signature.tag ?? ""}`, {
        headers: manifestAccept,
      })
      const put = await fetch(`${registry.url}/v2/fw/hive-ap/manifests/sha256-${digest.slice(7)}.sig`, {
        method: "PUT",
        headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" },
        body: Buffer.from(await valid.arrayBuffer()),
      })
      expect(put.status).toBe(201)
      const tampered = await rawRequest(server.url, "/firmware?device=hive-ap")
      expect(tampered.status).toBe(502)
      expect(tampered.body.toString()).toMatch(/has no valid signature: the signed payload binds sha256:/)

      // Signed, but with a key the server does not trust.
      const other = generateKeyPairSync("ec", { namedCurve: "prime256v1" })
      writeFileSync(
        join(project.dir, "keys", "other.key"),
        other.privateKey.export({ format: "pem", type: "pkcs8" }),
      )
      const signed = await run([
        "publish",
        "hive-ap",
        "--version",
        "2.0.0",
        "--device",
        "hive-ap-b",
        "--signing-key",
        "file:keys/other.key",
        "--json",
      ])
      expect(signed.code, signed.stderr).toBe(0)
      expect(json<Published>(signed).signature.status).toBe("signed")
      const untrusted = await rawRequest(server.url, "/version?device=hive-ap-b")
      expect(untrusted.status).toBe(502)
      expect(untrusted.body.toString()).toMatch(/does not verify with the configured public key/)

      const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()
      const value = (line: string) =>
        Number(new RegExp(`^${line.replace(/[{}]/g, "\\$&")} (\\S+)$`, "m").exec(metrics)?.[1] ?? Number.NaN)
      expect(
        value('ota_signature_failures_total{device_id="hive-ap",code="ota_signature_missing"}'),
      ).toBeGreaterThanOrEqual(1)
      expect(
        value('ota_signature_failures_total{device_id="hive-ap",code="ota_signature_invalid"}'),
      ).toBeGreaterThanOrEqual(1)
      expect(
        value('ota_signature_failures_total{device_id="hive-ap-b",code="ota_signature_invalid"}'),
      ).toBeGreaterThanOrEqual(1)
      // Releases this database recorded: 0.9.0 (local), 1.0.0 and hive-ap-b's 2.0.0.
      expect(value("ota_releases_published")).toBe(3)
    })

    it("the Harbor webhook works without a notifier: 200, nothing announced, nothing fails", async () => {
      const push = harborPush("hive-ap", "1.0.0")
      const answer = await rawRequest(server.url, "/webhooks/harbor", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(push),
      })
      expect(answer.status).toBe(200)
      expect((await rawRequest(server.url, "/health")).status).toBe(200)
    })

    it("a signing key that is not ECDSA P-256 publishes nothing: ota_key_invalid", async () => {
      const ed = generateKeyPairSync("ed25519")
      writeFileSync(
        join(project.dir, "keys", "ed.key"),
        ed.privateKey.export({ format: "pem", type: "pkcs8" }),
      )
      const result = await run([
        "publish",
        "hive-ap",
        "--version",
        "3.0.0",
        "--signing-key",
        "file:keys/ed.key",
        "--json",
      ])
      expect(result.code).toBe(6)
      expect(json<ErrorDocument>(result).error.code).toBe("ota_key_invalid")
      const tags = (await (await fetch(`${registry.url}/v2/fw/hive-ap/tags/list`)).json()) as {
        tags: Array<string>
      }
      expect(tags.tags).not.toContain("3.0.0")
    })
  })
})
