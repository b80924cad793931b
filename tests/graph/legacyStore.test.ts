import { join } from "node:path"
import { SqlClient } from "@effect/sql"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { buildMirror, serveMirror } from "../fixtures/mirror/index.js"
import { json, makeProject, owrt } from "../helpers/cli.js"

/*
 * Before fetch-builder was an ordinary store node, a store recorded its Image Builders only in the
 * `builders` table. Such a store keeps working: its builders are adopted as store paths, not fetched again.
 */
describe("a store from before builders were store nodes", () => {
  let mirror: { url: string; close: () => Promise<void> }
  let keyring: string
  const project = makeProject({
    "profiles/ap.yaml":
      'release: "23.05.5"\ntarget: ath79/generic\ndevice: tplink_archer-c7-v5\npackages: [luci]\n',
  })
  const run = (args: Array<string>) =>
    owrt(args, { cwd: project.dir, env: { OWRT_UPSTREAM: mirror.url, OWRT_KEYRING: keyring } })

  beforeAll(async () => {
    const built = await buildMirror()
    keyring = built.keyring
    mirror = await serveMirror(built.root)
  })
  afterAll(async () => {
    await mirror?.close()
    project.cleanup()
  })

  it("adopts its builders: offline realize still finds everything, store ls lists each builder once, verify is clean", async () => {
    const first = await run(["realize", "ap", "--json"])
    expect(first.code, first.stderr).toBe(0)
    // What an older owrt left: the builder's row in `builders`, none in `store_paths`.
    const removed = await Effect.runPromise(
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const rows = yield* sql<{
          key: string
        }>`DELETE FROM store_paths WHERE kind = 'fetch-builder' RETURNING key`
        return rows.length
      }).pipe(Effect.provide(SqliteClient.layer({ filename: join(project.dir, "store", "owrt.db") }))),
    )
    expect(removed).toBe(1)

    const again = await run(["realize", "ap", "--offline", "--json"])
    expect(again.code, again.stderr).toBe(0)
    expect(json<{ results: Array<{ cacheHit: boolean }> }>(again).results[0]?.cacheHit).toBe(true)
    const listed = json<{ paths: Array<{ kind: string }> }>(await run(["store", "ls", "--json"]))
    expect(listed.paths.filter((p) => p.kind === "fetch-builder")).toHaveLength(1)
    const verified = await run(["store", "verify", "--json"])
    expect(verified.code, verified.stdout).toBe(0)
    const builders = json<{ builders: Array<{ release: string }> }>(await run(["builders", "list", "--json"]))
    expect(builders.builders.map((b) => b.release)).toEqual(["23.05.5"])
  })
})
