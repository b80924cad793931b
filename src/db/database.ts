import { mkdirSync } from "node:fs"
import { join } from "node:path"
import * as Reactivity from "@effect/experimental/Reactivity"
import { SqlClient, type SqlError } from "@effect/sql"
import { Context, Effect, Layer, type ParseResult } from "effect"
import { AppConfig } from "../config/appConfig.js"
import {
  DatabaseBusyError,
  DatabaseError,
  DatabaseUnavailableError,
  freeBytesAt,
  noSpaceIn,
  StoreFullError,
  storeLocation,
} from "../errors.js"
import { AdvisoryLocks, noAdvisoryLocks } from "./advisoryLocks.js"
import { migrations } from "./migrations.js"
import { makeSqliteClient } from "./sqliteClient.js"

export const databaseFileName = "owrt.db"

/**
 * The client of the records database (revisions, builds, artifacts, flashes, ASU jobs, OTA releases:
 * `sharedTables`): the store's own SQLite file, or the PostgreSQL that `database: postgres://…` names. The
 * `SqlClient` is always the store's file, whose other tables describe this store's files and processes.
 */
export class RecordsSql extends Context.Tag("owrt/RecordsSql")<RecordsSql, SqlClient.SqlClient>() {}
// A transaction of one of the two clients must not run statements of the other: @effect/sql keeps the
// open transaction's connection under one tag for every client, so an `SqlClient` statement inside a
// `RecordsSql` transaction would go to the records database. No code does; keep it that way.

/** The records' PostgreSQL URL (without its password) this process opened, if any. */
let recordsUrl: string | undefined

/**
 * PostgreSQL SQLSTATE classes and Node socket errors that mean "the database is not there for us now":
 * connection exceptions (but 08P01, a protocol violation, which a wrong statement also raises), invalid
 * authorisation, an unknown database, an administrator's shutdown, no resources on the server.
 */
const unavailableCode = (code: string): boolean =>
  (code !== "08P01" && /^(08|28|3D|57P0|53)/.test(code)) ||
  // Node's socket and name errors (ECONNREFUSED, ENETUNREACH, EAI_AGAIN…) and TLS certificate refusals.
  /^E[A-Z_]+$/.test(code) ||
  /CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code)

const causeCode = (error: SqlError.SqlError): string | undefined => {
  const code = (error.cause as { code?: unknown } | undefined)?.code
  return typeof code === "string" ? code : undefined
}

/** A failure of the PostgreSQL records database that a user acts on: unreachable, or busy. */
export const postgresFailure = (
  operation: string,
  error: SqlError.SqlError,
): DatabaseUnavailableError | DatabaseBusyError | undefined => {
  if (recordsUrl === undefined) return undefined
  const code = causeCode(error)
  // The store's own SQLite file fails with its own codes, handled by the caller.
  if (code?.startsWith("SQLITE") === true) return undefined
  const detail = describePgCause(error)
  if (code === "55P03" || code === "40001" || code === "40P01") {
    return new DatabaseBusyError({ operation, file: recordsUrl })
  }
  // Without a code: pg's own errors (a connection it could not make, or lost; a timeout).
  if (code !== undefined ? unavailableCode(code) : /connect|terminat|timeout/i.test(detail)) {
    return new DatabaseUnavailableError({ url: recordsUrl, operation, detail })
  }
  return undefined
}

const describePgCause = (error: SqlError.SqlError): string => {
  const cause = error.cause
  const message = cause instanceof Error ? cause.message : ""
  return message === "" ? error.message : message
}

/** Remembers the PostgreSQL records URL for messages (set when it is opened). */
export const setRecordsUrl = (url: string | undefined) => {
  recordsUrl = url
}

