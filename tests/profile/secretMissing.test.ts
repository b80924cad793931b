import { join } from "node:path"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { buildMirror, serveMirror } from "../fixtures/mirror/index.js"
import { type CliResult, type ErrorDocument, json, makeProject, owrt } from "../helpers/cli.js"
import { attachLoop, type LoopDevice, loopDevicesUnavailable } from "../helpers/loopDevice.js"

/*
 * A secret whose `env:` variable is not set is `secret_missing` (exit 3), naming the variable and the
 * profile field, wherever keys are computed: plan, realize, store path, audit and flash of a profile. It
 * used to make `store path` say "not realized" and `plan` show `?` keys "known once the builder is fetched".
 */

const wifiKey = "correct horse battery staple"

const apProfile = [
  'release: "23.05.5"',
  "target: ath79/generic",
  "device: tplink_archer-c7-v5",
  "secrets:",
  "  wifi_key: env:TEST_WIFI_KEY",
  "first_boot:",
  "  - name: 90-wifi",
  "    script: |",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: owrt's own secret placeholder, not a template
  "      uci set wireless.default_radio0.key='${secret:wifi_key}'",
  "",
].join("\n")

const expectSecretMissing = (result: CliResult, field = "secrets.wifi_key", variable = "TEST_WIFI_KEY") => {
  expect(result.code, result.stdout + result.stderr).toBe(3)
  const { error } = json<ErrorDocument>(result)
  expect(error.code).toBe("secret_missing")
  expect(error.exitCode).toBe(3)
  expect(error.message).toContain(variable)
  expect(error.message).toContain(field)
}

describe("a secret whose environment variable is not set", () => {
  let mirror: { url: string; close: () => Promise<void> }
  let env: Record<string, string | undefined>
  const project = makeProject({ "profiles/ap.yaml": apProfile })
  const run = (args: ReadonlyArray<string>, extra: Record<string, string | undefined> = {}) =>
    owrt(args, { cwd: project.dir, env: { ...env, ...extra } })
  const attached: Array<LoopDevice> = []

  beforeAll(async () => {
    const built = await buildMirror()
    mirror = await serveMirror(built.root)
    // The developer's shell must not set it for us.
    env = { OWRT_UPSTREAM: mirror.url, OWRT_KEYRING: built.keyring, TEST_WIFI_KEY: undefined }
  })
  afterEach(() => {
    for (const loop of attached.splice(0)) loop.detach()
  })
  afterAll(async () => {
    await mirror.close()
    project.cleanup()
  })

  it("fails a plan, naming the variable and the field, instead of planning `?` keys", async () => {
    expectSecretMissing(await run(["plan", "ap", "--json"]))
    const human = await run(["plan", "ap"])
    expect(human.code).toBe(3)
    expect(human.stderr).toMatch(/^owrt: error\[secret_missing\]: .*TEST_WIFI_KEY/m)
    expect(human.stdout).not.toContain("known once the builder is fetched")
  })

  it("fails a realize with the same error", async () => {
    expectSecretMissing(await run(["realize", "ap", "--json"]))
  })

  it("fails store path and audit of a realized profile, which used to be `not realized`", async () => {
    const realized = await run(["realize", "ap", "--json"], { TEST_WIFI_KEY: wifiKey })
    expect(realized.code, realized.stderr).toBe(0)
    const found = await run(["store", "path", "ap", "--json"], { TEST_WIFI_KEY: wifiKey })
    expect(found.code, found.stderr).toBe(0)

    expectSecretMissing(await run(["store", "path", "ap", "--json"]))
    expectSecretMissing(await run(["audit", "ap", "--json"]))
    // With the secret the plan has every key again.
    const plan = await run(["plan", "ap", "--json"], { TEST_WIFI_KEY: wifiKey })
    expect(plan.code, plan.stderr).toBe(0)
    expect(json<{ summary: { cached: number } }>(plan).summary.cached).toBe(1)
  })

  it.skipIf(loopDevicesUnavailable !== undefined)("fails a flash of the profile", async () => {
    const card = attachLoop(join(project.dir, "card.img"), { sizeBytes: 16 * 1024 * 1024 })
    attached.push(card)
    expectSecretMissing(await run(["flash", "ap", card.device, "--allow-loop", "--dry-run", "--json"]))
  })

  it("names graph.config.ts's secretsKey when its variable is not set", async () => {
    const keyed = makeProject(
      { "profiles/ap.yaml": apProfile },
      {
        config:
          'import { defineConfig } from "owrt/config"\nexport default defineConfig({ secretsKey: "env:TEST_SEALING_KEY" })\n',
      },
    )
    try {
      const result = await owrt(["plan", "ap", "--json"], {
        cwd: keyed.dir,
        env: { ...env, TEST_WIFI_KEY: wifiKey, TEST_SEALING_KEY: undefined },
      })
      expectSecretMissing(result, "secretsKey", "TEST_SEALING_KEY")
      expect(json<ErrorDocument>(result).error.message).toContain("graph.config.ts")
    } finally {
      keyed.cleanup()
    }
  })
})
