import { hostname } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { buildMirror, serveMirror } from "../fixtures/mirror/index.js"
import { type ErrorDocument, json, makeProject, owrt } from "../helpers/cli.js"
import { freePort } from "../helpers/freePort.js"
import { freshPostgresDatabase, stopTestPostgres } from "../helpers/recordsBackends.js"

interface BuildList {
  readonly builds: ReadonlyArray<
    Record<string, unknown> & { id: number; profile: string; host: string | null }
  >
}

const profileYaml = (packages: string) =>
  `release: "23.05.5"\ntarget: ath79/generic\ndevice: tplink_archer-c7-v5\npackages: ${packages}\n`

// The records (revisions, builds, artifacts…) in a real PostgreSQL shared by two stores — two machines —
// against the same commands with the store's own SQLite file.
describe("database: postgres:// keeps the records in PostgreSQL, shared between stores", () => {
  let mirror: { url: string; close: () => Promise<void> }
  let keyring: string
  let url: string
  const project = makeProject({
    "profiles/ap.yaml": profileYaml("[luci]"),
    "profiles/gw.yaml": profileYaml("[tcpdump]"),
  })
  const env = (store: string, database?: string) => ({
    OWRT_UPSTREAM: mirror.url,
    OWRT_KEYRING: keyring,
    OWRT_STORE: join(project.dir, store),
    ...(database === undefined ? {} : { OWRT_DATABASE: database }),
  })
  const run = async (args: ReadonlyArray<string>, store: string, database?: string) => {
    const result = await owrt([...args], { cwd: project.dir, env: env(store, database) })
    expect(result.code, result.stdout + result.stderr).toBe(0)
    return result
  }
  /** What a build record says apart from when it ran and its row number. */
  const comparable = (list: BuildList) =>
    list.builds.map(({ id: _id, startedAt: _s, finishedAt: _f, durationMs: _d, ...rest }) => rest)

  beforeAll(async () => {
    const built = await buildMirror()
    keyring = built.keyring
    mirror = await serveMirror(built.root)
    url = await freshPostgresDatabase()
  }, 120_000)
  afterAll(async () => {
    await Promise.all([stopTestPostgres(), mirror?.close()])
    project.cleanup()
  })

  it("the same realize gives the same records as with SQLite; a second store sees the first one's builds", async () => {
    await run(["realize", "ap", "--json"], "store-sqlite")
    await run(["realize", "ap", "--json"], "store-pg", url)
    const sqlite = json<BuildList>(await run(["builds", "list", "--json"], "store-sqlite"))
    const postgres = json<BuildList>(await run(["builds", "list", "--json"], "store-pg", url))
    expect(sqlite.builds).toHaveLength(1)
    expect(comparable(postgres)).toEqual(comparable(sqlite))
    expect(postgres.builds[0]).toMatchObject({ profile: "ap", status: "succeeded", host: hostname() })
    // Nothing of it went into the PostgreSQL store's own file: another SQLite store knows no build.
    expect(json<BuildList>(await run(["builds", "list", "--json"], "store-pg")).builds).toEqual([])

    // A second machine (its own store, the same database) builds another profile, then sees both builds
    // and the revision numbering the first one started.
    await run(["realize", "gw", "--json", "--database", url], "store-other")
    const shared = json<BuildList>(await run(["builds", "list", "--json"], "store-other", url))
    expect(shared.builds.map((b) => b.profile)).toEqual(["gw", "ap"])
    const listed = await run(["builds", "list"], "store-pg", url)
    expect(listed.stdout).toMatch(/gw@1\s+succeeded/)
    expect(listed.stdout).toMatch(/ap@1\s+succeeded/)
    // A rebuild of an edited profile is revision 2 for every store.
    project.write("profiles/ap.yaml", profileYaml("[luci, tcpdump]"))
    await run(["realize", "ap", "--json"], "store-other", url)
    const after = json<BuildList>(await run(["builds", "list", "--json", "--profile", "ap"], "store-pg", url))
    expect(after.builds.map((b) => b.rev)).toEqual([2, 1])
  }, 300_000)

  it("a database that cannot be reached is database_unavailable (exit 5), its password not shown", async () => {
    const closed = `postgres://owrt:pa55word@127.0.0.1:${await freePort()}/records`
    const result = await owrt(["builds", "list", "--json", "--database", closed], {
      cwd: project.dir,
      env: env("store-down"),
    })
    expect(result.code).toBe(5)
    const error = json<ErrorDocument>(result).error
    expect(error.code).toBe("database_unavailable")
    expect(error.message).toContain("postgres://owrt:***@127.0.0.1")
    expect(result.stdout + result.stderr).not.toContain("pa55word")
  }, 60_000)
})
