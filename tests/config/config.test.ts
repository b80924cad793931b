import { rmSync } from "node:fs"
import { afterAll, describe, expect, it } from "vitest"
import { type ErrorDocument, json, makeProject, owrt } from "../helpers/cli.js"

interface ConfigDocument {
  readonly store: string
  readonly upstream: string
  readonly keyring: string
  readonly offline: boolean
  readonly jobs: number
  readonly sources: Record<string, string>
  readonly executor?: unknown
}

describe("configuration precedence: flags > OWRT_* > graph.config.ts > defaults", () => {
  const project = makeProject(
    {},
    {
      config: [
        'import { defineConfig } from "owrt/config"',
        "export default defineConfig({",
        '  store: "from-file-store",',
        '  upstream: "http://file.example:8080/",',
        '  keyring: "file-keys",',
        "  offline: false,",
        "  jobs: 3,",
        "})",
        "",
      ].join("\n"),
    },
  )
  afterAll(() => project.cleanup())
  const config = async (args: Array<string>, env: Record<string, string> = {}) => {
    // Without the tests' default OWRT_MAKE_ENV (tests/helpers/cli.ts): every setting from the layers here.
    const result = await owrt(["config", "--json", ...args], {
      cwd: project.dir,
      env: { OWRT_MAKE_ENV: undefined, ...env },
    })
    expect(result.code, result.stderr).toBe(0)
    return json<ConfigDocument>(result)
  }

  it("reads graph.config.ts, with paths relative to it", async () => {
    const c = await config([])
    expect(c).toMatchObject({
      store: `${project.dir}/from-file-store`,
      upstream: "http://file.example:8080",
      keyring: `${project.dir}/file-keys`,
      offline: false,
      jobs: 3,
    })
    expect(c.sources).toEqual({
      store: "file",
      upstream: "file",
      osList: "default",
      keyring: "file",
      offline: "file",
      jobs: "file",
      makeEnv: "default",
      executor: "default",
      database: "default",
    })
    expect(c).toMatchObject({ database: { kind: "sqlite" } })
  })

  it("shows the records' database and where it came from, never its password; refuses what is not one", async () => {
    const c = await config([], { OWRT_DATABASE: "postgres://owrt:s3cret-pw@127.0.0.1:5432/records" })
    expect(c).toMatchObject({
      database: { kind: "postgres", url: "postgres://owrt:***@127.0.0.1:5432/records" },
    })
    expect(c.sources).toMatchObject({ database: "env" })
    const human = await owrt(["config", "--database", "postgresql://u:pw@db.example/owrt"], {
      cwd: project.dir,
    })
    expect(human.stdout).toMatch(/^database\s+postgres postgresql:\/\/u:\*\*\*@db\.example\/owrt .*\s+flag$/m)
    expect(human.stdout).not.toContain(":pw@")
    const bad = await owrt(["config", "--json", "--database", "mysql://x"], { cwd: project.dir })
    expect(bad.code).toBe(3)
    expect(JSON.parse(bad.stdout)).toMatchObject({ error: { code: "config_invalid" } })
    expect(bad.stdout).toContain("--database")
  })

  it("shows the executor and where it came from, never its database password", async () => {
    const c = await config(["--executor", "postgres://owrt:s3cret-pw@127.0.0.1:5432/farm"])
    expect(c).toMatchObject({
      executor: { kind: "postgres", url: "postgres://owrt:***@127.0.0.1:5432/farm", queue: "default" },
    })
    expect(c.sources).toMatchObject({ executor: "flag" })
    const human = await owrt(["config", "--executor", "postgres://owrt:s3cret-pw@127.0.0.1:5432/farm"], {
      cwd: project.dir,
    })
    expect(human.stdout).toMatch(
      /^executor\s+postgres postgres:\/\/owrt:\*\*\*@127\.0\.0\.1:5432\/farm \(queue default, lock timeout \d+s\)\s+flag$/m,
    )
    expect(human.stdout + human.stderr).not.toContain("s3cret-pw")
    expect((await config([])).executor).toEqual({ kind: "local" })
  })

  it("lets OWRT_* variables override the file", async () => {
    const c = await config([], {
      OWRT_STORE: "/srv/env-store",
      OWRT_UPSTREAM: "http://127.0.0.1:9",
      OWRT_KEYRING: "/etc/env-keys",
      OWRT_OFFLINE: "1",
      OWRT_JOBS: "5",
      OWRT_MAKE_ENV: "HTTP_PROXY, OWRT_FAKE_IB_*",
      OWRT_OS_LIST: "http://127.0.0.1:9/os_list.json",
      OWRT_DATABASE: "postgres://owrt@db.example/records",
    })
    expect(c).toMatchObject({
      store: "/srv/env-store",
      upstream: "http://127.0.0.1:9",
      osList: "http://127.0.0.1:9/os_list.json",
      keyring: "/etc/env-keys",
      offline: true,
      jobs: 5,
      makeEnv: ["HTTP_PROXY", "OWRT_FAKE_IB_*"],
    })
    expect(c).toMatchObject({ database: { kind: "postgres", url: "postgres://owrt@db.example/records" } })
    expect(Object.values(c.sources)).toEqual([
      "env",
      "env",
      "env",
      "env",
      "env",
      "env",
      "env",
      "default",
      "env",
    ])
  })

  it("lets flags override the variables", async () => {
    const c = await config(
      [
        "--store",
        "/srv/flag-store",
        "--upstream",
        "http://127.0.0.1:10",
        "--keyring",
        "/k",
        "--offline",
        "--jobs",
        "7",
        "--database",
        "sqlite",
      ],
      {
        OWRT_DATABASE: "postgres://owrt@db.example/records",
        OWRT_STORE: "/srv/env-store",
        OWRT_UPSTREAM: "http://127.0.0.1:9",
        OWRT_JOBS: "5",
        OWRT_KEYRING: "/e",
      },
    )
    expect(c).toMatchObject({
      store: "/srv/flag-store",
      upstream: "http://127.0.0.1:10",
      keyring: "/k",
      offline: true,
      jobs: 7,
    })
    // makeEnv and osList have no flag.
    expect(Object.values(c.sources)).toEqual([
      "flag",
      "flag",
      "default",
      "flag",
      "flag",
      "flag",
      "default",
      "default",
      "flag",
    ])
    expect(c).toMatchObject({ database: { kind: "sqlite" } })
  })

  it("reads the records' database from graph.config.ts", async () => {
    const withDatabase = makeProject(
      {},
      {
        config:
          'import { defineConfig } from "owrt/config"\nexport default defineConfig({ database: "postgres://owrt:pw@db.example/records" })\n',
      },
    )
    try {
      const result = await owrt(["config", "--json"], { cwd: withDatabase.dir })
      expect(result.code, result.stderr).toBe(0)
      const c = json<ConfigDocument>(result)
      expect(c).toMatchObject({
        database: { kind: "postgres", url: "postgres://owrt:***@db.example/records" },
      })
      expect(c.sources).toMatchObject({ database: "file" })
    } finally {
      withDatabase.cleanup()
    }
  })

  it("uses defaults without a config file", async () => {
    const bare = makeProject({})
    rmSync(`${bare.dir}/graph.config.ts`)
    try {
      const result = await owrt(["config", "--json"], { cwd: bare.dir })
      const c = json<ConfigDocument>(result)
      expect(c.upstream).toBe("https://downloads.openwrt.org")
      expect(c.offline).toBe(false)
      expect(c.jobs).toBeGreaterThan(0)
      expect(c.store).toBe(`${bare.dir}/store`)
    } finally {
      bare.cleanup()
    }
  })

  it.each([
    ["OWRT_JOBS", "many"],
    ["OWRT_JOBS", "0"],
    ["OWRT_OFFLINE", "maybe"],
    ["OWRT_UPSTREAM", "ftp://mirror"],
    ["OWRT_MAKE_ENV", "HTTP_PROXY,not-a-name"],
    ["OWRT_EXECUTOR", "mysql://db/farm"],
  ])("rejects %s=%s with exit 3", async (name, value) => {
    const result = await owrt(["config", "--json"], { cwd: project.dir, env: { [name]: value } })
    expect(result.code).toBe(3)
    const { error } = json<ErrorDocument>(result)
    expect(error.code).toBe("config_invalid")
    expect(error.message).toContain(name)
  })

  it("rejects a misspelt key in graph.config.ts with a suggestion", async () => {
    const bad = makeProject({}, { config: "export default { stroe: 'x' }\n" })
    try {
      const result = await owrt(["config", "--json"], { cwd: bad.dir })
      expect(result.code).toBe(3)
      const { error } = json<ErrorDocument>(result)
      expect(error.code).toBe("config_invalid")
      expect(error.message).toContain("did you mean `store`?")
    } finally {
      bad.cleanup()
    }
  })

  it("rejects a config file that does not compile, naming the line", async () => {
    const bad = makeProject({}, { config: "export default {\n  store: ,\n}\n" })
    try {
      const result = await owrt(["config", "--json"], { cwd: bad.dir })
      expect(result.code).toBe(3)
      expect(json<ErrorDocument>(result).error.message).toMatch(/graph\.config\.ts:2:/)
    } finally {
      bad.cleanup()
    }
  })
})

