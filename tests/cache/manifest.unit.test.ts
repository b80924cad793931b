import { createHash } from "node:crypto"
import { Effect, Either, Schema } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  annotation,
  emptyConfig,
  fingerprintOf,
  makeManifest,
  manifestMediaType,
  NodeManifest,
} from "../../src/cache/manifest.js"
import {
  generateKeyPair,
  parsePublicKey,
  parseSecretKey,
  signEntry,
  verifyEntry,
} from "../../src/cache/signing.js"
import { startRegistry, type TestRegistry } from "../helpers/registry.js"

let registry: TestRegistry
beforeAll(async () => {
  registry = await startRegistry()
})
afterAll(() => registry?.stop())

const digestOf = (bytes: Uint8Array) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`

const putBlob = async (bytes: Uint8Array) => {
  const digest = digestOf(bytes)
  const start = await fetch(`${registry.url}/v2/owrt/nodes/blobs/uploads/`, { method: "POST" })
  const location = new URL(start.headers.get("location") ?? "", registry.url)
  location.searchParams.set("digest", digest)
  expect((await fetch(location, { method: "PUT", body: bytes })).status).toBe(201)
  return { digest, size: bytes.length }
}

describe("node manifest (OCI artifact, application/vnd.owrt.node.v1)", () => {
  it("a signed node manifest is accepted by a real registry, read back by tag and verifies", async () => {
    const pair = generateKeyPair("ci-1")
    const secret = Effect.runSync(parseSecretKey(pair.secret, "ci-1.sec"))
    const trusted = [Effect.runSync(parsePublicKey(pair.public, "ci-1.pub"))]
    await putBlob(emptyConfig)
    const tree = await putBlob(new TextEncoder().encode("pretend tar"))
    const metadata = await putBlob(new TextEncoder().encode('{"version":1}'))
    const unsigned = makeManifest({ key: "k1", kind: "image", treeDigest: tree.digest, tree, metadata })
    const signature = signEntry(secret, fingerprintOf(unsigned))
    const manifest = makeManifest({
      key: "k1",
      kind: "image",
      treeDigest: tree.digest,
      tree,
      metadata,
      signature,
    })
    const put = await fetch(`${registry.url}/v2/owrt/nodes/manifests/k1`, {
      method: "PUT",
      headers: { "content-type": manifestMediaType },
      body: JSON.stringify(manifest),
    })
    expect(put.status, await put.text()).toBe(201)

    const get = await fetch(`${registry.url}/v2/owrt/nodes/manifests/k1`, {
      headers: { accept: manifestMediaType },
    })
    expect(get.status).toBe(200)
    const decoded = Schema.decodeUnknownSync(NodeManifest)(await get.json())
    expect(decoded.artifactType).toBe("application/vnd.owrt.node.v1")
    const verify = (m: NodeManifest) =>
      Effect.runSync(
        Effect.either(verifyEntry(fingerprintOf(m), m.annotations[annotation.signature], trusted, "k1")),
      )
    expect(Either.isRight(verify(decoded))).toBe(true)
    // A tampered annotation (another tree digest) no longer verifies.
    const tampered = {
      ...decoded,
      annotations: { ...decoded.annotations, [annotation.treeDigest]: metadata.digest },
    }
    const refused = verify(tampered)
    expect(Either.isLeft(refused) && refused.left.code).toBe("cache_signature_invalid")
  })
})
