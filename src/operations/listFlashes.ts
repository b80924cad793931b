import { Effect, Schema } from "effect"
import { effectiveFlashStatus, FlashRecords, type FlashRow } from "../db/flashRecords.js"
import { defineOperation } from "./operation.js"
import { Integer } from "./schemaTypes.js"

const NullableString = Schema.NullOr(Schema.String)
const NullableInteger = Schema.NullOr(Integer)

/** A flash record, as `owrt flash list --json` prints each one. */
export const FlashRecordSchema = Schema.Struct({
  id: Integer,
  mode: Schema.Literal("dry-run", "write", "verify-only"),
  status: Schema.Literal("running", "planned", "succeeded", "refused", "mismatch", "failed", "interrupted"),
  source: Schema.String.annotations({
    description: "What was asked for: a file, an artifact id or a profile",
  }),
  image: Schema.Struct({
    path: Schema.String,
    bytes: Integer,
    sha256: NullableString,
    compression: Schema.String,
    profile: NullableString,
    revision: NullableString,
    artifact: Schema.NullOr(
      Schema.Struct({ key: NullableString, name: Schema.String, type: NullableString }),
    ),
  }),
  device: Schema.Struct({
    path: Schema.String,
    requested: Schema.String,
    model: NullableString,
    serial: NullableString,
    bytes: Integer,
  }),
  wipe: Schema.Boolean,
  verify: Schema.String,
  error: Schema.NullOr(Schema.Struct({ code: Schema.String, message: NullableString })),
  firstBadOffset: NullableInteger,
  badBytes: NullableInteger,
  writeMs: Schema.NullOr(Schema.Number),
  verifyMs: Schema.NullOr(Schema.Number),
  requestedBy: Schema.String.annotations({ description: "cli, web, mcp or api" }),
  requestedUser: Schema.String,
  startedAt: Schema.String,
  finishedAt: NullableString,
})
export type FlashRecord = typeof FlashRecordSchema.Type

export const flashRecordJson = (row: FlashRow): FlashRecord => ({
  id: row.id,
  mode: row.mode,
  status: effectiveFlashStatus(row),
  source: row.source,
  image: {
    path: row.image_path,
    bytes: row.image_bytes,
    sha256: row.image_sha256,
    compression: row.compression,
    profile: row.profile,
    revision: row.revision_hash,
    artifact: row.artifact_name
      ? { key: row.artifacts_key, name: row.artifact_name, type: row.artifact_type }
      : null,
  },
  device: {
    path: row.device_path,
    requested: row.device_requested,
    model: row.device_model,
    serial: row.device_serial,
    bytes: row.device_bytes,
  },
  wipe: row.wipe === 1,
  verify: row.verify,
  error: row.error_code ? { code: row.error_code, message: row.error_message } : null,
  firstBadOffset: row.first_bad_offset,
  badBytes: row.bad_bytes,
  writeMs: row.write_ms,
  verifyMs: row.verify_ms,
  requestedBy: row.requested_by,
  requestedUser: row.requested_user,
  startedAt: row.started_at,
  finishedAt: row.finished_at,
})

export const listFlashes = defineOperation({
  name: "listFlashes",
  description:
    "Past flashes, newest first (dry runs and refusals included): image, device, who asked, how it ended; and the cards found suspect (a read-back that differed)",
  readOnly: true,
  params: Schema.Struct({
    limit: Schema.optional(Integer.pipe(Schema.between(1, 1000))).annotations({
      description: "How many flashes, newest first (default 50)",
    }),
  }),
  result: Schema.Struct({
    flashes: Schema.Array(FlashRecordSchema),
    suspectCards: Schema.Array(
      Schema.Struct({
        flashId: Integer,
        model: NullableString,
        serial: NullableString,
        sizeBytes: Integer,
        reason: Schema.String,
        recordedAt: Schema.String,
      }),
    ),
  }),
  run: (params) =>
    Effect.gen(function* () {
      const rows = yield* FlashRecords.list(params.limit ?? 50)
      const suspects = yield* FlashRecords.listSuspects()
      return {
        flashes: rows.map(flashRecordJson),
        suspectCards: suspects.map((s) => ({
          flashId: s.flash_id,
          model: s.model,
          serial: s.serial,
          sizeBytes: s.size_bytes,
          reason: s.reason,
          recordedAt: s.recorded_at,
        })),
      }
    }),
})
