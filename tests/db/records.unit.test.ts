import { createRequire } from "node:module"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit } from "effect"
import { AppConfig } from "../../src/config/appConfig.js"
import { BuildRecords } from "../../src/db/buildRecords.js"
import { databaseFileName } from "../../src/db/database.js"
import { FlashRecords } from "../../src/db/flashRecords.js"
import { StorePathRecords } from "../../src/db/storePathRecords.js"
import { DatabaseError } from "../../src/errors.js"
import { scratchStoreLayer } from "../helpers/testLayers.js"

interface RawDatabase {
  exec(sql: string): void
  prepare(sql: string): { run(...params: ReadonlyArray<unknown>): unknown }
  close(): void
}
const openDatabase = createRequire(import.meta.url)("better-sqlite3") as new (file: string) => RawDatabase

/** The store's database file, opened by a second, independent connection (another process would). */
const rawDatabase = Effect.map(AppConfig, (config) => new openDatabase(join(config.store, databaseFileName)))

describe("record services", () => {
  it.scopedLive("round-trips rows through their Schemas", () =>
    Effect.gen(function* () {
      const id = yield* BuildRecords.start({
        profile: "home-ap",
        revisionSeq: 1,
        revisionHash: "a".repeat(64),
        requestedBy: "cli",
      })
      yield* BuildRecords.updateKeys(id, { image: "k".repeat(32) })
      yield* BuildRecords.finish(id, { status: "succeeded", cacheHit: false, startedMs: Date.now() })
      const row = yield* BuildRecords.find(id)
      expect(row).toMatchObject({ id, profile: "home-ap", status: "succeeded", image_key: "k".repeat(32) })
      expect(yield* BuildRecords.ofImage("k".repeat(32))).toHaveLength(1)
      expect(yield* BuildRecords.recentKeys("home-ap", "image_key")).toEqual(["k".repeat(32)])
      expect(yield* BuildRecords.find(id + 1)).toBeUndefined()
    }).pipe(Effect.provide(scratchStoreLayer())),
  )

  it.scopedLive("a row that does not decode is a defect naming the query, not a typed failure", () =>
    Effect.gen(function* () {
      const raw = yield* rawDatabase
      raw
        .prepare(
          `INSERT INTO flashes (mode, source, image_path, image_bytes, compression, device_path, device_requested,
             device_bytes, wipe, verify, status, requested_by, requested_user, started_at, pid)
           VALUES ('write', 'x', '/x', 1, 'none', '/dev/x', 'x', 1, 0, 'full', 'exploded', 'cli', 'me', 'now', 1)`,
        )
        .run()
      raw.close()
      const exit = yield* Effect.exit(FlashRecords.list(10))
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isSuccess(exit)) return
      // Nothing a caller can handle: it is not in the error channel.
      expect(Cause.failureOption(exit.cause)._tag).toBe("None")
      const defect = Cause.squash(exit.cause)
      expect(defect).toBeInstanceOf(DatabaseError)
      expect((defect as DatabaseError).message).toMatch(/database list flashes failed: .*exploded/s)
    }).pipe(Effect.provide(scratchStoreLayer())),
  )

  it.scopedLive("a write lock held by another connection past the busy timeout is database_busy", () =>
    Effect.gen(function* () {
      const raw = yield* rawDatabase
      raw.exec("BEGIN IMMEDIATE")
      const exit = yield* Effect.exit(
        StorePathRecords.insert({
          key: "k".repeat(32),
          kind: "stage-overlay",
          name: "x",
          digest: "d",
          listing: [],
          files: 0,
          bytes: 0,
        }),
      )
      raw.exec("ROLLBACK")
      raw.close()
      expect(exit).toMatchObject({ _tag: "Failure" })
      if (Exit.isSuccess(exit)) return
      const failure = Cause.failureOption(exit.cause)
      expect(failure._tag).toBe("Some")
      if (failure._tag === "Some") {
        expect(failure.value.code).toBe("database_busy")
        expect(failure.value.exitCode).toBe(10)
      }
      // The refused write left no row behind.
      expect(yield* StorePathRecords.find("k".repeat(32))).toBeUndefined()
    }).pipe(Effect.provide(scratchStoreLayer({ timeouts: { download: 60, build: 60, lock: 1, stall: 30 } }))),
  )
})
