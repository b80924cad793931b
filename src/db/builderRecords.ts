import { SqlClient, SqlSchema } from "@effect/sql"
import { Effect, Option, Schema } from "effect"
import { RecordsSql, sqlFailure } from "./database.js"
import { lazyQuery } from "./lazyQuery.js"

/** An Image Builder in the store, as its row reads. `path` is relative to the store. */
export const BuilderRow = Schema.Struct({
  key: Schema.String,
  path: Schema.String,
  release: Schema.String,
  target: Schema.String,
  upstream: Schema.String,
  archive_name: Schema.String,
  archive_sha256: Schema.String,
  signed_by: Schema.String,
  files: Schema.Number,
  bytes: Schema.Number,
  created_at: Schema.String,
  last_used_at: Schema.String,
})
export type BuilderRow = typeof BuilderRow.Type

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

/** A cached resolution's row, decoded into an `ArchiveResolution`. */
const ResolutionRow = Schema.transform(
  Schema.Struct({
    upstream: Schema.String,
    release: Schema.String,
    target: Schema.String,
    archive_name: Schema.String,
    archive_url: Schema.String,
    archive_sha256: Schema.String,
    signed_by: Schema.String,
  }),
  Schema.Struct({
    upstream: Schema.String,
    release: Schema.String,
    target: Schema.String,
    name: Schema.String,
    url: Schema.String,
    sha256: Schema.String,
    signedBy: Schema.String,
  }),
  {
    strict: true,
    decode: (row) => ({
      upstream: row.upstream,
      release: row.release,
      target: row.target,
      name: row.archive_name,
      url: row.archive_url,
      sha256: row.archive_sha256,
      signedBy: row.signed_by,
    }),
    encode: (resolution) => ({
      upstream: resolution.upstream,
      release: resolution.release,
      target: resolution.target,
      archive_name: resolution.name,
      archive_url: resolution.url,
      archive_sha256: resolution.sha256,
      signed_by: resolution.signedBy,
    }),
  },
)

