import { SqlSchema } from "@effect/sql"
import { Effect, Schema } from "effect"
import { RecordsSql, sqlFailure } from "./database.js"
import { lazyQuery } from "./lazyQuery.js"

/*
 * OTA: the releases this owrt published (`owrt publish`), and the devices `owrt ota serve` heard from —
 * the version each reported with `current=`, on which channel, first and last seen.
 */

export const OtaReleaseRow = Schema.Struct({
  repository: Schema.String,
  version: Schema.String,
  device: Schema.String,
  channel: Schema.String,
  manifest_digest: Schema.String,
  sha256: Schema.String,
  size: Schema.Number,
  image: Schema.String,
  profile: Schema.String,
  revision: Schema.String,
  artifacts_key: Schema.String,
  published_at: Schema.String,
})
export type OtaReleaseRow = typeof OtaReleaseRow.Type

export const OtaDeviceRow = Schema.Struct({
  device: Schema.String,
  version: Schema.String,
  channel: Schema.String,
  up_to_date: Schema.Number,
  latest: Schema.NullOr(Schema.String),
  address: Schema.NullOr(Schema.String),
  first_seen: Schema.String,
  last_seen: Schema.String,
})
export type OtaDeviceRow = typeof OtaDeviceRow.Type

/** What `OtaRecords` is made of: records.ts makes every record service in one effect. */
export const makeOtaRecords = Effect.gen(function* () {
  const sql = yield* RecordsSql
  const devices = lazyQuery(() =>
    SqlSchema.findAll({
      Request: Schema.Void,
      Result: OtaDeviceRow,
      execute: () => sql`SELECT * FROM ota_devices ORDER BY device`,
    }),
  )
  const releases = lazyQuery(() =>
    SqlSchema.findAll({
      Request: Schema.Void,
      Result: OtaReleaseRow,
      execute: () => sql`SELECT * FROM ota_releases ORDER BY device, published_at`,
    }),
  )
  const releasesOf = lazyQuery(() =>
    SqlSchema.findAll({
      Request: Schema.String,
      Result: OtaReleaseRow,
      execute: (repository) => sql`SELECT * FROM ota_releases WHERE repository = ${repository}`,
    }),
  )
  return {
    recordRelease: (row: OtaReleaseRow) =>
      sql`INSERT INTO ota_releases ${sql.insert(row)} ON CONFLICT DO NOTHING`.pipe(
        Effect.asVoid,
        sqlFailure("record an OTA release"),
      ),
    /** A device's report (`current=`): its version now, and when it was last heard. */
    recordDevice: (report: {
      readonly device: string
      readonly version: string
      readonly channel: string
      readonly latest: string | null
      readonly upToDate: boolean
      readonly address: string | null
    }) => {
      const now = new Date().toISOString()
      return sql`INSERT INTO ota_devices ${sql.insert({
        device: report.device,
        version: report.version,
        channel: report.channel,
        up_to_date: report.upToDate ? 1 : 0,
        latest: report.latest,
        address: report.address,
        first_seen: now,
        last_seen: now,
      })} ON CONFLICT (device) DO UPDATE SET version = excluded.version, channel = excluded.channel,
        up_to_date = excluded.up_to_date, latest = excluded.latest, address = excluded.address,
        last_seen = excluded.last_seen`.pipe(Effect.asVoid, sqlFailure("record an OTA device"))
    },
    devices: () => devices(undefined).pipe(sqlFailure("list OTA devices")),
    releases: () => releases(undefined).pipe(sqlFailure("list OTA releases")),
    /** The releases recorded for one repository (`local/<device>` for releases kept in the local store). */
    releasesOf: (repository: string) => releasesOf(repository).pipe(sqlFailure("list OTA releases")),
  }
})

export class OtaRecords extends Effect.Service<OtaRecords>()("owrt/OtaRecords", {
  accessors: true,
  effect: makeOtaRecords,
}) {}
