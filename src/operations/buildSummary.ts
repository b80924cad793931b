import { Schema } from "effect"
import { type BuildRow, effectiveStatus } from "../db/buildRecords.js"
import { Integer } from "./schemaTypes.js"

const NullableKey = Schema.NullOr(Schema.String)

/** A build record, as `owrt builds list --json` prints each one. */
export const BuildSummarySchema = Schema.Struct({
  id: Integer,
  profile: Schema.String,
  rev: Schema.NullOr(Integer),
  revision: Schema.String,
  status: Schema.Literal("running", "succeeded", "failed", "interrupted"),
  cacheHit: Schema.Boolean,
  substituted: Schema.Boolean.annotations({
    description: "true when the images came from a shared cache instead of being built here",
  }),
  substitutedFrom: Schema.NullOr(Schema.String).annotations({
    description: "The shared cache (oci://host/repo) they came from",
  }),
  requestedBy: Schema.String.annotations({ description: "cli, web, mcp or api" }),
  host: Schema.NullOr(Schema.String).annotations({
    description: "The machine that ran the build (null for builds recorded before owrt kept it)",
  }),
  keys: Schema.Struct({
    fetchBuilder: NullableKey,
    stageOverlay: NullableKey,
    makeImage: NullableKey,
    collectArtifacts: NullableKey,
  }),
  startedAt: Schema.String,
  finishedAt: Schema.NullOr(Schema.String),
  durationMs: Schema.NullOr(Schema.Number),
  error: Schema.NullOr(Schema.Struct({ code: Schema.String, message: Schema.NullOr(Schema.String) })),
})
export type BuildSummary = typeof BuildSummarySchema.Type

export const buildSummaryJson = (row: BuildRow): BuildSummary => ({
  id: row.id,
  profile: row.profile,
  rev: row.revision_seq,
  revision: row.revision_hash,
  status: effectiveStatus(row),
  cacheHit: row.cache_hit === 1,
  substituted: row.substituted_from !== null,
  substitutedFrom: row.substituted_from,
  requestedBy: row.requested_by,
  host: row.host,
  keys: {
    fetchBuilder: row.builder_key,
    stageOverlay: row.overlay_key,
    makeImage: row.image_key,
    collectArtifacts: row.artifacts_key,
  },
  startedAt: row.started_at,
  finishedAt: row.finished_at,
  durationMs: row.duration_ms,
  error: row.error_code ? { code: row.error_code, message: row.error_message } : null,
})
