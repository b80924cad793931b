import { chmodSync, readdirSync, statSync } from "node:fs"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { json, owrt } from "../helpers/cli.js"
import { ap, servedProject, startServe } from "./serveProcess.js"

interface Realized {
  readonly results: ReadonlyArray<{
    readonly key: string
    readonly storePath: string
    readonly artifacts: ReadonlyArray<{ name: string; path: string }>
  }>
}

const wifiKey = "correct horse battery staple"

/*
 * An image built from an overlay that used a secret holds that secret (here a Wi-Fi key in a first-boot
 * script): its store paths are owner-only, and the HTTP API serves them only behind a token.
 */
describe("store paths that hold secrets", () => {
  let project: Awaited<ReturnType<typeof servedProject>>
  let secretBuild: Realized["results"][number]
  let plainBuild: Realized["results"][number]
  const env = () => ({ ...project.env, WIFI_KEY: wifiKey })
  const realize = async (profile: string) => {
    const result = await owrt(["realize", profile, "--json"], { cwd: project.dir, env: env() })
    expect(result.code, result.stderr).toBe(0)
    return json<Realized>(result).results[0] as Realized["results"][number]
  }
  const storeDirs = () => {
    const store = join(project.dir, "store")
    return readdirSync(store)
      .filter((name) => /^[0-9a-f]{16}-/.test(name))
      .map((name) => ({ name, mode: statSync(join(store, name)).mode & 0o777 }))
  }

  beforeAll(async () => {
    project = await servedProject({
      "profiles/secret.yaml": ap(
        "tplink_archer-c7-v5",
        // owrt's own placeholder syntax, not a template string
        `secrets: {wifi: env:WIFI_KEY}\nfirst_boot: [{name: 90-wifi, script: "uci set wireless.k='${"$"}{secret:wifi}'"}]\n`,
      ),
      "profiles/plain.yaml": ap("tplink_archer-c7-v5", "files: [{path: /etc/banner, content: hi}]\n"),
    })
    secretBuild = await realize("secret")
    plainBuild = await realize("plain")
  })
  afterAll(async () => {
    await project?.cleanup()
  })

  it("are readable by their owner only; others are read-only for everyone", () => {
    const dirs = storeDirs()
    const secret = dirs.filter((d) => d.name.includes("-secret-") || d.name.endsWith("-overlay"))
    expect(dirs.find((d) => d.name.endsWith("-secret-image"))?.mode).toBe(0o500)
    expect(dirs.find((d) => d.name.endsWith("-secret-artifacts"))?.mode).toBe(0o500)
    expect(secret.length).toBeGreaterThanOrEqual(3)
    expect(dirs.find((d) => d.name.endsWith("-plain-image"))?.mode).toBe(0o555)
    expect(dirs.find((d) => d.name.endsWith("-plain-artifacts"))?.mode).toBe(0o555)
  })

  it("an older store's secret path is made owner-only when it is next used", async () => {
    chmodSync(secretBuild.storePath, 0o755)
    const again = await realize("secret")
    expect(again.storePath).toBe(secretBuild.storePath)
    expect(statSync(secretBuild.storePath).mode & 0o777).toBe(0o500)
  })

  it("are not served by a loopback server without a token; other artifacts are", async () => {
    const server = await startServe([], { cwd: project.dir, env: env() })
    try {
      const image = secretBuild.artifacts[0]?.name ?? ""
      const refused = await fetch(`${server.url}/api/artifacts/${secretBuild.key}/${image}`)
      expect(refused.status).toBe(403)
      const body = (await refused.json()) as { error: { code: string; message: string } }
      expect(body.error.code).toBe("store_path_private")
      expect(body.error.message).toContain("--token")
      const storeName = secretBuild.storePath.split("/").pop()
      const viaStore = await fetch(`${server.url}/api/store/${storeName}/images/${image}`)
      expect(viaStore.status).toBe(403)
      const plainImage = plainBuild.artifacts[0]?.name ?? ""
      expect((await fetch(`${server.url}/api/artifacts/${plainBuild.key}/${plainImage}`)).status).toBe(200)
    } finally {
      await server.stop()
    }
  })

  it("are served with the token by a server that requires one", async () => {
    const server = await startServe([], {
      cwd: project.dir,
      env: { ...env(), OWRT_SERVE_TOKEN: "t0ken-for-test" },
    })
    try {
      const image = secretBuild.artifacts[0]?.name ?? ""
      const url = `${server.url}/api/artifacts/${secretBuild.key}/${image}`
      expect((await fetch(url)).status).toBe(401)
      const served = await fetch(url, { headers: { authorization: "Bearer t0ken-for-test" } })
      expect(served.status).toBe(200)
      expect((await served.arrayBuffer()).byteLength).toBeGreaterThan(0)
    } finally {
      await server.stop()
    }
  })
})
