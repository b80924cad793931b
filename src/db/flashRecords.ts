import { userInfo } from "node:os"
import { SqlSchema } from "@effect/sql"
import { Effect, Option, Schema } from "effect"
import { currentProcess, holderAlive } from "../process/processIdentity.js"
import type { Requester } from "./buildRecords.js"
import { RecordsSql, sqlFailure } from "./database.js"
import { lazyQuery } from "./lazyQuery.js"

/*
 * Every flash, dry runs and refusals included: what was written where, by whom, and how it ended. A card
 * that did not hold what was written is also recorded as suspect, by model and serial where known.
 */

export const FlashMode = Schema.Literal("dry-run", "write", "verify-only")
export type FlashMode = typeof FlashMode.Type
export const FlashStatus = Schema.Literal(
  "running",
  "planned",
  "succeeded",
  "refused",
  "mismatch",
  "failed",
  "interrupted",
)
export type FlashStatus = typeof FlashStatus.Type

/** A flash, as its row reads. */
export const FlashRow = Schema.Struct({
  id: Schema.Number,
  mode: FlashMode,
  source: Schema.String,
  image_path: Schema.String,
  image_bytes: Schema.Number,
  image_sha256: Schema.NullOr(Schema.String),
  compression: Schema.String,
  profile: Schema.NullOr(Schema.String),
  revision_hash: Schema.NullOr(Schema.String),
  artifacts_key: Schema.NullOr(Schema.String),
  artifact_name: Schema.NullOr(Schema.String),
  artifact_type: Schema.NullOr(Schema.String),
  device_path: Schema.String,
  device_requested: Schema.String,
  device_model: Schema.NullOr(Schema.String),
  device_serial: Schema.NullOr(Schema.String),
  device_bytes: Schema.Number,
  wipe: Schema.Number,
  verify: Schema.String,
  status: FlashStatus,
  error_code: Schema.NullOr(Schema.String),
  error_message: Schema.NullOr(Schema.String),
  first_bad_offset: Schema.NullOr(Schema.Number),
  bad_bytes: Schema.NullOr(Schema.Number),
  write_ms: Schema.NullOr(Schema.Number),
  verify_ms: Schema.NullOr(Schema.Number),
  requested_by: Schema.String,
  requested_user: Schema.String,
  started_at: Schema.String,
  finished_at: Schema.NullOr(Schema.String),
  pid: Schema.Number,
  pid_start: Schema.NullOr(Schema.String),
  /** The machine of the process that flashed (null in rows written before records were shared). */
  host: Schema.optionalWith(Schema.NullOr(Schema.String), { default: () => null }),
})
export type FlashRow = typeof FlashRow.Type

/** A card recorded as not holding what was written to it. */
export const SuspectCardRow = Schema.Struct({
  id: Schema.Number,
  flash_id: Schema.Number,
  model: Schema.NullOr(Schema.String),
  serial: Schema.NullOr(Schema.String),
  size_bytes: Schema.Number,
  reason: Schema.String,
  recorded_at: Schema.String,
})
export type SuspectCardRow = typeof SuspectCardRow.Type

/** The person behind the request: the login that ran owrt, and the one sudo was run from. */
export const requestingUser = (): string => {
  const login = (() => {
    try {
      return userInfo().username
    } catch {
      return `uid ${process.getuid?.() ?? "?"}`
    }
  })()
  const sudoUser = process.env.SUDO_USER
  return sudoUser && sudoUser !== login ? `${login} (sudo from ${sudoUser})` : login
}

export interface FlashStart {
  readonly mode: FlashMode
  readonly source: string
  readonly imagePath: string
  readonly imageBytes: number
  readonly compression: string
  readonly profile?: string | undefined
  readonly revisionHash?: string | undefined
  readonly artifactsKey?: string | undefined
  readonly artifactName?: string | undefined
  readonly artifactType?: string | undefined
  readonly devicePath: string
  readonly deviceRequested: string
  readonly deviceModel?: string | undefined
  readonly deviceSerial?: string | undefined
  readonly deviceBytes: number
  readonly wipe: boolean
  readonly verify: string
  readonly requestedBy: Requester
}

export interface FlashOutcome {
  readonly status: Exclude<FlashStatus, "running">
  readonly imageSha256?: string | undefined
  readonly errorCode?: string | undefined
  readonly errorMessage?: string | undefined
  readonly firstBadOffset?: number | undefined
  readonly badBytes?: number | undefined
  readonly writeMs?: number | undefined
  readonly verifyMs?: number | undefined
}

