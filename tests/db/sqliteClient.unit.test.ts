import { existsSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Reactivity from "@effect/experimental/Reactivity"
import { type SqlClient, SqlError } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import { makeSqliteClient } from "../../src/db/sqliteClient.js"

const scratchFile = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "owrt-sqlite-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true })),
).pipe(Effect.map((dir) => join(dir, "test.db")))

const open = (filename: string, busyTimeoutMs = 1_000) =>
  makeSqliteClient({
    filename,
    busyTimeoutMs,
    pragmas: ["journal_mode = WAL", "foreign_keys = ON", "synchronous = NORMAL"],
  }).pipe(Effect.provide(Reactivity.layer))

const failureOf = <A>(effect: Effect.Effect<A, SqlError.SqlError>) =>
  Effect.flip(effect).pipe(Effect.map((error) => (error.cause as { code?: string } | undefined)?.code))

describe("the store's SQLite client", () => {
  it.scoped("opens with its settings, reads and writes, and closes the file with its scope", () =>
    Effect.gen(function* () {
      const file = yield* scratchFile
      const scope = yield* Scope.make()
      const sql = yield* Scope.extend(open(file), scope)
      const [mode] = yield* sql<{ journal_mode: string }>`PRAGMA journal_mode`
      const [keys] = yield* sql<{ foreign_keys: number }>`PRAGMA foreign_keys`
      expect(mode?.journal_mode).toBe("wal")
      expect(keys?.foreign_keys).toBe(1)
      yield* sql`CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL)`
      yield* sql`INSERT INTO t ${sql.insert([{ name: "a" }, { name: "b" }])}`
      const rows = yield* sql<{ id: number; name: string }>`SELECT * FROM t ORDER BY id`
      expect(rows).toEqual([
        { id: 1, name: "a" },
        { id: 2, name: "b" },
      ])
      expect(yield* sql`SELECT name FROM t WHERE id = ${2}`.values).toEqual([["b"]])
      // The same statement, kept, gives rows as objects again.
      expect(yield* sql`SELECT name FROM t WHERE id = ${2}`).toEqual([{ name: "b" }])
      expect(existsSync(`${file}-wal`)).toBe(true)
      yield* Scope.close(scope, Exit.void)
      // The last connection to close checkpoints the log and removes it.
      expect(existsSync(`${file}-wal`)).toBe(false)
    }),
  )

  it.scoped("rolls a failed transaction back, and keeps a committed one", () =>
    Effect.gen(function* () {
      const sql = yield* open(yield* scratchFile)
      yield* sql`CREATE TABLE t (name TEXT UNIQUE)`
      yield* sql.withTransaction(sql`INSERT INTO t VALUES ('kept')`)
      const failed = yield* sql
        .withTransaction(
          Effect.zipRight(sql`INSERT INTO t VALUES ('gone')`, sql`INSERT INTO t VALUES ('kept')`),
        )
        .pipe(failureOf)
      expect(failed).toBe("SQLITE_CONSTRAINT_UNIQUE")
      expect(yield* sql`SELECT name FROM t`).toEqual([{ name: "kept" }])
    }),
  )

  it.scoped("reports a statement's failure as an SqlError with the driver's code", () =>
    Effect.gen(function* () {
      const sql = yield* open(yield* scratchFile)
      expect(yield* failureOf(sql`SELECT * FROM missing`)).toBe("SQLITE_ERROR")
      const error = yield* Effect.flip(sql`SELEC 1`)
      expect(error).toBeInstanceOf(SqlError.SqlError)
      expect(error.message).toMatch(/prepare/)
    }),
  )

  it.scoped("waits its busy timeout for another connection's write lock, then fails as busy", () =>
    Effect.gen(function* () {
      const file = yield* scratchFile
      const holder = yield* open(file)
      const waiter: SqlClient.SqlClient = yield* open(file, 100)
      yield* holder`CREATE TABLE t (x)`
      yield* holder.unsafe("BEGIN IMMEDIATE")
      yield* holder`INSERT INTO t VALUES (1)`
      expect(yield* failureOf(waiter`INSERT INTO t VALUES (2)`)).toBe("SQLITE_BUSY")
      yield* holder.unsafe("COMMIT")
      yield* waiter`INSERT INTO t VALUES (2)`
      expect(yield* waiter`SELECT x FROM t ORDER BY x`).toEqual([{ x: 1 }, { x: 2 }])
    }),
  )

  it.scoped("runs more distinct statements than it keeps prepared", () =>
    Effect.gen(function* () {
      const sql = yield* open(yield* scratchFile)
      for (let round = 0; round < 2; round++) {
        for (let n = 0; n < 250; n++) {
          const [row] = yield* sql.unsafe<{ n: number }>(`SELECT ${n} AS n`)
          expect(row?.n).toBe(n)
        }
      }
    }),
  )
})
