import { createHash } from "node:crypto"
import { existsSync } from "node:fs"
import { describe, expect, it } from "vitest"
import { startRegistry } from "../helpers/registry.js"

/** Uploads one blob the monolithic way (POST an upload, PUT it with the digest) and reads it back. */
const roundTrip = async (url: string, headers: Record<string, string>, body: Uint8Array) => {
  const digest = `sha256:${createHash("sha256").update(body).digest("hex")}`
  const start = await fetch(`${url}/v2/owrt/test/blobs/uploads/`, { method: "POST", headers })
  expect(start.status).toBe(202)
  const location = new URL(start.headers.get("location") ?? "", url)
  location.searchParams.set("digest", digest)
  const put = await fetch(location, {
    method: "PUT",
    headers: { ...headers, "content-type": "application/octet-stream" },
    body,
  })
  expect(put.status).toBe(201)
  const get = await fetch(`${url}/v2/owrt/test/blobs/${digest}`, { headers })
  expect(get.status).toBe(200)
  expect(new Uint8Array(await get.arrayBuffer())).toEqual(body)
}

describe("test registry (Debian docker-registry)", () => {
  it("serves the distribution API on its own port and data directory, and stops", async () => {
    const registry = await startRegistry()
    try {
      expect((await fetch(`${registry.url}/v2/`)).status).toBe(200)
      await roundTrip(registry.url, {}, new TextEncoder().encode("hello owrt"))
      expect(existsSync(`${registry.dataDir}/docker/registry/v2/blobs/sha256`)).toBe(true)
    } finally {
      await registry.stop()
    }
    await expect(fetch(`${registry.url}/v2/`)).rejects.toThrow()
    expect(existsSync(registry.dataDir)).toBe(false)
  })

  it("with htpasswd auth refuses anonymous requests and accepts the user", async () => {
    const registry = await startRegistry({ auth: { user: "ci", password: "s3cret" } })
    try {
      const anonymous = await fetch(`${registry.url}/v2/`)
      expect(anonymous.status).toBe(401)
      expect(anonymous.headers.get("www-authenticate")).toMatch(/^Basic realm="owrt-test"/)
      const basic = { authorization: `Basic ${Buffer.from("ci:s3cret").toString("base64")}` }
      expect((await fetch(`${registry.url}/v2/`, { headers: basic })).status).toBe(200)
      await roundTrip(registry.url, basic, new Uint8Array([0, 1, 2, 255]))
    } finally {
      await registry.stop()
    }
  })
})