/** What `FlashRecords` is made of: records.ts makes every record service in one effect. */
export const makeFlashRecords = Effect.gen(function* () {
  const sql = yield* RecordsSql
  const inserted = lazyQuery(() =>
    SqlSchema.findAll({
      Request: FlashRow.pipe(
        Schema.omit(
          "id",
          "image_sha256",
          "error_code",
          "error_message",
          "first_bad_offset",
          "bad_bytes",
          "write_ms",
          "verify_ms",
          "finished_at",
        ),
      ),
      Result: Schema.Struct({ id: Schema.Number }),
      execute: (row) => sql`INSERT INTO flashes ${sql.insert(row)} RETURNING id`,
    }),
  )
  const suspects = lazyQuery(() =>
    SqlSchema.findAll({
      Request: Schema.UndefinedOr(Schema.String),
      Result: SuspectCardRow,
      execute: (serial) =>
        serial === undefined
          ? sql`SELECT * FROM suspect_cards ORDER BY id DESC`
          : sql`SELECT * FROM suspect_cards WHERE serial = ${serial} ORDER BY id`,
    }),
  )
  const recent = lazyQuery(() =>
    SqlSchema.findAll({
      Request: Schema.Number,
      Result: FlashRow,
      execute: (limit) => sql`SELECT * FROM flashes ORDER BY id DESC LIMIT ${limit}`,
    }),
  )
  const lastWrite = lazyQuery(() =>
    SqlSchema.findOne({
      Request: Schema.Struct({
        before: Schema.Number,
        path: Schema.String,
        serial: Schema.UndefinedOr(Schema.String),
        sizeBytes: Schema.Number,
      }),
      Result: FlashRow,
      // A card is known by its serial where the system reports one, else by its device node.
      execute: ({ before, path, serial, sizeBytes }) =>
        sql`SELECT * FROM flashes WHERE id < ${before} AND mode = 'write'
          AND status NOT IN ('planned', 'refused') AND device_bytes = ${sizeBytes}
          AND ${serial === undefined ? sql`device_serial IS NULL AND device_path = ${path}` : sql`device_serial = ${serial}`}
          ORDER BY id DESC LIMIT 1`,
    }),
  )
  return {
    /** The last write (one that reached the card) to this card before flash `before`, if any is recorded. */
    lastWriteTo: (card: {
      readonly before: number
      readonly path: string
      readonly serial?: string | undefined
      readonly sizeBytes: number
    }) =>
      lastWrite({ ...card, serial: card.serial || undefined }).pipe(
        Effect.map(Option.getOrUndefined),
        sqlFailure("read flashes"),
      ),
    /** Records a flash as running, owned by this process; returns its id. */
    start: (flash: FlashStart) =>
      inserted({
        mode: flash.mode,
        source: flash.source,
        image_path: flash.imagePath,
        image_bytes: flash.imageBytes,
        compression: flash.compression,
        profile: flash.profile ?? null,
        revision_hash: flash.revisionHash ?? null,
        artifacts_key: flash.artifactsKey ?? null,
        artifact_name: flash.artifactName ?? null,
        artifact_type: flash.artifactType ?? null,
        device_path: flash.devicePath,
        device_requested: flash.deviceRequested,
        device_model: flash.deviceModel ?? null,
        device_serial: flash.deviceSerial ?? null,
        device_bytes: flash.deviceBytes,
        wipe: flash.wipe ? 1 : 0,
        verify: flash.verify,
        status: "running",
        requested_by: flash.requestedBy,
        requested_user: requestingUser(),
        started_at: new Date().toISOString(),
        pid: currentProcess.pid,
        pid_start: currentProcess.start,
        host: currentProcess.host,
      }).pipe(
        Effect.map(([row]) => row?.id ?? 0),
        sqlFailure("record flash"),
      ),
    finish: (id: number, outcome: FlashOutcome) =>
      sql`UPDATE flashes SET status = ${outcome.status},
        image_sha256 = COALESCE(${outcome.imageSha256 ?? null}, image_sha256),
        error_code = ${outcome.errorCode ?? null}, error_message = ${outcome.errorMessage ?? null},
        first_bad_offset = ${outcome.firstBadOffset ?? null}, bad_bytes = ${outcome.badBytes ?? null},
        write_ms = ${outcome.writeMs ?? null}, verify_ms = ${outcome.verifyMs ?? null},
        finished_at = ${new Date().toISOString()}
        WHERE id = ${id}`.pipe(Effect.asVoid, sqlFailure("finish flash record")),
    recordSuspect: (card: {
      readonly flashId: number
      readonly model?: string | undefined
      readonly serial?: string | undefined
      readonly sizeBytes: number
      readonly reason: string
    }) =>
      sql`INSERT INTO suspect_cards ${sql.insert({
        flash_id: card.flashId,
        model: card.model ?? null,
        serial: card.serial ?? null,
        size_bytes: card.sizeBytes,
        reason: card.reason,
        recorded_at: new Date().toISOString(),
      })}`.pipe(Effect.asVoid, sqlFailure("record suspect card")),
    /** Earlier verdicts on a card with this serial (cards without a serial cannot be recognised again). */
    suspectRecords: (serial: string | undefined) =>
      serial === undefined || serial === ""
        ? Effect.succeed<ReadonlyArray<SuspectCardRow>>([])
        : suspects(serial).pipe(sqlFailure("read suspect cards")),
    listSuspects: () => suspects(undefined).pipe(sqlFailure("read suspect cards")),
    list: (limit: number) => recent(limit).pipe(sqlFailure("list flashes")),
  }
})

/** The `flashes` and `suspect_cards` tables. */
export class FlashRecords extends Effect.Service<FlashRecords>()("owrt/FlashRecords", {
  accessors: true,
  effect: makeFlashRecords,
}) {}

/** A flash still marked running whose process is gone was interrupted. */
export const effectiveFlashStatus = (row: FlashRow): FlashStatus =>
  row.status === "running" &&
  !(row.pid === currentProcess.pid && row.pid_start === currentProcess.start) &&
  !holderAlive({ pid: row.pid, start: row.pid_start ?? "unknown", host: row.host ?? currentProcess.host })
    ? "interrupted"
    : row.status
