import { join } from "node:path"
import { SqlClient } from "@effect/sql"
import { Effect, Schema } from "effect"
import type { ArtifactRow } from "../db/artifactRecords.js"
import { databaseFailure } from "../db/database.js"
import type { DatabaseBusyError, DatabaseError } from "../errors.js"
import { storePathName } from "../store/nodeStore.js"
import { Integer } from "./schemaTypes.js"

export const StoredArtifactSchema = Schema.Struct({
  key: Schema.String.annotations({ description: "collect-artifacts key" }),
  profile: Schema.NullOr(Schema.String),
  rev: Schema.NullOr(Integer),
  buildId: Schema.NullOr(Integer).annotations({
    description: "The latest successful build that produced it",
  }),
  name: Schema.String,
  type: Schema.String,
  filesystem: Schema.NullOr(Schema.String),
  sha256: Schema.String,
  size: Integer,
  path: Schema.String.annotations({ description: "Absolute path of the file in the store" }),
  createdAt: Schema.String,
})
export type StoredArtifact = typeof StoredArtifactSchema.Type

interface StoredArtifactRow extends ArtifactRow {
  readonly path_name: string
  readonly created_at: string
  readonly build_id: number | null
  readonly profile: string | null
  readonly revision_seq: number | null
}

/**
 * Images of valid collect-artifacts outputs, newest first, with the latest successful build that
 * produced each set. Optionally only one profile's, or one artifact set's.
 */
export const storedArtifacts = (
  store: string,
  filter: {
    readonly profile?: string | undefined
    readonly key?: string | undefined
    readonly limit: number
  },
): Effect.Effect<ReadonlyArray<StoredArtifact>, DatabaseError | DatabaseBusyError, SqlClient.SqlClient> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<StoredArtifactRow>`
      SELECT a.artifacts_key, a.name, a.type, a.filesystem, a.sha256, a.size,
             s.name AS path_name, s.created_at, b.id AS build_id, b.profile, b.revision_seq
      FROM artifacts a
      JOIN store_paths s ON s.key = a.artifacts_key AND s.valid = 1
      LEFT JOIN builds b ON b.id = (
        SELECT MAX(id) FROM builds WHERE artifacts_key = a.artifacts_key AND status = 'succeeded')
      WHERE (${filter.profile ?? null} IS NULL OR b.profile = ${filter.profile ?? null})
        AND (${filter.key ?? null} IS NULL OR a.artifacts_key = ${filter.key ?? null})
      ORDER BY s.created_at DESC, a.artifacts_key, a.name
      LIMIT ${filter.limit}`
    return rows.map(
      (row): StoredArtifact => ({
        key: row.artifacts_key,
        profile: row.profile,
        rev: row.revision_seq,
        buildId: row.build_id,
        name: row.name,
        type: row.type,
        filesystem: row.filesystem,
        sha256: row.sha256,
        size: row.size,
        path: join(store, storePathName(row.artifacts_key, row.path_name), "images", row.name),
        createdAt: row.created_at,
      }),
    )
  }).pipe(Effect.mapError(databaseFailure("list artifacts")))
