import * as Reactivity from "@effect/experimental/Reactivity"
import type { SqlClient, SqlConnection, SqlError } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { Duration, Effect, ExecutionStrategy, Exit, Redacted, Scope } from "effect"
import pg from "pg"
import { type DatabaseBusyError, DatabaseError, type DatabaseUnavailableError } from "../errors.js"
import { withoutPassword } from "../text/withoutPassword.js"
import type { AdvisoryLocksService } from "./advisoryLocks.js"
import { postgresFailure, setRecordsUrl, sqlFailure } from "./database.js"
import { migrations, postgresStatements } from "./migrations.js"

/*
 * The records database in PostgreSQL (`database: postgres://…`), through @effect/sql-pg. Loaded only when
 * one is configured: pg stays out of every other start-up. The tables are the shared ones of the one
 * migration set (src/db/migrations.ts), in the URL's default schema; the build farm's own tables live in
 * their schemas (owrt_farm, graphile_worker) of the same database when the URL is the same.
 */

/** 64-bit integers (sizes, ids, counts) as numbers, like SQLite's: every value owrt stores fits in 2^53. */
const int8 = 20
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    oid === int8
      ? (value: string) => Number(value)
      : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig["getTypeParser"],
}

/** The key of the advisory lock under which one process at a time migrates a records database. */
const migrationLock = 0x6f777274

/**
 * Brings the records tables up to date. An up-to-date database costs one statement; otherwise under a
 * transaction-scoped advisory lock, so two processes (on any machines) opening a new database at once
 * migrate it exactly once.
 */
const migrate = (sql: SqlClient.SqlClient) =>
  Effect.gen(function* () {
    const applied = yield* sql<{ version: number }>`SELECT version FROM owrt_schema`.pipe(
      Effect.map((rows) => rows[0]?.version ?? 0),
      // No such table yet (a new database), or any other failure: the locked path finds out.
      Effect.orElseSucceed(() => 0),
    )
    if (applied >= migrations.length) return
    yield* Effect.gen(function* () {
      yield* sql`SELECT pg_advisory_xact_lock(${migrationLock})`
      yield* sql.unsafe("CREATE TABLE IF NOT EXISTS owrt_schema (version INTEGER NOT NULL)")
      const [row] = yield* sql<{ version: number }>`SELECT version FROM owrt_schema`
      const from = row?.version ?? 0
      if (from >= migrations.length) return
      for (let index = from; index < migrations.length; index++) {
        const migration = migrations[index]
        if (migration === undefined) continue
        for (const statement of postgresStatements(migration)) yield* sql.unsafe(statement)
      }
      if (row === undefined) yield* sql`INSERT INTO owrt_schema (version) VALUES (${migrations.length})`
      else yield* sql`UPDATE owrt_schema SET version = ${migrations.length}`
    }).pipe(sql.withTransaction)
  })

/**
 * Advisory locks on one connection of their own (reserved when the first lock is taken, kept until the
 * database closes): session locks belong to a connection, and a pool hands out a different one for each
 * statement. Its statements run one at a time and cannot be interrupted once sent (an interrupted pg query
 * is cancelled on the server, which could cancel another fiber's lock statement on that connection; neither
 * statement ever waits); waiting for the turn can be. A statement that fails drops the connection: its
 * session's locks are given up (when it still answers) and it goes back to the pool; the next lock reserves
 * a new one.
 */
const advisoryLocks = (
  client: SqlClient.SqlClient,
): Effect.Effect<AdvisoryLocksService, never, Scope.Scope> =>
  Effect.gen(function* () {
    const scope = yield* Effect.scope
    const oneAtATime = yield* Effect.makeSemaphore(1)
    let session:
      | { readonly connection: SqlConnection.Connection; readonly scope: Scope.CloseableScope }
      | undefined
    const connection = Effect.suspend(() =>
      session !== undefined
        ? Effect.succeed(session.connection)
        : Effect.gen(function* () {
            const own = yield* Scope.fork(scope, ExecutionStrategy.sequential)
            const reserved = yield* Scope.extend(client.reserve, own).pipe(
              Effect.tapError(() => Scope.close(own, Exit.void)),
            )
            session = { connection: reserved, scope: own }
            return reserved
          }),
    )
    const drop = Effect.suspend(() => {
      const dropped = session
      session = undefined
      if (dropped === undefined) return Effect.void
      return dropped.connection
        .execute("SELECT pg_advisory_unlock_all()", [], undefined)
        .pipe(
          Effect.timeout(Duration.seconds(5)),
          Effect.ignore,
          Effect.zipRight(Scope.close(dropped.scope, Exit.void)),
        )
    })
    const run = (statement: string, key: string) =>
      Effect.uninterruptibleMask((restore) =>
        Effect.zipRight(
          restore(oneAtATime.take(1)),
          Effect.flatMap(connection, (c) => c.execute(statement, [key], undefined)).pipe(
            Effect.tapError(() => drop),
            Effect.ensuring(oneAtATime.release(1)),
          ),
        ),
      )
    return {
      shared: true,
      tryLock: (key) =>
        run("SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS got", key).pipe(
          Effect.map((rows) => (rows[0] as { got?: unknown } | undefined)?.got === true),
          sqlFailure(`lock ${key}`),
        ),
      unlock: (key) => run("SELECT pg_advisory_unlock(hashtextextended($1, 0))", key).pipe(Effect.ignore),
    }
  })

/** Connects to the records database at `url` and migrates it; the pool closes with the scope. */
export const openPostgres = (
  url: string,
): Effect.Effect<
  { readonly client: SqlClient.SqlClient; readonly locks: AdvisoryLocksService },
  DatabaseError | DatabaseBusyError | DatabaseUnavailableError,
  Scope.Scope
> =>
  Effect.gen(function* () {
    const shown = withoutPassword(url)
    yield* Effect.acquireRelease(
      Effect.sync(() => setRecordsUrl(shown)),
      () => Effect.sync(() => setRecordsUrl(undefined)),
    )
    const failed = (operation: string) => (error: SqlError.SqlError) =>
      postgresFailure(operation, error) ??
      new DatabaseError({ operation: `${operation} ${shown}`, cause: error })
    const client = yield* PgClient.make({
      url: Redacted.make(url),
      types,
      applicationName: "owrt",
      connectTimeout: Duration.seconds(10),
      idleTimeout: Duration.seconds(30),
      maxConnections: 8,
    }).pipe(Effect.provide(Reactivity.layer), Effect.mapError(failed("connect")))
    yield* migrate(client).pipe(Effect.mapError(failed("migrate")))
    return { client, locks: yield* advisoryLocks(client) }
  })
