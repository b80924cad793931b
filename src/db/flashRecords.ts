import { userInfo } from "node:os"
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import type { DatabaseBusyError, DatabaseError } from "../errors.js"
import { currentProcess, holderAlive } from "../process/processIdentity.js"
import type { Requester } from "./buildRecords.js"
import { databaseFailure } from "./database.js"

/*
 * Every flash, dry runs and refusals included: what was written where, by whom, and how it ended. A card
 * that did not hold what was written is also recorded as suspect, by model and serial where known.
 */

export type FlashMode = "dry-run" | "write" | "verify-only"
export type FlashStatus =
  | "running"
  | "planned"
  | "succeeded"
  | "refused"
  | "mismatch"
  | "failed"
  | "interrupted"

export interface FlashRow {
  readonly id: number
  readonly mode: FlashMode
  readonly source: string
  readonly image_path: string
  readonly image_bytes: number
  readonly image_sha256: string | null
  readonly compression: string
  readonly profile: string | null
  readonly revision_hash: string | null
  readonly artifacts_key: string | null
  readonly artifact_name: string | null
  readonly artifact_type: string | null
  readonly device_path: string
  readonly device_requested: string
  readonly device_model: string | null
  readonly device_serial: string | null
  readonly device_bytes: number
  readonly wipe: number
  readonly verify: string
  readonly status: FlashStatus
  readonly error_code: string | null
  readonly error_message: string | null
  readonly first_bad_offset: number | null
  readonly bad_bytes: number | null
  readonly write_ms: number | null
  readonly verify_ms: number | null
  readonly requested_by: string
  readonly requested_user: string
  readonly started_at: string
  readonly finished_at: string | null
  readonly pid: number
  readonly pid_start: string | null
}

type DbError = DatabaseError | DatabaseBusyError

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

export const startFlash = (flash: FlashStart): Effect.Effect<number, DbError, SqlClient.SqlClient> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const [row] = yield* sql<{ id: number }>`INSERT INTO flashes ${sql.insert({
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
    })} RETURNING id`
    return row?.id ?? 0
  }).pipe(Effect.mapError(databaseFailure("record flash")))

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

export const finishFlash = (
  id: number,
  outcome: FlashOutcome,
): Effect.Effect<void, DbError, SqlClient.SqlClient> =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => sql`UPDATE flashes SET status = ${outcome.status},
      image_sha256 = COALESCE(${outcome.imageSha256 ?? null}, image_sha256),
      error_code = ${outcome.errorCode ?? null}, error_message = ${outcome.errorMessage ?? null},
      first_bad_offset = ${outcome.firstBadOffset ?? null}, bad_bytes = ${outcome.badBytes ?? null},
      write_ms = ${outcome.writeMs ?? null}, verify_ms = ${outcome.verifyMs ?? null},
      finished_at = ${new Date().toISOString()}
      WHERE id = ${id}`,
  ).pipe(Effect.asVoid, Effect.mapError(databaseFailure("finish flash record")))

export const recordSuspectCard = (card: {
  readonly flashId: number
  readonly model?: string | undefined
  readonly serial?: string | undefined
  readonly sizeBytes: number
  readonly reason: string
}): Effect.Effect<void, DbError, SqlClient.SqlClient> =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) =>
      sql`INSERT INTO suspect_cards ${sql.insert({
        flash_id: card.flashId,
        model: card.model ?? null,
        serial: card.serial ?? null,
        size_bytes: card.sizeBytes,
        reason: card.reason,
        recorded_at: new Date().toISOString(),
      })}`,
  ).pipe(Effect.asVoid, Effect.mapError(databaseFailure("record suspect card")))

export interface SuspectCardRow {
  readonly id: number
  readonly flash_id: number
  readonly model: string | null
  readonly serial: string | null
  readonly size_bytes: number
  readonly reason: string
  readonly recorded_at: string
}

/** Earlier verdicts on a card with this serial (cards without a serial cannot be recognised again). */
export const suspectRecords = (
  serial: string | undefined,
): Effect.Effect<ReadonlyArray<SuspectCardRow>, DbError, SqlClient.SqlClient> =>
  serial === undefined || serial === ""
    ? Effect.succeed([])
    : Effect.flatMap(
        SqlClient.SqlClient,
        (sql) => sql<SuspectCardRow>`SELECT * FROM suspect_cards WHERE serial = ${serial} ORDER BY id`,
      ).pipe(Effect.mapError(databaseFailure("read suspect cards")))

export const listSuspectCards = (): Effect.Effect<
  ReadonlyArray<SuspectCardRow>,
  DbError,
  SqlClient.SqlClient
> =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => sql<SuspectCardRow>`SELECT * FROM suspect_cards ORDER BY id DESC`,
  ).pipe(Effect.mapError(databaseFailure("read suspect cards")))

export const listFlashes = (
  limit: number,
): Effect.Effect<ReadonlyArray<FlashRow>, DbError, SqlClient.SqlClient> =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => sql<FlashRow>`SELECT * FROM flashes ORDER BY id DESC LIMIT ${limit}`,
  ).pipe(Effect.mapError(databaseFailure("list flashes")))

/** A flash still marked running whose process is gone was interrupted. */
export const effectiveFlashStatus = (row: FlashRow): FlashStatus =>
  row.status === "running" &&
  !(row.pid === currentProcess.pid && row.pid_start === currentProcess.start) &&
  !holderAlive({ pid: row.pid, start: row.pid_start ?? "unknown", host: currentProcess.host })
    ? "interrupted"
    : row.status
