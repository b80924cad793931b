import type * as Reactivity from "@effect/experimental/Reactivity"
import { SqlClient, type SqlConnection, SqlError, Statement } from "@effect/sql"
import Sqlite from "better-sqlite3"
import { Context, Effect, Scope, Stream } from "effect"

/*
 * The store's SQLite file as an `SqlClient`: @effect/sql-sqlite-node's client over better-sqlite3, with two
 * changes for a command that runs a few dozen statements and exits. Prepared statements are kept in a plain
 * map (its `Cache` of them cost ~50 effect steps a statement, a third of each one's cost), and the
 * connection's settings are applied as it opens, before the client exists (five statements through the
 * client were ~700 effect steps of every start). Statements, transactions and their errors (`SqlError`
 * with the driver's error as `cause`) are as @effect/sql-sqlite-node's.
 */

export interface SqliteClientOptions {
  readonly filename: string
  /** How long a statement waits for another connection's lock before SQLITE_BUSY (better-sqlite3's `timeout`). */
  readonly busyTimeoutMs: number
  /** `PRAGMA`s (without the word) applied in order as the connection opens, e.g. "journal_mode = WAL". */
  readonly pragmas: ReadonlyArray<string>
}

/** Prepared statements kept per connection; the least recently used beyond this are dropped. */
const preparedLimit = 200

const failure = (message: string) => (cause: unknown) => new SqlError.SqlError({ cause, message })

/** Opens the file (closed with the scope) and makes its client. */
export const makeSqliteClient = (
  options: SqliteClientOptions,
): Effect.Effect<SqlClient.SqlClient, SqlError.SqlError, Scope.Scope | Reactivity.Reactivity> =>
  Effect.gen(function* () {
    const db = yield* Effect.acquireRelease(
      Effect.try({
        try: () => {
          const opened = new Sqlite(options.filename, { timeout: options.busyTimeoutMs })
          try {
            for (const pragma of options.pragmas) opened.pragma(pragma)
          } catch (cause) {
            opened.close()
            throw cause
          }
          return opened
        },
        catch: failure("Failed to open database"),
      }),
      (opened) => Effect.sync(() => opened.close()),
    )

    const prepared = new Map<string, Sqlite.Statement>()
    const prepare = (sql: string): Sqlite.Statement => {
      const known = prepared.get(sql)
      if (known !== undefined) {
        // A map iterates in insertion order: re-inserting makes it the most recently used.
        prepared.delete(sql)
        prepared.set(sql, known)
        return known
      }
      const statement = db.prepare(sql)
      prepared.set(sql, statement)
      if (prepared.size > preparedLimit) {
        const [oldest] = prepared.keys()
        if (oldest !== undefined) prepared.delete(oldest)
      }
      return statement
    }

    /** `rows`: a reader's rows; `result`: a writer's RunResult; `values`: a reader's rows as arrays. */
    const run = (
      sql: string,
      params: ReadonlyArray<unknown>,
      mode: "rows" | "result" | "values",
      prepareWith: (sql: string) => Sqlite.Statement = prepare,
    ) =>
      Effect.withFiberRuntime<ReadonlyArray<unknown> | Sqlite.RunResult, SqlError.SqlError>((fiber) => {
        let statement: Sqlite.Statement
        try {
          statement = prepareWith(sql)
        } catch (cause) {
          // As @effect/sql-sqlite-node says it: `executeValues` does not tell preparing from executing.
          return Effect.fail(
            failure(mode === "values" ? "Failed to execute statement" : "Failed to prepare statement ")(
              cause,
            ),
          )
        }
        try {
          // Per call: a kept statement must not return BigInts to a caller that did not ask for them.
          statement.safeIntegers(Context.get(fiber.currentContext, SqlClient.SafeIntegers))
          if (!statement.reader) {
            const result = statement.run(...params)
            return Effect.succeed(mode === "result" ? result : [])
          }
          if (mode !== "values") return Effect.succeed(statement.all(...params))
          statement.raw(true)
          try {
            return Effect.succeed(statement.all(...params))
          } finally {
            statement.raw(false)
          }
        } catch (cause) {
          return Effect.fail(failure("Failed to execute statement")(cause))
        }
      })

    const rows = (effect: Effect.Effect<ReadonlyArray<unknown> | Sqlite.RunResult, SqlError.SqlError>) =>
      Effect.map(effect, (result) => (Array.isArray(result) ? result : []))

    const connection: SqlConnection.Connection = {
      execute: (sql, params, transformRows) =>
        transformRows
          ? Effect.map(rows(run(sql, params, "rows")), (r) => transformRows(r as Array<object>))
          : rows(run(sql, params, "rows")),
      executeRaw: (sql, params) => run(sql, params, "result"),
      executeValues: (sql, params) =>
        rows(run(sql, params, "values")) as Effect.Effect<
          ReadonlyArray<ReadonlyArray<unknown>>,
          SqlError.SqlError
        >,
      executeUnprepared: (sql, params, transformRows) => {
        const effect = rows(run(sql, params ?? [], "rows", (text) => db.prepare(text)))
        return transformRows ? Effect.map(effect, (r) => transformRows(r as Array<object>)) : effect
      },
      executeStream: () => Stream.dieMessage("executeStream not implemented"),
    }

    const semaphore = yield* Effect.makeSemaphore(1)
    // A statement waits for a transaction of another fiber to end; a transaction holds the connection.
    const acquirer = semaphore.withPermits(1)(Effect.succeed(connection))
    const transactionAcquirer = Effect.uninterruptibleMask((restore) =>
      Effect.as(
        Effect.zipRight(
          restore(semaphore.take(1)),
          Effect.tap(Effect.scope, (scope) => Scope.addFinalizer(scope, semaphore.release(1))),
        ),
        connection,
      ),
    )
    return yield* SqlClient.make({
      acquirer,
      compiler: Statement.makeCompilerSqlite(),
      transactionAcquirer,
      spanAttributes: [["db.system.name", "sqlite"]],
    })
  })
