import { createHash } from "node:crypto"
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { crc32 } from "node:zlib"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { buildMirror, serveMirror } from "../fixtures/mirror/index.js"
import { type ErrorDocument, json, makeProject, owrt } from "../helpers/cli.js"
import { freePort } from "../helpers/freePort.js"
import { startBroker, type TestBroker } from "../helpers/mosquitto.js"
import {
  type BlobCountingProxy,
  pushFirmware,
  startBlobCountingProxy,
  startRegistry,
  type TestRegistry,
} from "../helpers/registry.js"
import { ap, rawRequest, type ServeProcess, startServe } from "../web/serveProcess.js"
import { harborPush, type Published } from "./published.js"

describe("OTA: owrt publish and owrt ota serve (OtaFlux's device protocol) against a real registry", () => {
  let registry: TestRegistry
  let broker: TestBroker
  let mirror: { url: string; close: () => Promise<void> }
  let keyring: string
  let project: ReturnType<typeof makeProject>
  let server: ServeProcess
  let metricsPort = 0
  let proxy: BlobCountingProxy
  let published: Published
  let image: Buffer
  const env = () => ({ OWRT_UPSTREAM: mirror.url, OWRT_KEYRING: keyring, OWRT_OTA_PREFIX: "fw/" })
  const run = (args: Array<string>) => owrt(args, { cwd: project.dir, env: env() })

  beforeAll(async () => {
    registry = await startRegistry()
    broker = await startBroker()
    const built = await buildMirror()
    keyring = built.keyring
    mirror = await serveMirror(built.root)
    project = makeProject({ "profiles/hive-ap.yaml": ap("tplink_archer-c7-v5") })
    // The server reaches the registry through a proxy that counts blob downloads.
    proxy = await startBlobCountingProxy(registry.url)
    const realized = await run(["realize", "hive-ap", "--json"])
    expect(realized.code, realized.stderr).toBe(0)
    const result = await run([
      "publish",
      "hive-ap",
      "--version",
      "1.0.0",
      "--registry",
      `oci://${registry.host}`,
      "--json",
    ])
    expect(result.code, result.stdout + result.stderr).toBe(0)
    published = json<Published>(result)
    const store = json<{ results: Array<{ storePath: string }> }>(realized).results[0]?.storePath ?? ""
    image = readFileSync(join(store, "images", published.image))
    metricsPort = await freePort()
    server = await startServe(
      [
        "--registry",
        `oci://${proxy.host}`,
        "--tag-ttl",
        "0",
        "--mqtt-url",
        broker.url,
        "--metrics-port",
        String(metricsPort),
      ],
      {
        cwd: project.dir,
        env: env(),
        command: ["ota", "serve"],
      },
    )
  }, 300_000)
  afterAll(async () => {
    await server?.stop()
    proxy?.close()
    await registry?.stop()
    await broker?.stop()
    await mirror?.close()
    project?.cleanup()
  })

  it("publishes the sysupgrade image once per version: the same bytes again are present, other bytes refused", async () => {
    expect(published).toMatchObject({ device: "hive-ap", version: "1.0.0", status: "published" })
    expect(published.image).toMatch(/sysupgrade/)
    expect(published.sha256).toBe(createHash("sha256").update(image).digest("hex"))
    const manifest = (await (
      await fetch(`${registry.url}/v2/fw/hive-ap/manifests/1.0.0`, {
        headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
      })
    ).json()) as { layers: Array<{ digest: string }>; annotations: Record<string, string> }
    expect(manifest.layers[0]?.digest).toBe(`sha256:${published.sha256}`)
    expect(manifest.annotations).toMatchObject({
      "org.owrt.profile": "hive-ap",
      "org.owrt.sha256": published.sha256,
      "org.opencontainers.image.version": "1.0.0",
    })
    const again = await run([
      "publish",
      "hive-ap",
      "--version",
      "1.0.0",
      "--registry",
      `oci://${registry.host}`,
      "--json",
    ])
    expect(json<Published>(again).status).toBe("present")
    // Another image of the same profile under the same version is refused.
    const other = await run([
      "publish",
      "hive-ap",
      "--version",
      "1.0.0",
      "--image",
      "factory",
      "--registry",
      `oci://${registry.host}`,
      "--json",
    ])
    expect(other.code).toBe(6)
    expect(json<ErrorDocument>(other).error.code).toBe("ota_version_taken")
  })

  it("answers /version and /firmware as OtaFlux, and /health", async () => {
    const health = await rawRequest(server.url, "/health")
    expect(health.status).toBe(200)
    const version = await rawRequest(server.url, "/version?device=hive-ap")
    expect(version.status).toBe(200)
    expect(version.headers["content-type"]).toMatch(/^text\/plain/)
    expect(version.body.toString()).toBe(`1.0.0\n${crc32(image) >>> 0}\n${image.length}`)
    const firmware = await rawRequest(server.url, "/firmware?device=hive-ap")
    expect(firmware.status).toBe(200)
    expect(firmware.headers["content-type"]).toBe("application/octet-stream")
    expect(firmware.body.equals(image)).toBe(true)
    expect(firmware.headers["content-length"]).toBe(String(image.length))
    expect(firmware.headers["content-disposition"]).toBe('attachment; filename="hive-ap-1.0.0.bin"')
  })

  it("says which parameter is missing (400) and that there is no firmware (404), in OtaFlux's words", async () => {
    for (const path of ["/version", "/version?device=", "/firmware"]) {
      const r = await rawRequest(server.url, path)
      expect(r.status, path).toBe(400)
      expect(r.body.toString()).toBe("Missing required query parameter: 'device'")
    }
    const none = await rawRequest(server.url, "/version?device=no-such-device")
    expect(none.status).toBe(404)
    expect(none.body.toString()).toBe("No firmware for device 'no-such-device'")
    expect((await rawRequest(server.url, "/firmware?device=no-such-device")).status).toBe(404)
  })

  it("serves the highest semantic version: non-semver tags ignored, v-prefixed accepted, pre-releases on their channel", async () => {
    const repo = "fw/esp-sensor"
    await pushFirmware(registry, repo, "1.2.0", Buffer.from("firmware 1.2.0"))
    await pushFirmware(registry, repo, "1.10.0-beta.1", Buffer.from("firmware 1.10.0-beta.1"))
    await pushFirmware(registry, repo, "v1.9.0", Buffer.from("firmware 1.9.0"))
    await pushFirmware(registry, repo, "latest", Buffer.from("not a version"))
    await pushFirmware(registry, repo, "1.3", Buffer.from("not semver either"))
    const stable = await rawRequest(server.url, "/version?device=esp-sensor")
    expect(stable.body.toString().split("\n")[0]).toBe("1.9.0")
    expect((await rawRequest(server.url, "/firmware?device=esp-sensor")).body.toString()).toBe(
      "firmware 1.9.0",
    )
    const beta = await rawRequest(server.url, "/version?device=esp-sensor&channel=beta")
    expect(beta.body.toString().split("\n")[0]).toBe("1.10.0-beta.1")
  })

  it("Range, ETag and If-None-Match: 206, 416, 304; current= answers 204 when up to date", async () => {
    const full = await rawRequest(server.url, "/firmware?device=hive-ap")
    const etag = String(full.headers.etag)
    expect(etag).toBe(`"${published.sha256}"`)
    const part = await rawRequest(server.url, "/firmware?device=hive-ap", {
      headers: { range: "bytes=100-199" },
    })
    expect(part.status).toBe(206)
    expect(part.headers["content-range"]).toBe(`bytes 100-199/${image.length}`)
    expect(part.body.equals(image.subarray(100, 200))).toBe(true)
    const resume = await rawRequest(server.url, "/firmware?device=hive-ap", {
      headers: { range: "bytes=1000-" },
    })
    expect(resume.body.equals(image.subarray(1000))).toBe(true)
    const beyond = await rawRequest(server.url, "/firmware?device=hive-ap", {
      headers: { range: `bytes=${image.length}-` },
    })
    expect(beyond.status).toBe(416)
    expect(beyond.headers["content-range"]).toBe(`bytes */${image.length}`)
    const same = await rawRequest(server.url, "/firmware?device=hive-ap", {
      headers: { "if-none-match": etag },
    })
    expect(same.status).toBe(304)
    expect(same.body.length).toBe(0)
    expect((await rawRequest(server.url, "/version?device=hive-ap&current=1.0.0")).status).toBe(204)
    expect((await rawRequest(server.url, "/firmware?device=hive-ap&current=v1.0.0")).status).toBe(204)
    expect((await rawRequest(server.url, "/version?device=hive-ap&current=0.9.0")).status).toBe(200)
  })

  it("records what each device reports it runs: owrt ota devices lists it, up to date or not", async () => {
    expect((await rawRequest(server.url, "/version?device=hive-ap&current=0.9.0")).status).toBe(200)
    expect((await rawRequest(server.url, "/version?device=esp-sensor&current=v1.9.0")).status).toBe(204)
    const listed = json<{
      devices: ReadonlyArray<{
        device: string
        version: string
        latest: string | null
        upToDate: boolean
        address: string | null
      }>
    }>(await run(["ota", "devices", "--json"]))
    expect(listed.devices.find((d) => d.device === "hive-ap")).toMatchObject({
      version: "0.9.0",
      latest: "1.0.0",
      upToDate: false,
      address: expect.stringContaining("127.0.0.1"),
    })
    expect(listed.devices.find((d) => d.device === "esp-sensor")).toMatchObject({
      version: "1.9.0",
      upToDate: true,
    })
    // A later report replaces the earlier one.
    expect((await rawRequest(server.url, "/firmware?device=hive-ap&current=1.0.0")).status).toBe(204)
    const again = json<{ devices: ReadonlyArray<{ device: string; version: string; upToDate: boolean }> }>(
      await run(["ota", "devices", "--json"]),
    )
    expect(again.devices.find((d) => d.device === "hive-ap")).toMatchObject({
      version: "1.0.0",
      upToDate: true,
    })
  })

  it("50 devices asking at once for a release not yet in memory: one registry download", async () => {
    const bytes = Buffer.alloc(2 * 1024 * 1024, 0x42)
    bytes.write("herd firmware")
    await pushFirmware(registry, "fw/herd", "2.0.0", bytes)
    const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`
    const answers = await Promise.all(
      Array.from({ length: 50 }, () => rawRequest(server.url, "/firmware?device=herd")),
    )
    expect(answers.every((a) => a.status === 200 && a.body.equals(bytes))).toBe(true)
    expect(proxy.gets.get(digest)).toBe(1)
    // Later ones come from memory too.
    await rawRequest(server.url, "/version?device=herd")
    expect(proxy.gets.get(digest)).toBe(1)
  })

  it("publish announces the release over MQTT, retained: a device subscribing later still gets it", async () => {
    const result = await run([
      "publish",
      "hive-ap",
      "--version",
      "2.0.0",
      "--device",
      "hive-notify",
      "--registry",
      `oci://${registry.host}`,
      "--mqtt-url",
      broker.url,
      "--json",
    ])
    expect(result.code, result.stderr).toBe(0)
    const out = json<Published & { notice: { status: string; topic: string } }>(result)
    expect(out.notice).toMatchObject({ status: "sent", topic: "firmware/hive-notify" })
    // Subscribed only now: the broker kept the notice.
    const message = await broker.firstMessage("firmware/hive-notify")
    expect(message.retain).toBe(true)
    expect(JSON.parse(message.payload)).toEqual({
      version: "2.0.0",
      size: image.length,
      sha256: published.sha256,
      channel: "stable",
    })
    // A broker that is down: the release is published all the same, the notice reported as failed.
    const down = await run([
      "publish",
      "hive-ap",
      "--version",
      "2.0.1",
      "--device",
      "hive-notify",
      "--registry",
      `oci://${registry.host}`,
      "--mqtt-url",
      "mqtt://127.0.0.1:9",
      "--json",
    ])
    expect(down.code, down.stderr).toBe(0)
    expect(json<{ status: string; notice: { status: string } }>(down)).toMatchObject({
      status: "published",
      notice: { status: "failed" },
    })
  })

  it("serves Prometheus metrics with OtaFlux's names and owrt's additions", async () => {
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()
    const value = (line: RegExp) =>
      Number(new RegExp(`^${line.source} (\\S+)$`, "m").exec(text)?.[1] ?? Number.NaN)
    expect(value(/firmware_cache_entries/)).toBeGreaterThanOrEqual(1)
    // The herd's 50 requests and the /version after them: each a hit or a miss (a miss fetched or waited).
    const herdMisses = value(/firmware_cache_miss_total\{device_id="herd"\}/)
    expect(herdMisses).toBeGreaterThanOrEqual(1)
    expect(herdMisses + value(/firmware_cache_hit_total\{device_id="herd"\}/)).toBe(51)
    expect(value(/firmware_cache_hit_total\{device_id="hive-ap"\}/)).toBeGreaterThanOrEqual(1)
    expect(value(/http_requests_total\{method="GET",path="\/version",status="400"\}/)).toBe(2)
    expect(value(/http_requests_total\{method="GET",path="\/firmware",status="206"\}/)).toBe(2)
    expect(text).toMatch(/^http_requests_duration_seconds_bucket\{/m)
    expect(value(/ota_not_modified_total/)).toBe(1)
    expect(value(/ota_partial_content_total/)).toBe(2)
    expect(value(/ota_devices_up_to_date_total/)).toBeGreaterThanOrEqual(3)
    expect(value(/ota_firmware_bytes_served_total/)).toBeGreaterThan(50 * 2 * 1024 * 1024)
  })

  it("a Harbor push event is announced over MQTT; other events ignored, bad JSON refused", async () => {
    const push = harborPush("hive-ap", "1.0.0")
    const post = (body: string) =>
      rawRequest(server.url, "/webhooks/harbor", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
      })
    expect((await post(JSON.stringify(push))).status).toBe(200)
    const notice = await broker.firstMessage("firmware/hive-ap")
    expect(JSON.parse(notice.payload)).toMatchObject({
      version: "1.0.0",
      size: image.length,
      sha256: published.sha256,
    })
    expect((await post(JSON.stringify({ ...push, type: "DELETE_ARTIFACT" }))).status).toBe(200)
    expect((await post("{not json")).status).toBe(400)
  })

  it("publish takes the broker from ota.mqtt in graph.config.ts, its password by reference", async () => {
    writeFileSync(
      join(project.dir, "graph.config.ts"),
      `import { defineConfig } from "owrt/config"
export default defineConfig({ ota: { mqtt: { url: "${broker.url}", topic: "fleet", username: "owrt", password: "env:TEST_MQTT_PASSWORD" } } })
`,
    )
    const result = await owrt(
      [
        "publish",
        "hive-ap",
        "--version",
        "1.0.0",
        "--device",
        "cfg-dev",
        "--registry",
        `oci://${registry.host}`,
        "--json",
      ],
      { cwd: project.dir, env: { ...env(), TEST_MQTT_PASSWORD: "broker-accepts-any-password" } },
    )
    expect(result.code, result.stderr).toBe(0)
    expect(json<{ notice: { status: string; topic: string } }>(result).notice).toMatchObject({
      status: "sent",
      topic: "fleet/cfg-dev",
    })
    const notice = await broker.firstMessage("fleet/cfg-dev")
    expect(notice.retain).toBe(true)
    expect(JSON.parse(notice.payload)).toMatchObject({ version: "1.0.0", channel: "stable" })
    // A password reference that cannot be read fails the publish before anything is pushed.
    const missing = await run([
      "publish",
      "hive-ap",
      "--version",
      "1.0.1",
      "--device",
      "cfg-dev",
      "--registry",
      `oci://${registry.host}`,
      "--json",
    ])
    expect(missing.code, `${missing.code} ${missing.stdout} ${missing.stderr}`).toBe(3)
    expect(json<ErrorDocument>(missing).error.message).toContain("TEST_MQTT_PASSWORD")
    const tags = (await (await fetch(`${registry.url}/v2/fw/cfg-dev/tags/list`)).json()) as {
      tags: Array<string>
    }
    expect(tags.tags).toEqual(["1.0.0"])
  })
})
