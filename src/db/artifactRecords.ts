import { SqlClient, SqlSchema } from "@effect/sql"
import { Effect, Order, Schema } from "effect"
import { RecordsSql, sqlFailure } from "./database.js"
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

/** What `ArtifactRecords` is made of: records.ts makes every record service in one effect. */
export const makeArtifactRecords = Effect.gen(function* () {
  const sql = yield* RecordsSql
  const store = yield* SqlClient.SqlClient
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
  // Artifacts and builds are records (this file, or a shared PostgreSQL); which sets this store holds is
  // its own store_paths table. Joined here, not in SQL: the two may be different databases. The store's
  // artifact sets come first (a store holds far fewer than a team's database records), then their records.
  const storedSets = lazyQuery(() =>
    SqlSchema.findAll({
      Request: Schema.NullOr(Schema.String),
      Result: Schema.Struct({ key: Schema.String, name: Schema.String, created_at: Schema.String }),
      execute: (key) =>
        store`SELECT key, name, created_at FROM store_paths
          WHERE valid = 1 AND kind = 'collect-artifacts' ${key === null ? store`` : store`AND key = ${key}`}`,
    }),
  )
  const described = lazyQuery(() =>
    SqlSchema.findAll({
      Request: Schema.Struct({ profile: Schema.NullOr(Schema.String), keys: Schema.Array(Schema.String) }),
      Result: Schema.Struct({
        ...ArtifactRow.fields,
        build_id: Schema.NullOr(Schema.Number),
        profile: Schema.NullOr(Schema.String),
        revision_seq: Schema.NullOr(Schema.Number),
      }),
      execute: ({ profile, keys }) => sql`
      SELECT a.artifacts_key, a.name, a.type, a.filesystem, a.sha256, a.size,
             b.id AS build_id, b.profile, b.revision_seq
      FROM artifacts a
      LEFT JOIN builds b ON b.id = (
        SELECT MAX(id) FROM builds WHERE artifacts_key = a.artifacts_key AND status = 'succeeded')
      WHERE ${sql.in("a.artifacts_key", keys)} ${profile === null ? sql`` : sql`AND b.profile = ${profile}`}`,
    }),
  )
  const stored = (filter: { profile: string | null; key: string | null; limit: number }) =>
    Effect.gen(function* () {
      const sets = yield* storedSets(filter.key)
      const paths = new Map(sets.map((set) => [set.key, set] as const))
      const keys = [...paths.keys()]
      const result: Array<StoredArtifactRow> = []
      for (let at = 0; at < keys.length; at += 500) {
        for (const row of yield* described({ profile: filter.profile, keys: keys.slice(at, at + 500) })) {
          const path = paths.get(row.artifacts_key)
          if (path) result.push({ ...row, path_name: path.name, created_at: path.created_at })
        }
      }
      result.sort(
        (a, b) =>
          Order.string(b.created_at, a.created_at) ||
          Order.string(a.artifacts_key, b.artifacts_key) ||
          Order.string(a.name, b.name),
      )
      return result.slice(0, filter.limit)
    })
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
          yield* sql`INSERT INTO artifacts ${sql.insert({ artifacts_key: artifactsKey, ...image })}
            ON CONFLICT (artifacts_key, name) DO UPDATE SET type = excluded.type,
              filesystem = excluded.filesystem, sha256 = excluded.sha256, size = excluded.size`
        }
      }).pipe(sqlFailure("record artifacts")),
  }
})

/** The `artifacts` table: the images each collected artifact set holds, findable by their SHA-256. */
export class ArtifactRecords extends Effect.Service<ArtifactRecords>()("owrt/ArtifactRecords", {
  accessors: true,
  effect: makeArtifactRecords,
}) {}
