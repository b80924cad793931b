import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import type { DatabaseBusyError, DatabaseError } from "../errors.js"
import { databaseFailure } from "./database.js"

/** An Image Builder in the store, as the database records it. `path` is relative to the store. */
export interface BuilderRow {
  readonly key: string
  readonly path: string
  readonly release: string
  readonly target: string
  readonly upstream: string
  readonly archive_name: string
  readonly archive_sha256: string
  readonly signed_by: string
  readonly files: number
  readonly bytes: number
  readonly created_at: string
  readonly last_used_at: string
}

type DbError = DatabaseError | DatabaseBusyError

/** The Image Builder archive a release/target resolves to, as the signed sha256sums names it. */
export interface ArchiveResolution {
  readonly upstream: string
  readonly release: string
  readonly target: string
  readonly name: string
  readonly url: string
  readonly sha256: string
  /** Key id that signed sha256sums, or `unverified` when the signature check was skipped. */
  readonly signedBy: string
}

export const findBuilder = (
  key: string,
): Effect.Effect<BuilderRow | undefined, DbError, SqlClient.SqlClient> =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => sql<BuilderRow>`SELECT * FROM builders WHERE key = ${key}`,
  ).pipe(
    Effect.map(([row]) => row),
    Effect.mapError(databaseFailure("read builder")),
  )

export const listBuilders = (): Effect.Effect<ReadonlyArray<BuilderRow>, DbError, SqlClient.SqlClient> =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => sql<BuilderRow>`SELECT * FROM builders ORDER BY release, target, created_at`,
  ).pipe(Effect.mapError(databaseFailure("list builders")))

export const insertBuilder = (row: BuilderRow): Effect.Effect<void, DbError, SqlClient.SqlClient> =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => sql`INSERT OR REPLACE INTO builders ${sql.insert({ ...row })}`,
  ).pipe(Effect.asVoid, Effect.mapError(databaseFailure("record builder")))

export const deleteBuilder = (key: string): Effect.Effect<void, DbError, SqlClient.SqlClient> =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => sql`DELETE FROM builders WHERE key = ${key}`).pipe(
    Effect.asVoid,
    Effect.mapError(databaseFailure("delete builder")),
  )

export const touchBuilder = (key: string): Effect.Effect<void, DbError, SqlClient.SqlClient> =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => sql`UPDATE builders SET last_used_at = ${new Date().toISOString()} WHERE key = ${key}`,
  ).pipe(Effect.asVoid, Effect.mapError(databaseFailure("touch builder")))

/** Builds that used a builder; zero means `builders prune` may remove it. */
export const builderReferences = (key: string): Effect.Effect<number, DbError, SqlClient.SqlClient> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const [table] = yield* sql<{
      n: number
    }>`SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'builds'`
    if (!table || table.n === 0) return 0
    const [row] = yield* sql<{ n: number }>`SELECT COUNT(*) AS n FROM builds WHERE builder_key = ${key}`
    return row?.n ?? 0
  }).pipe(Effect.mapError(databaseFailure("count builder references")))

interface ResolutionRow {
  readonly upstream: string
  readonly release: string
  readonly target: string
  readonly archive_name: string
  readonly archive_url: string
  readonly archive_sha256: string
  readonly signed_by: string
}

/**
 * The cached resolution of a release/target on `upstream`; with `anyUpstream` (offline, where the upstream
 * is not contacted anyway) the most recent one from any upstream.
 */
export const findResolution = (
  upstream: string,
  release: string,
  target: string,
  anyUpstream = false,
): Effect.Effect<ArchiveResolution | undefined, DbError, SqlClient.SqlClient> =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => sql<ResolutionRow>`SELECT * FROM upstream_resolutions
                               WHERE release = ${release} AND target = ${target}
                                 AND (upstream = ${upstream} OR ${anyUpstream ? 1 : 0})
                               ORDER BY (upstream = ${upstream}) DESC, resolved_at DESC LIMIT 1`,
  ).pipe(
    Effect.map(([row]) =>
      row
        ? {
            upstream: row.upstream,
            release: row.release,
            target: row.target,
            name: row.archive_name,
            url: row.archive_url,
            sha256: row.archive_sha256,
            signedBy: row.signed_by,
          }
        : undefined,
    ),
    Effect.mapError(databaseFailure("read resolution")),
  )

export const saveResolution = (
  archive: ArchiveResolution,
): Effect.Effect<void, DbError, SqlClient.SqlClient> =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) =>
      sql`INSERT OR REPLACE INTO upstream_resolutions ${sql.insert({
        upstream: archive.upstream,
        release: archive.release,
        target: archive.target,
        archive_name: archive.name,
        archive_url: archive.url,
        archive_sha256: archive.sha256,
        signed_by: archive.signedBy,
        resolved_at: new Date().toISOString(),
      })}`,
  ).pipe(Effect.asVoid, Effect.mapError(databaseFailure("record resolution")))
