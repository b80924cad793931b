import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import type { DatabaseBusyError, DatabaseError } from "../errors.js"
import { currentProcess, holderAlive } from "../process/processIdentity.js"
import { databaseFailure } from "./database.js"

export type Requester = "cli" | "web" | "mcp" | "api"
export type BuildStatus = "running" | "succeeded" | "failed" | "interrupted"

export interface BuildRow {
  readonly id: number
  readonly profile: string
  readonly revision_seq: number | null
  readonly revision_hash: string
  readonly builder_key: string | null
  readonly overlay_key: string | null
  readonly image_key: string | null
  readonly artifacts_key: string | null
  readonly cache_hit: number
  readonly requested_by: string
  readonly status: string
  readonly error_code: string | null
  readonly error_message: string | null
  readonly started_at: string
  readonly finished_at: string | null
  readonly duration_ms: number | null
  readonly pid: number
  readonly pid_start: string | null
}

type DbError = DatabaseError | DatabaseBusyError

/** A build still marked running whose process is gone was interrupted (killed, crashed). */
export const effectiveStatus = (row: BuildRow): BuildStatus =>
  row.status === "running" &&
  !(row.pid === currentProcess.pid && row.pid_start === currentProcess.start) &&
  !holderAlive({ pid: row.pid, start: row.pid_start ?? "unknown", host: currentProcess.host })
    ? "interrupted"
    : (row.status as BuildStatus)

export const startBuild = (build: {
  readonly profile: string
  readonly revisionSeq: number
  readonly revisionHash: string
  readonly requestedBy: Requester
}): Effect.Effect<number, DbError, SqlClient.SqlClient> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const [row] = yield* sql<{ id: number }>`INSERT INTO builds ${sql.insert({
      profile: build.profile,
      revision_seq: build.revisionSeq,
      revision_hash: build.revisionHash,
      requested_by: build.requestedBy,
      status: "running",
      started_at: new Date().toISOString(),
      pid: currentProcess.pid,
      pid_start: currentProcess.start,
    })} RETURNING id`
    return row?.id ?? 0
  }).pipe(Effect.mapError(databaseFailure("record build")))

export const updateBuildKeys = (
  id: number,
  keys: { builder?: string; overlay?: string; image?: string; artifacts?: string },
): Effect.Effect<void, DbError, SqlClient.SqlClient> =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => sql`UPDATE builds SET
      builder_key = COALESCE(${keys.builder ?? null}, builder_key),
      overlay_key = COALESCE(${keys.overlay ?? null}, overlay_key),
      image_key = COALESCE(${keys.image ?? null}, image_key),
      artifacts_key = COALESCE(${keys.artifacts ?? null}, artifacts_key)
      WHERE id = ${id}`,
  ).pipe(Effect.asVoid, Effect.mapError(databaseFailure("record build keys")))

export const finishBuild = (
  id: number,
  outcome: {
    readonly status: Exclude<BuildStatus, "running">
    readonly cacheHit: boolean
    readonly errorCode?: string | undefined
    readonly errorMessage?: string | undefined
    readonly startedMs: number
  },
): Effect.Effect<void, DbError, SqlClient.SqlClient> =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => sql`UPDATE builds SET status = ${outcome.status}, cache_hit = ${outcome.cacheHit ? 1 : 0},
      error_code = ${outcome.errorCode ?? null}, error_message = ${outcome.errorMessage ?? null},
      finished_at = ${new Date().toISOString()}, duration_ms = ${Date.now() - outcome.startedMs}
      WHERE id = ${id}`,
  ).pipe(Effect.asVoid, Effect.mapError(databaseFailure("finish build")))

export const listBuilds = (options: {
  readonly profile?: string | undefined
  readonly limit: number
}): Effect.Effect<ReadonlyArray<BuildRow>, DbError, SqlClient.SqlClient> =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    options.profile === undefined
      ? sql<BuildRow>`SELECT * FROM builds ORDER BY id DESC LIMIT ${options.limit}`
      : sql<BuildRow>`SELECT * FROM builds WHERE profile = ${options.profile} ORDER BY id DESC LIMIT ${options.limit}`,
  ).pipe(Effect.mapError(databaseFailure("list builds")))

export const findBuild = (id: number): Effect.Effect<BuildRow | undefined, DbError, SqlClient.SqlClient> =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => sql<BuildRow>`SELECT * FROM builds WHERE id = ${id}`).pipe(
    Effect.map(([row]) => row),
    Effect.mapError(databaseFailure("read build")),
  )

/** The most recent successful build of a profile, optionally of one revision. */
export const latestGoodBuild = (
  profile: string,
  revisionHash?: string,
): Effect.Effect<BuildRow | undefined, DbError, SqlClient.SqlClient> =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    revisionHash === undefined
      ? sql<BuildRow>`SELECT * FROM builds WHERE profile = ${profile} AND status = 'succeeded' ORDER BY id DESC LIMIT 1`
      : sql<BuildRow>`SELECT * FROM builds WHERE profile = ${profile} AND revision_hash = ${revisionHash}
                      AND status = 'succeeded' ORDER BY id DESC LIMIT 1`,
  ).pipe(
    Effect.map(([row]) => row),
    Effect.mapError(databaseFailure("read builds")),
  )

export const recordArtifacts = (
  artifactsKey: string,
  images: ReadonlyArray<{
    readonly name: string
    readonly type: string
    readonly filesystem: string | null
    readonly sha256: string
    readonly size: number
  }>,
): Effect.Effect<void, DbError, SqlClient.SqlClient> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    // Recorded when the set was made here: a cache hit reads instead of writing.
    const [present] = yield* sql<{
      n: number
    }>`SELECT COUNT(*) AS n FROM artifacts WHERE artifacts_key = ${artifactsKey}`
    if ((present?.n ?? 0) === images.length) return
    for (const image of images) {
      yield* sql`INSERT OR REPLACE INTO artifacts ${sql.insert({
        artifacts_key: artifactsKey,
        name: image.name,
        type: image.type,
        filesystem: image.filesystem,
        sha256: image.sha256,
        size: image.size,
      })}`
    }
  }).pipe(Effect.mapError(databaseFailure("record artifacts")))

/** Builds whose make-image step had this key (what a build marker names). */
export const buildsOfImage = (
  imageKey: string,
): Effect.Effect<ReadonlyArray<BuildRow>, DbError, SqlClient.SqlClient> =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => sql<BuildRow>`SELECT * FROM builds WHERE image_key = ${imageKey} ORDER BY id DESC LIMIT 20`,
  ).pipe(Effect.mapError(databaseFailure("read builds")))

/** The node keys a profile's builds used, most recent first (builder, overlay, image or artifacts). */
export const recentKeysOfProfile = (
  profile: string,
  column: "builder_key" | "overlay_key" | "image_key" | "artifacts_key",
): Effect.Effect<ReadonlyArray<string>, DbError, SqlClient.SqlClient> =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => sql<{ key: string }>`SELECT ${sql(column)} AS key FROM builds
                                  WHERE profile = ${profile} AND ${sql(column)} IS NOT NULL
                                  GROUP BY ${sql(column)} ORDER BY MAX(id) DESC LIMIT 50`,
  ).pipe(
    Effect.map((rows) => rows.map((row) => row.key)),
    Effect.mapError(databaseFailure("read builds")),
  )
