import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import type { DatabaseBusyError, DatabaseError } from "../errors.js"
import { type Canonical, canonicalJson } from "../text/canonicalJson.js"
import { databaseFailure } from "./database.js"

/** A node output in the store. Only a valid row makes a path reusable. */
export interface StorePathRow {
  readonly key: string
  readonly kind: string
  readonly name: string
  readonly digest: string
  readonly listing: string
  readonly files: number
  readonly bytes: number
  readonly created_at: string
  readonly valid: number
  /** Canonical JSON of what the key hashes (null for paths stored before it was kept). */
  readonly key_inputs: string | null
}

type DbError = DatabaseError | DatabaseBusyError

const withSql = <A>(
  operation: string,
  f: (sql: SqlClient.SqlClient) => Effect.Effect<A, import("@effect/sql").SqlError.SqlError>,
) => Effect.flatMap(SqlClient.SqlClient, f).pipe(Effect.mapError(databaseFailure(operation)))

export const findStorePath = (
  key: string,
): Effect.Effect<StorePathRow | undefined, DbError, SqlClient.SqlClient> =>
  withSql("read store path", (sql) => sql<StorePathRow>`SELECT * FROM store_paths WHERE key = ${key}`).pipe(
    Effect.map(([row]) => row),
  )

export const listStorePaths = (): Effect.Effect<ReadonlyArray<StorePathRow>, DbError, SqlClient.SqlClient> =>
  withSql("list store paths", (sql) => sql<StorePathRow>`SELECT * FROM store_paths ORDER BY created_at, key`)

export const insertStorePath = (row: {
  readonly key: string
  readonly kind: string
  readonly name: string
  readonly digest: string
  /** The tree's entries (store/treeDigest.ts), kept as JSON for `store verify`. */
  readonly listing: ReadonlyArray<object>
  readonly files: number
  readonly bytes: number
  readonly keyInputs?: Canonical | undefined
}): Effect.Effect<void, DbError, SqlClient.SqlClient> =>
  withSql(
    "record store path",
    (sql) =>
      sql`INSERT OR REPLACE INTO store_paths ${sql.insert({
        key: row.key,
        kind: row.kind,
        name: row.name,
        digest: row.digest,
        listing: JSON.stringify(row.listing),
        files: row.files,
        bytes: row.bytes,
        created_at: new Date().toISOString(),
        valid: 1,
        key_inputs: row.keyInputs === undefined ? null : canonicalJson(row.keyInputs),
      })}`,
  ).pipe(Effect.asVoid)

export const invalidateStorePath = (key: string): Effect.Effect<void, DbError, SqlClient.SqlClient> =>
  withSql("invalidate store path", (sql) => sql`UPDATE store_paths SET valid = 0 WHERE key = ${key}`).pipe(
    Effect.asVoid,
  )

export const deleteStorePath = (key: string): Effect.Effect<void, DbError, SqlClient.SqlClient> =>
  withSql("delete store path", (sql) => sql`DELETE FROM store_paths WHERE key = ${key}`).pipe(Effect.asVoid)
