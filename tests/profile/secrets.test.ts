import { execFileSync } from "node:child_process"
import { createHash } from "node:crypto"
import { readdirSync, readFileSync, truncateSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  maxSecretBytes,
  minSecretLength,
  readSecret,
  redactSecrets,
  secretFingerprint,
} from "../../src/profile/secrets.js"
import { storeSealingKey } from "../../src/store/sealingKey.js"
import { buildMirror, serveMirror } from "../fixtures/mirror/index.js"
import { type ErrorDocument, json, makeProject, owrt } from "../helpers/cli.js"

const wifiKey = "correct horse battery staple"
const wgKey = "wg-private-QmFzZTY0S2V5SGVyZQ=="

describe("secrets", () => {
  const project = makeProject({
    "profiles/ap.yaml": [
      'release: "23.05.5"',
      "target: ath79/generic",
      "device: tplink_archer-c7-v5",
      "secrets:",
      "  wifi_key: env:TEST_WIFI_KEY",
      "  wg_private: file:../wg.key",
      "files:",
      "  - path: /etc/wireguard/private.key",
      "    secret: wg_private",
      "first_boot:",
      "  - name: 90-wifi",
      "    script: |",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: owrt's own secret placeholder, not a template
      "      uci set wireless.default_radio0.key='${secret:wifi_key}'",
      "",
    ].join("\n"),
    "wg.key": `${wgKey}\n`,
  })
  afterAll(() => project.cleanup())

  it("never puts a secret value in command output or in the store", async () => {
    const env = { TEST_WIFI_KEY: wifiKey }
    const outputs = await Promise.all(
      [
        ["profiles", "show", "ap", "--json"],
        ["profiles", "show", "ap"],
        ["profiles", "list", "--json"],
        ["profiles", "validate"],
        ["profiles", "history", "ap", "--json"],
      ].map((args) => owrt(args, { cwd: project.dir, env })),
    )
    for (const result of outputs) {
      expect(result.code, result.stderr).toBe(0)
      expect(result.stdout + result.stderr).not.toContain(wifiKey)
      expect(result.stdout + result.stderr).not.toContain(wgKey)
    }
    const shown = JSON.parse(outputs[0]?.stdout ?? "{}") as { profile: { secrets: Record<string, string> } }
    expect(shown.profile.secrets).toEqual({ wg_private: "file:../wg.key", wifi_key: "env:TEST_WIFI_KEY" })
    const storeDir = join(project.dir, "store")
    for (const name of readdirSync(storeDir)) {
      if (name.startsWith("owrt.db")) {
        const bytes = readFileSync(join(storeDir, name)).toString("latin1")
        expect(bytes).not.toContain(wifiKey)
        expect(bytes).not.toContain(wgKey)
      }
    }
  })

  it("a changed secret value does not change the revision (values are not profile content)", async () => {
    const a = await owrt(["profiles", "show", "ap", "--json"], {
      cwd: project.dir,
      env: { TEST_WIFI_KEY: "one" },
    })
    const b = await owrt(["profiles", "show", "ap", "--json"], {
      cwd: project.dir,
      env: { TEST_WIFI_KEY: "two" },
    })
    expect(JSON.parse(a.stdout).revision.hash).toBe(JSON.parse(b.stdout).revision.hash)
  })

  it("fingerprints change with the value but reveal nothing without the store's sealing key", async () => {
    const sealingKey = await Effect.runPromise(storeSealingKey(join(project.dir, "store")))
    expect(sealingKey.length).toBe(32)
    const one = secretFingerprint(sealingKey, "wifi_key", "hunter22")
    const two = secretFingerprint(sealingKey, "wifi_key", "hunter23")
    expect(one).not.toBe(two)
    expect(one).toMatch(/^[0-9a-f]{64}$/)
    // Not a plain hash of the value: a short secret cannot be brute-forced from the fingerprint alone.
    expect(one).not.toBe(createHash("sha256").update("hunter22").digest("hex"))
    const otherStore = secretFingerprint(new Uint8Array(32).fill(7), "wifi_key", "hunter22")
    expect(otherStore).not.toBe(one)
    // The same store keeps its key: fingerprints are stable across runs.
    const again = await Effect.runPromise(storeSealingKey(join(project.dir, "store")))
    expect(secretFingerprint(again, "wifi_key", "hunter22")).toBe(one)
  })

  it("reads env: and file: references, and says which one is missing", async () => {
    const read = (reference: string, env: Record<string, string> = {}) =>
      Effect.runPromise(
        Effect.either(
          readSecret({ profile: "ap", name: "k", reference, baseDir: join(project.dir, "profiles"), env }),
        ),
      )
    expect(await read("env:X", { X: "v4lue-ok" })).toMatchObject({ _tag: "Right", right: "v4lue-ok" })
    expect(await read("file:../wg.key")).toMatchObject({ _tag: "Right", right: wgKey })
    const missing = await read("env:NOPE")
    expect(missing).toMatchObject({
      _tag: "Left",
      left: { code: "secret_missing", exitCode: 3, variable: "NOPE", field: "secrets.k" },
    })
    const unreadable = await read("file:../no-such.key")
    expect(unreadable).toMatchObject({ _tag: "Left", left: { code: "secret_unavailable", exitCode: 3 } })
    expect(JSON.stringify(unreadable)).toContain("no-such.key")
  })

  it("redacts secret values from logs", () => {
    expect(redactSecrets(`key=${wifiKey}; again ${wifiKey}`, new Map([["wifi_key", wifiKey]]))).toBe(
      "key=<secret:wifi_key>; again <secret:wifi_key>",
    )
  })

  describe("values that cannot be used safely are refused with secret_invalid", () => {
    const dir = () => join(project.dir, "profiles")
    const read = (reference: string, env: Record<string, string> = {}) =>
      Effect.runPromise(
        Effect.either(readSecret({ profile: "ap", name: "k", reference, baseDir: dir(), env })),
      )
    beforeAll(() => {
      execFileSync("mkfifo", [join(project.dir, "key.fifo")])
      writeFileSync(join(project.dir, "big.key"), "")
      truncateSync(join(project.dir, "big.key"), maxSecretBytes + 1)
      writeFileSync(join(project.dir, "short.key"), "luci\n")
      writeFileSync(join(project.dir, "eight.key"), "12345678\n")
    })

    it.each([
      ["/dev/zero (a device that never ends)", "file:/dev/zero", /\/dev\/zero is a device/],
      ["a fifo (whose open would block)", "file:../key.fifo", /key\.fifo is a fifo/],
      ["a directory", "file:..", /is a directory/],
      ["a file over the size limit", "file:../big.key", /big\.key is larger than 65536 bytes/],
      ["a file too short to redact", "file:../short.key", /short\.key is too short to keep out of logs/],
    ])("%s", async (_, reference, reason) => {
      const result = await read(reference)
      expect(result).toMatchObject({ _tag: "Left", left: { code: "secret_invalid", exitCode: 3 } })
      expect(result._tag === "Left" ? result.left.message : "").toMatch(reason)
    })

    it("an environment variable too short or too long", async () => {
      for (const value of ["luci", "", "x".repeat(maxSecretBytes + 1)]) {
        const result = await read("env:K", { K: value })
        expect(result).toMatchObject({ _tag: "Left", left: { code: "secret_invalid" } })
      }
      expect(JSON.stringify(await read("env:K", { K: "luci" }))).toContain(
        `at least ${minSecretLength} characters`,
      )
      expect(JSON.stringify(await read("env:K", { K: "luci" }))).not.toContain('luci"')
    })

    it("accepts a value of exactly the shortest length", async () => {
      expect(await read("file:../eight.key")).toMatchObject({ _tag: "Right", right: "12345678" })
      expect(await read("env:K", { K: "12345678" })).toMatchObject({ _tag: "Right", right: "12345678" })
    })

    it.each([
      ["/dev/zero", "/dev/zero"],
      ["a fifo", "../key.fifo"],
      ["an oversized file", "../big.key"],
      ["a short file", "../short.key"],
    ])("realize fails at once with secret_invalid for %s", async (_, path) => {
      project.write(
        "profiles/hostile.yaml",
        [
          'release: "23.05.5"',
          "target: ath79/generic",
          "device: tplink_archer-c7-v5",
          `secrets: {k: "file:${path}"}`,
          "files: [{path: /etc/k, secret: k}]",
          "",
        ].join("\n"),
      )
      // Secrets are read before anything is fetched; offline and a dead upstream make sure of that.
      const result = await owrt(["realize", "hostile", "--json"], {
        cwd: project.dir,
        env: { OWRT_OFFLINE: "1", OWRT_UPSTREAM: "http://127.0.0.1:9" },
      })
      expect(result.code, result.stderr).toBe(3)
      const { error } = json<ErrorDocument>(result)
      expect(error.code).toBe("secret_invalid")
      expect(error.message).toContain(path.replace(/^\.\.\//, ""))
    })
  })
})

describe("build logs", () => {
  let mirror: { url: string; close: () => Promise<void> }
  let keyring: string
  // The device id is printed by the Image Builder, so a secret of that value shows in the build log.
  const logged = "tplink_archer-c7-v5"
  const project = makeProject({
    "profiles/ap.yaml": [
      'release: "23.05.5"',
      "target: ath79/generic",
      `device: ${logged}`,
      "secrets: {wifi_key: env:WIFI_KEY}",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: owrt's own secret placeholder, not a template
      "first_boot: [{name: 90-wifi, script: \"uci set wireless.k='${secret:wifi_key}'\"}]",
      "",
    ].join("\n"),
  })
  beforeAll(async () => {
    const built = await buildMirror()
    keyring = built.keyring
    mirror = await serveMirror(built.root)
  })
  afterAll(async () => {
    await mirror.close()
    project.cleanup()
  })
  const realize = (value: string) =>
    owrt(["realize", "ap", "--json"], {
      cwd: project.dir,
      env: { OWRT_UPSTREAM: mirror.url, OWRT_KEYRING: keyring, WIFI_KEY: value },
    })

  it("refuses a secret too short to redact (it would show as lib<secret:…>http0)", async () => {
    const result = await realize("luci")
    expect(result.code, result.stderr).toBe(3)
    const { error } = json<ErrorDocument>(result)
    expect(error.code).toBe("secret_invalid")
    expect(error.message).toMatch(/too short to keep out of logs; at least 8 characters/)
  })

  it("redacts a secret's value from the stored build log", async () => {
    const result = await realize(logged)
    expect(result.code, result.stderr).toBe(0)
    const store = join(project.dir, "store")
    const imageDir = readdirSync(store).find((name) => name.endsWith("-ap-image"))
    expect(imageDir).toBeDefined()
    const log = readFileSync(join(store, imageDir ?? "", "build.log"), "utf8")
    expect(log).toContain("<secret:wifi_key>")
    expect(log).not.toContain(logged)
  })
})
