import { createRequire } from "node:module"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit } from "effect"
import { AppConfig } from "../../src/config/appConfig.js"
import { databaseFileName } from "../../src/db/database.js"
import { StorePathRecords } from "../../src/db/storePathRecords.js"
import { scratchStoreLayer } from "../helpers/testLayers.js"

interface RawDatabase {
  exec(sql: string): void
  prepare(sql: string): { run(...params: ReadonlyArray<unknown>): unknown }
  close(): void
}
const openDatabase = createRequire(import.meta.url)("better-sqlite3") as new (file: string) => RawDatabase

/** The store's database file, opened by a second, independent connection (another process would). */
const rawDatabase = Effect.map(AppConfig, (config) => new openDatabase(join(config.store, databaseFileName)))

// The record services against both databases: tests/db/recordsBackends.unit.test.ts.
describe("record services in the store's SQLite file", () => {
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