const isBusy = (error: SqlError.SqlError): boolean => {
  const code = (error.cause as { code?: unknown } | undefined)?.code
  return typeof code === "string" && (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED"))
}

/** The database file this process opened last (named when the disk holding it is full). */
let openedDatabase: string | undefined

/**
 * Maps driver errors to owrt's: a lock held too long is "busy" (exit 10); SQLITE_FULL is `store_full`
 * (the `DatabaseError` says so by its code); anything else internal.
 */
export const databaseFailure =
  (operation: string, file = databaseFileName) =>
  (error: SqlError.SqlError): DatabaseError | DatabaseBusyError =>
    isBusy(error)
      ? new DatabaseBusyError({ operation, file })
      : new DatabaseError({ operation, cause: error, file: openedDatabase })

/**
 * What a database call can fail with: the lock stayed taken (exit 10), the disk is full or a PostgreSQL
 * records database cannot be reached (exit 5).
 */
export type DatabaseFailure = DatabaseBusyError | StoreFullError | DatabaseUnavailableError

/**
 * Gives a record query the errors a caller can act on and nothing else: a lock held too long is
 * `database_busy`, a full disk `store_full`. Anything else — a malformed statement, a row that does not
 * decode with its Schema (a corrupted or foreign database) — is a defect, which the CLI reports as
 * `internal` (exit 70) with the operation and the driver's message.
 */
export const sqlFailure =
  (operation: string) =>
  <A, R>(
    query: Effect.Effect<A, SqlError.SqlError | ParseResult.ParseError, R>,
  ): Effect.Effect<A, DatabaseFailure, R> =>
    query.pipe(
      Effect.catchAll((error): Effect.Effect<never, DatabaseFailure> => {
        if (error._tag === "SqlError") {
          const remote = postgresFailure(operation, error)
          if (remote) return Effect.fail(remote)
          if (isBusy(error)) {
            return Effect.fail(new DatabaseBusyError({ operation, file: openedDatabase ?? databaseFileName }))
          }
          const noSpace = noSpaceIn(error, openedDatabase)
          if (noSpace) {
            const path = noSpace.path ?? openedDatabase ?? databaseFileName
            return Effect.fail(
              new StoreFullError({ path, freeBytes: freeBytesAt(path), operation: `database ${operation}` }),
            )
          }
        }
        return Effect.die(new DatabaseError({ operation, cause: error, file: openedDatabase }))
      }),
    )

/**
 * Brings the schema up to date. `BEGIN IMMEDIATE` takes the write lock before reading the version, so two
 * processes opening a new store at once migrate it exactly once.
 */
const migrate = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const [row] = yield* sql<{ user_version: number }>`PRAGMA user_version`
  if ((row?.user_version ?? 0) >= migrations.length) return
  yield* sql.unsafe("BEGIN IMMEDIATE")
  const apply = Effect.gen(function* () {
    const [locked] = yield* sql<{ user_version: number }>`PRAGMA user_version`
    for (let index = locked?.user_version ?? 0; index < migrations.length; index++) {
      for (const statement of migrations[index]?.statements ?? []) yield* sql.unsafe(statement)
    }
    yield* sql.unsafe(`PRAGMA user_version = ${migrations.length}`)
  })
  yield* apply.pipe(
    Effect.zipRight(sql.unsafe("COMMIT")),
    Effect.tapError(() => sql.unsafe("ROLLBACK").pipe(Effect.ignore)),
  )
})

/**
 * The store's SQLite database (WAL, busy timeout, migrated), as an `SqlClient`, and the records database
 * as `RecordsSql`: the same file, or PostgreSQL (loaded, connected and migrated only then), with the
 * `AdvisoryLocks` that span machines when it is PostgreSQL.
 */
export const openDatabase = Effect.gen(function* () {
  const config = yield* AppConfig
  const file = join(config.store, databaseFileName)
  openedDatabase = file
  storeLocation.path = config.store
  yield* Effect.try({
    try: () => mkdirSync(config.store, { recursive: true }),
    catch: (cause) => new DatabaseError({ operation: `create store ${config.store}`, cause }),
  })
  // better-sqlite3's busy timeout is every statement's, the settings' too: processes opening a new store
  // at once wait for each other (one of them migrating it under a loaded CI machine) as long as the lock
  // timeout says, not the driver's default 5 s. (It takes whole milliseconds.)
  const client = yield* makeSqliteClient({
    filename: file,
    busyTimeoutMs: Math.max(1, Math.ceil(Math.min(config.timeouts.lock * 1000, 60_000))),
    pragmas: ["journal_mode = WAL", "foreign_keys = ON", "synchronous = NORMAL"],
  }).pipe(
    Effect.provideService(Reactivity.Reactivity, yield* Reactivity.make),
    Effect.mapError(databaseFailure("open", file)),
  )
  yield* migrate.pipe(
    Effect.provideService(SqlClient.SqlClient, client),
    Effect.mapError(databaseFailure("open", file)),
  )
  const local = Context.make(SqlClient.SqlClient, client)
  const database = config.database
  if (database.kind === "postgres") {
    const postgres = yield* Effect.promise(() => import("./postgresDatabase.js"))
    const opened = yield* postgres.openPostgres(database.url)
    return local.pipe(Context.add(RecordsSql, opened.client), Context.add(AdvisoryLocks, opened.locks))
  }
  return local.pipe(Context.add(RecordsSql, client), Context.add(AdvisoryLocks, noAdvisoryLocks))
})

/**
 * `openDatabase` as a layer (for tests; the core runs `openDatabase` itself). One scoped effect rather than a
 * tree of layers (client, its Reactivity, set-up, records client): each layer costs effect steps to build and
 * to release.
 */
export const databaseLayer: Layer.Layer<
  SqlClient.SqlClient | RecordsSql | AdvisoryLocks,
  DatabaseError | DatabaseBusyError | DatabaseUnavailableError,
  AppConfig
> = Layer.scopedContext(openDatabase)
