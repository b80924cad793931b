import { hostname } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { buildMirror, serveMirror } from "../fixtures/mirror/index.js"
import { type ErrorDocument, json, makeProject, owrt } from "../helpers/cli.js"
import { farmQuery } from "../helpers/farm.js"
import { freePort } from "../helpers/freePort.js"
import { freshPostgresDatabase, stopTestPostgres } from "../helpers/recordsBackends.js"
import { rawRequest, type ServeProcess, startServe } from "../web/serveProcess.js"

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

  it("the ASU queue in PostgreSQL: a server killed mid-build retries its job when it starts again", async () => {
    const database = await freshPostgresDatabase()
    const serveEnv = { ...env("store-asu"), OWRT_DATABASE: database }
    const call = async (server: ServeProcess, method: string, path: string, body?: unknown) => {
      const response = await rawRequest(server.url, path, {
        method,
        headers: { "content-type": "application/json" },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      })
      return {
        status: response.status,
        stage: String(response.headers["x-imagebuilder-status"]),
        body: JSON.parse(response.body.toString("utf8") || "{}") as Record<string, unknown>,
      }
    }
    const request = {
      version: "23.05.5",
      target: "ath79/generic",
      profile: "tplink_archer-c7-v5",
      packages: ["luci"],
    }
    // The first server's make takes 3 s: long enough to be killed in the middle of it.
    let server = await startServe(["--asu-concurrency", "1"], {
      cwd: project.dir,
      env: { ...serveEnv, OWRT_FAKE_IB_DELAY: "3" },
    })
    try {
      const submitted = await call(server, "POST", "/api/v1/build", request)
      expect(submitted.status, JSON.stringify(submitted.body)).toBe(202)
      const hash = String(submitted.body.request_hash)
      for (let i = 0; i < 400 && (await call(server, "GET", `/api/v1/build/${hash}`)).stage === "queued"; i++)
        await new Promise((resolve) => setTimeout(resolve, 25))
      // Building (its make takes 3 s) when it is killed.
      expect((await call(server, "GET", `/api/v1/build/${hash}`)).stage).not.toBe("queued")
      await server.stop("SIGKILL")
      server = await startServe(["--asu-concurrency", "1"], { cwd: project.dir, env: serveEnv })
      let answer = await call(server, "GET", `/api/v1/build/${hash}`)
      for (let i = 0; i < 1200 && answer.status === 202; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100))
        answer = await call(server, "GET", `/api/v1/build/${hash}`)
      }
      expect(answer.status, JSON.stringify(answer.body) + server.stderr()).toBe(200)
      // Built twice: the killed attempt, and the retry.
      const [job] = await farmQuery(database, "SELECT attempts FROM asu_jobs WHERE request_hash = $1", [hash])
      expect(Number(job?.attempts)).toBe(2)
      // The job and its build are records in PostgreSQL, not in the store's file.
      const builds = json<BuildList>(await run(["builds", "list", "--json"], "store-asu", database))
      expect(builds.builds.some((b) => b.status === "succeeded" && b.requestedBy === "api")).toBe(true)
      expect(json<BuildList>(await run(["builds", "list", "--json"], "store-asu")).builds).toEqual([])
    } finally {
      await server.stop()
    }
  }, 600_000)

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
