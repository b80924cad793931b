import { createHash } from "node:crypto"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { Effect } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { readSecret, redactSecrets, secretFingerprint, storeSealingKey } from "../../src/profile/secrets.js"
import { makeProject, owrt } from "../helpers/cli.js"

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
    expect(await read("env:X", { X: "v" })).toMatchObject({ _tag: "Right", right: "v" })
    expect(await read("file:../wg.key")).toMatchObject({ _tag: "Right", right: wgKey })
    const missing = await read("env:NOPE")
    expect(missing).toMatchObject({ _tag: "Left", left: { code: "secret_unavailable", exitCode: 3 } })
    expect(JSON.stringify(missing)).toContain("NOPE")
  })

  it("redacts secret values from logs", () => {
    expect(redactSecrets(`key=${wifiKey}; again ${wifiKey}`, new Map([["wifi_key", wifiKey]]))).toBe(
      "key=<secret:wifi_key>; again <secret:wifi_key>",
    )
  })
})