/** What `BuilderRecords` is made of: records.ts makes every record service in one effect. */
export const makeBuilderRecords = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  // The builds are in the records database (this file, or a shared PostgreSQL).
  const records = yield* RecordsSql
  const byKey = lazyQuery(() =>
    SqlSchema.findOne({
      Request: Schema.String,
      Result: BuilderRow,
      execute: (key) => sql`SELECT * FROM builders WHERE key = ${key}`,
    }),
  )
  const all = lazyQuery(() =>
    SqlSchema.findAll({
      Request: Schema.Void,
      Result: BuilderRow,
      execute: () => sql`SELECT * FROM builders ORDER BY release, target, created_at`,
    }),
  )
  const withoutStorePath = lazyQuery(() =>
    SqlSchema.findAll({
      Request: Schema.Void,
      Result: BuilderRow,
      execute: () =>
        sql`SELECT b.* FROM builders b LEFT JOIN store_paths s ON s.key = b.key WHERE s.key IS NULL`,
    }),
  )
  const references = lazyQuery(() =>
    SqlSchema.findOne({
      Request: Schema.String,
      Result: Schema.Struct({ n: Schema.Number }),
      execute: (key) => records`SELECT COUNT(*) AS n FROM builds WHERE builder_key = ${key}`,
    }),
  )
  const resolution = lazyQuery(() =>
    SqlSchema.findOne({
      Request: Schema.Struct({
        upstream: Schema.String,
        release: Schema.String,
        target: Schema.String,
        anyUpstream: Schema.Boolean,
      }),
      Result: ResolutionRow,
      execute: ({ upstream, release, target, anyUpstream }) =>
        sql`SELECT * FROM upstream_resolutions
          WHERE release = ${release} AND target = ${target}
            AND (upstream = ${upstream} OR ${anyUpstream ? 1 : 0})
          ORDER BY (upstream = ${upstream}) DESC, resolved_at DESC LIMIT 1`,
    }),
  )
  const resolutions = lazyQuery(() =>
    SqlSchema.findAll({
      Request: Schema.Struct({ upstream: Schema.String, release: Schema.String, target: Schema.String }),
      Result: ResolutionRow,
      execute: ({ upstream, release, target }) =>
        sql`SELECT * FROM upstream_resolutions WHERE release = ${release} AND target = ${target}
          ORDER BY (upstream = ${upstream}) DESC, resolved_at DESC`,
    }),
  )
  const info = lazyQuery(() =>
    SqlSchema.findOne({
      Request: Schema.String,
      Result: Schema.Struct({ info: Schema.String }),
      execute: (key) => sql`SELECT info FROM builder_info WHERE builder_key = ${key}`,
    }),
  )
  return {
    /** A builder's `make info` as kept (JSON; the image domain decodes it with its Schema). */
    info: (key: string) =>
      info(key).pipe(
        Effect.map(Option.map((row) => row.info)),
        Effect.map(Option.getOrUndefined),
        sqlFailure("read builder info"),
      ),
    saveInfo: (key: string, json: string) =>
      sql`INSERT OR REPLACE INTO builder_info (builder_key, info) VALUES (${key}, ${json})`.pipe(
        Effect.asVoid,
        sqlFailure("record builder info"),
      ),
    find: (key: string) => byKey(key).pipe(Effect.map(Option.getOrUndefined), sqlFailure("read builder")),
    list: () => all(undefined).pipe(sqlFailure("list builders")),
    /** Builders a store from before fetch-builder was an ordinary node recorded only here. */
    withoutStorePath: () => withoutStorePath(undefined).pipe(sqlFailure("read builders")),
    insert: (row: BuilderRow) =>
      sql`INSERT OR REPLACE INTO builders ${sql.insert({ ...row })}`.pipe(
        Effect.asVoid,
        sqlFailure("record builder"),
      ),
    remove: (key: string) =>
      sql`DELETE FROM builders WHERE key = ${key}`.pipe(Effect.asVoid, sqlFailure("delete builder")),
    touch: (key: string) =>
      sql`UPDATE builders SET last_used_at = ${new Date().toISOString()} WHERE key = ${key}`.pipe(
        Effect.asVoid,
        sqlFailure("touch builder"),
      ),
    /** Builds that used a builder; zero means `builders prune` may remove it. */
    references: (key: string) =>
      references(key).pipe(
        Effect.map((row) => Option.match(row, { onNone: () => 0, onSome: ({ n }) => n })),
        sqlFailure("count builder references"),
      ),
    /**
     * The cached resolution of a release/target on `upstream`; with `anyUpstream` (offline, where the
     * upstream is not contacted anyway) the most recent one from any upstream.
     */
    findResolution: (upstream: string, release: string, target: string, anyUpstream = false) =>
      resolution({ upstream, release, target, anyUpstream }).pipe(
        Effect.map(Option.getOrUndefined),
        sqlFailure("read resolution"),
      ),
    /** Every cached resolution of a release/target, `upstream`'s first, then the most recent first. */
    resolutions: (upstream: string, release: string, target: string) =>
      resolutions({ upstream, release, target }).pipe(sqlFailure("read resolutions")),
    saveResolution: (archive: ArchiveResolution) =>
      sql`INSERT OR REPLACE INTO upstream_resolutions ${sql.insert({
        upstream: archive.upstream,
        release: archive.release,
        target: archive.target,
        archive_name: archive.name,
        archive_url: archive.url,
        archive_sha256: archive.sha256,
        signed_by: archive.signedBy,
        resolved_at: new Date().toISOString(),
      })}`.pipe(Effect.asVoid, sqlFailure("record resolution")),
  }
})

/**
 * The `builders`, `builder_info` and `upstream_resolutions` tables: fetched Image Builders, their
 * `make info`, and what a release/target resolved to.
 */
export class BuilderRecords extends Effect.Service<BuilderRecords>()("owrt/BuilderRecords", {
  accessors: true,
  effect: makeBuilderRecords,
}) {}