describe("owrt config shows every setting", () => {
  const sealingValue = "sealing-key-value-that-must-not-show"
  const project = makeProject(
    {},
    {
      config: [
        'import { defineConfig } from "owrt/config"',
        "export default defineConfig({",
        "  timeouts: { stall: 17 },",
        '  flash: { allowDevices: ["/dev/disk/by-id/usb-Card_Reader-0:0"] },',
        '  secretsKey: "env:TEST_SEALING_KEY",',
        '  makeEnv: ["HTTP_PROXY", "OWRT_FAKE_IB_*"],',
        "})",
        "",
      ].join("\n"),
    },
  )
  afterAll(() => project.cleanup())
  const run = (args: Array<string>, env: Record<string, string | undefined>) =>
    owrt(["config", ...args], { cwd: project.dir, env: { OWRT_MAKE_ENV: undefined, ...env } })

  it("stall timeout, flash allow-list, make environment, and whether the secrets key is set — never its value", async () => {
    const human = await run([], { TEST_SEALING_KEY: sealingValue })
    expect(human.code, human.stderr).toBe(0)
    expect(human.stdout).toContain("stall 17s")
    expect(human.stdout).toMatch(/flash\.allowDevices\s+\/dev\/disk\/by-id\/usb-Card_Reader-0:0\s+file/)
    expect(human.stdout).toMatch(/secretsKey\s+env:TEST_SEALING_KEY \(set\)\s+file/)
    expect(human.stdout).toMatch(/makeEnv\s+HTTP_PROXY, OWRT_FAKE_IB_\*\s+file/)
    const document = await run(["--json"], { TEST_SEALING_KEY: sealingValue })
    expect(json(document)).toMatchObject({
      timeouts: { stall: 17 },
      flash: { allowDevices: ["/dev/disk/by-id/usb-Card_Reader-0:0"] },
      secretsKey: "env:TEST_SEALING_KEY",
      secretsKeySet: true,
      secretsKeyProblem: null,
      makeEnv: ["HTTP_PROXY", "OWRT_FAKE_IB_*"],
    })
    expect(human.stdout + document.stdout).not.toContain(sealingValue)

    const unset = await run([], {})
    expect(unset.stdout).toContain(
      "env:TEST_SEALING_KEY (not set: environment variable TEST_SEALING_KEY is not set)",
    )
    expect(json(await run(["--json"], {}))).toMatchObject({ secretsKeySet: false })
  })

  it("says what applies when nothing is configured", async () => {
    const bare = makeProject({})
    try {
      const result = await owrt(["config"], { cwd: bare.dir, env: { OWRT_MAKE_ENV: undefined } })
      expect(result.stdout).toMatch(/secretsKey\s+none: the store's own secrets\.key seals secrets\s+default/)
      expect(result.stdout).toMatch(/flash\.allowDevices\s+none: MCP and web clients may flash no device/)
      expect(result.stdout).toMatch(/makeEnv\s+none\s+default/)
    } finally {
      bare.cleanup()
    }
  })

  it("the ota section: paths relative to the file, secrets by reference only, OWRT_OTA_* and COSIGN_PUB_KEY_PATH override it", async () => {
    const ota = makeProject(
      {},
      {
        config: [
          'import { defineConfig } from "owrt/config"',
          "export default defineConfig({",
          "  ota: {",
          '    registry: "oci://registry.example.net",',
          '    prefix: "fw/",',
          '    signingKey: "file:keys/release.key",',
          '    publicKey: "keys/release.pub",',
          '    mqtt: { url: "mqtts://broker.example.net:8883", username: "fleet", password: "env:MQTT_PW", ca: "ca.pem" },',
          "  },",
          "})",
          "",
        ].join("\n"),
      },
    )
    try {
      const result = await owrt(["config", "--json"], {
        cwd: ota.dir,
        env: { MQTT_PW: "never-shown-password" },
      })
      expect(result.code, result.stderr).toBe(0)
      expect(json(result)).toMatchObject({
        ota: {
          registry: "oci://registry.example.net",
          prefix: "fw/",
          signingKey: `file:${ota.dir}/keys/release.key`,
          publicKey: `${ota.dir}/keys/release.pub`,
          mqtt: {
            url: "mqtts://broker.example.net:8883",
            topic: "firmware",
            username: "fleet",
            password: "env:MQTT_PW",
            ca: `${ota.dir}/ca.pem`,
          },
        },
      })
      const human = await owrt(["config"], {
        cwd: ota.dir,
        env: {
          MQTT_PW: "never-shown-password",
          OWRT_OTA_REGISTRY: "oci://other.example.net",
          COSIGN_PUB_KEY_PATH: "/etc/cosign.pub",
        },
      })
      expect(human.stdout).toMatch(/ota\.registry\s+oci:\/\/other\.example\.net/)
      expect(human.stdout).toMatch(/ota\.publicKey\s+\/etc\/cosign\.pub/)
      expect(human.stdout).toMatch(
        /ota\.mqtt\s+mqtts:\/\/broker\.example\.net:8883 topic firmware \(password env:MQTT_PW\)/,
      )
      expect(result.stdout + human.stdout).not.toContain("never-shown-password")
      // A key given as a value, not a reference, is refused.
      const inline = await owrt(["config", "--json"], {
        cwd: ota.dir,
        env: { OWRT_OTA_SIGNING_KEY: "-----BEGIN PRIVATE KEY-----" },
      })
      expect(inline.code).toBe(3)
      expect(json<ErrorDocument>(inline).error.message).toContain("OWRT_OTA_SIGNING_KEY")
    } finally {
      ota.cleanup()
    }
  })

  it("refuses a makeEnv entry that is no variable name", async () => {
    const bad = makeProject({}, { config: "export default { makeEnv: ['PATH=/x'] }\n" })
    try {
      const result = await owrt(["config", "--json"], { cwd: bad.dir })
      expect(result.code).toBe(3)
      expect(json<ErrorDocument>(result).error.message).toContain("makeEnv.0")
    } finally {
      bad.cleanup()
    }
  })
})
