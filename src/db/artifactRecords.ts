import { SqlClient, SqlSchema } from "@effect/sql"
import { Effect, Schema } from "effect"
import { sqlFailure } from "./database.js"
import { lazyQuery } from "./lazyQuery.js"

/** An image of a collected artifact set, as its row reads. */
export const ArtifactRow = Schema.Struct({
  artifacts_key: Schema.String,
  name: Schema.String,
  type: Schema.String,
  filesystem: Schema.NullOr(Schema.String),
  sha256: Schema.String,
  size: Schema.Number,
})
export type ArtifactRow = typeof ArtifactRow.Type

/** An image of a valid stored artifact set, with the latest successful build that produced the set. */
export const StoredArtifactRow = Schema.Struct({
  ...ArtifactRow.fields,
  /** The store path's name (its directory is `<key>-<name>`). */
  path_name: Schema.String,
  created_at: Schema.String,
  build_id: Schema.NullOr(Schema.Number),
  profile: Schema.NullOr(Schema.String),
  revision_seq: Schema.NullOr(Schema.Number),
})
export type StoredArtifactRow = typeof StoredArtifactRow.Type

/** An image to record in an artifact set. */
export type NewArtifact = Omit<ArtifactRow, "artifacts_key">

/** The `artifacts` table: the images each collected artifact set holds, findable by their SHA-256. */
export class ArtifactRecords extends Effect.Service<ArtifactRecords>()("owrt/ArtifactRecords", {
  accessors: true,
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const byName = lazyQuery(() =>
      SqlSchema.findAll({
        Request: Schema.Struct({ key: Schema.String, name: Schema.String }),
        Result: ArtifactRow,
        execute: ({ key, name }) =>
          sql`SELECT * FROM artifacts WHERE artifacts_key = ${key} AND name = ${name}`,
      }),
    )
    const byDigestPrefix = lazyQuery(() =>
      SqlSchema.findAll({
        Request: Schema.String,
        Result: ArtifactRow,
        execute: (prefix) =>
          sql`SELECT * FROM artifacts WHERE sha256 >= ${prefix} AND sha256 < ${`${prefix}g`} LIMIT 10`,
      }),
    )
    const count = lazyQuery(() =>
      SqlSchema.single({
        Request: Schema.String,
        Result: Schema.Struct({ n: Schema.Number }),
        execute: (key) => sql`SELECT COUNT(*) AS n FROM artifacts WHERE artifacts_key = ${key}`,
      }),
    )
    const stored = lazyQuery(() =>
      SqlSchema.findAll({
        Request: Schema.Struct({
          profile: Schema.NullOr(Schema.String),
          key: Schema.NullOr(Schema.String),
          limit: Schema.Number,
        }),
        Result: StoredArtifactRow,
        execute: ({ profile, key, limit }) => sql`
        SELECT a.artifacts_key, a.name, a.type, a.filesystem, a.sha256, a.size,
               s.name AS path_name, s.created_at, b.id AS build_id, b.profile, b.revision_seq
        FROM artifacts a
        JOIN store_paths s ON s.key = a.artifacts_key AND s.valid = 1
        LEFT JOIN builds b ON b.id = (
          SELECT MAX(id) FROM builds WHERE artifacts_key = a.artifacts_key AND status = 'succeeded')
        WHERE (${profile} IS NULL OR b.profile = ${profile})
          AND (${key} IS NULL OR a.artifacts_key = ${key})
        ORDER BY s.created_at DESC, a.artifacts_key, a.name
        LIMIT ${limit}`,
      }),
    )
    return {
      /**
       * Images of valid artifact sets, newest first, with the latest successful build that produced each
       * set; optionally only one profile's, or one set's.
       */
      stored: (filter: {
        readonly profile?: string | undefined
        readonly key?: string | undefined
        readonly limit: number
      }) =>
        stored({ profile: filter.profile ?? null, key: filter.key ?? null, limit: filter.limit }).pipe(
          sqlFailure("list artifacts"),
        ),
      /**
       * Artifacts an id names: `<artifacts key>/<file name>`, or a prefix (8+ hex digits) of the image's
       * SHA-256, which is what auditors and the manifest show.
       */
      find: (id: string) => {
        const slash = id.indexOf("/")
        return (
          slash > 0
            ? byName({ key: id.slice(0, slash), name: id.slice(slash + 1) })
            : byDigestPrefix(id.toLowerCase())
        ).pipe(sqlFailure("find artifacts"))
      },
      /** Records the images of a set made here (a cache hit finds them recorded and writes nothing). */
      record: (artifactsKey: string, images: ReadonlyArray<NewArtifact>) =>
        Effect.gen(function* () {
          const present = yield* count(artifactsKey).pipe(
            Effect.catchTag("NoSuchElementException", () => Effect.succeed({ n: 0 })),
          )
          if (present.n === images.length) return
          for (const image of images) {
            yield* sql`INSERT OR REPLACE INTO artifacts ${sql.insert({ artifacts_key: artifactsKey, ...image })}`
          }
        }).pipe(sqlFailure("record artifacts")),
    }
  }),
}) {}
