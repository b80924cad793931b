import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import type { DatabaseBusyError, DatabaseError } from "../errors.js"
import { databaseFailure } from "./database.js"

export interface ArtifactRow {
  readonly artifacts_key: string
  readonly name: string
  readonly type: string
  readonly filesystem: string | null
  readonly sha256: string
  readonly size: number
}

/**
 * Artifacts an id names: `<artifacts key>/<file name>`, or a prefix (8+ hex digits) of the image's SHA-256,
 * which is what auditors and the manifest show.
 */
export const findArtifacts = (
  id: string,
): Effect.Effect<ReadonlyArray<ArtifactRow>, DatabaseError | DatabaseBusyError, SqlClient.SqlClient> =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => {
    const slash = id.indexOf("/")
    if (slash > 0) {
      return sql<ArtifactRow>`SELECT * FROM artifacts WHERE artifacts_key = ${id.slice(0, slash)} AND name = ${id.slice(slash + 1)}`
    }
    return sql<ArtifactRow>`SELECT * FROM artifacts WHERE sha256 >= ${id.toLowerCase()} AND sha256 < ${`${id.toLowerCase()}g`} LIMIT 10`
  }).pipe(Effect.mapError(databaseFailure("find artifacts")))
