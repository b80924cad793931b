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
    const result = await owrt(["config", "--json", ...args], { cwd: project.dir, env })
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
      keyring: "file",
      offline: "file",
      jobs: "file",
    })
  })

  it("lets OWRT_* variables override the file", async () => {
    const c = await config([], {
      OWRT_STORE: "/srv/env-store",
      OWRT_UPSTREAM: "http://127.0.0.1:9",
      OWRT_KEYRING: "/etc/env-keys",
      OWRT_OFFLINE: "1",
      OWRT_JOBS: "5",
    })
    expect(c).toMatchObject({
      store: "/srv/env-store",
      upstream: "http://127.0.0.1:9",
      keyring: "/etc/env-keys",
      offline: true,
      jobs: 5,
    })
    expect(Object.values(c.sources)).toEqual(["env", "env", "env", "env", "env"])
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
      ],
      {
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
    expect(Object.values(c.sources)).toEqual(["flag", "flag", "flag", "flag", "flag"])
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
