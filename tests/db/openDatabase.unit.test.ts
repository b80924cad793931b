import { spawn } from "node:child_process"
import { mkdirSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { SqlClient } from "@effect/sql"
import { Effect, Layer } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import { AppConfig } from "../../src/config/appConfig.js"
import { databaseFileName, databaseLayer } from "../../src/db/database.js"
import { testConfig } from "../helpers/testLayers.js"

const repoRoot = join(import.meta.dirname, "..", "..")
const scratch: Array<string> = []
afterEach(() => {
  for (const dir of scratch.splice(0)) rmSync(dir, { recursive: true, force: true })
})

/**
 * Another process that creates `file` and holds it locked (before it is in WAL mode) for `ms`; `released`
 * settles when it has let go.
 */
const holdLocked = (file: string, ms: number): Promise<{ readonly released: Promise<void> }> =>
  new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        "-e",
        `const db = new (require("better-sqlite3"))(${JSON.stringify(file)});
         db.exec("BEGIN EXCLUSIVE; CREATE TABLE held (x); ");
         process.stdout.write("locked\\n");
         setTimeout(() => { db.exec("COMMIT"); db.close() }, ${ms});`,
      ],
      { cwd: repoRoot, stdio: ["ignore", "pipe", "inherit"] },
    )
    const exited = new Promise<void>((done) => child.once("exit", () => done()))
    child.stdout.once("data", () => resolve({ released: exited }))
    child.once("error", reject)
  })

describe("opening the store's database", () => {
  it("waits past the driver's own 5 s for a new store another process holds locked, and opens it in WAL mode", async () => {
    const dir = mkdtempSync(join(tmpdir(), "owrt-open-"))
    scratch.push(dir)
    const store = join(dir, "store")
    mkdirSync(store)
    const { released } = await holdLocked(join(store, databaseFileName), 8_000)
    const mode = await Effect.runPromise(
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const [row] = yield* sql<{ journal_mode: string }>`PRAGMA journal_mode`
        return row?.journal_mode
      }).pipe(
        Effect.provide(databaseLayer.pipe(Layer.provide(Layer.succeed(AppConfig, testConfig(store))))),
        Effect.scoped,
      ),
    )
    expect(mode).toBe("wal")
    await released
  }, 30_000)
})
