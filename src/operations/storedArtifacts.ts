import { join } from "node:path"
import { Effect, Schema } from "effect"
import { ArtifactRecords } from "../db/artifactRecords.js"
import type { DatabaseFailure } from "../db/database.js"
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
): Effect.Effect<ReadonlyArray<StoredArtifact>, DatabaseFailure, ArtifactRecords> =>
  Effect.map(ArtifactRecords.stored(filter), (rows) =>
    rows.map(
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
    ),
  )
