import { SqlClient, SqlSchema } from "@effect/sql"
import { Effect, Option, Schema } from "effect"
import { type Canonical, canonicalJson } from "../text/canonicalJson.js"
import { sqlFailure } from "./database.js"
import { lazyQuery } from "./lazyQuery.js"

/** A node output in the store, as its row reads. Only a valid row makes a path reusable. */
export const StorePathRow = Schema.Struct({
  key: Schema.String,
  kind: Schema.String,
  name: Schema.String,
  digest: Schema.String,
  /** The tree's entries (store/treeDigest.ts) as JSON, for `store verify`. */
  listing: Schema.String,
  files: Schema.Number,
  bytes: Schema.Number,
  created_at: Schema.String,
  valid: Schema.Number,
  /** Canonical JSON of what the key hashes (null for paths stored before it was kept). */
  key_inputs: Schema.NullOr(Schema.String),
})
export type StorePathRow = typeof StorePathRow.Type

/** A valid row's key, kind and name (its directory is `<key>-<name>`): what a lookup needs, without the listing. */
export const ValidStorePath = Schema.Struct({ key: Schema.String, kind: Schema.String, name: Schema.String })
export type ValidStorePath = typeof ValidStorePath.Type

/** What publishing a node records. */
export interface NewStorePath {
  readonly key: string
  readonly kind: string
  readonly name: string
  readonly digest: string
  /** The tree's entries (store/treeDigest.ts), kept as JSON for `store verify`. */
  readonly listing: ReadonlyArray<object>
  readonly files: number
  readonly bytes: number
  readonly keyInputs?: Canonical | undefined
}

/** What `StorePathRecords` is made of: records.ts makes every record service in one effect. */
export const makeStorePathRecords = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const byKey = lazyQuery(() =>
    SqlSchema.findOne({
      Request: Schema.String,
      Result: StorePathRow,
      execute: (key) => sql`SELECT * FROM store_paths WHERE key = ${key}`,
    }),
  )
  const all = lazyQuery(() =>
    SqlSchema.findAll({
      Request: Schema.Void,
      Result: StorePathRow,
      execute: () => sql`SELECT * FROM store_paths ORDER BY created_at, key`,
    }),
  )
  // Lookups read only key and name: a builder's listing alone is megabytes of JSON.
  const validByKey = lazyQuery(() =>
    SqlSchema.findOne({
      Request: Schema.String,
      Result: ValidStorePath,
      execute: (key) => sql`SELECT key, kind, name FROM store_paths WHERE key = ${key} AND valid = 1`,
    }),
  )
  const allValid = lazyQuery(() =>
    SqlSchema.findAll({
      Request: Schema.Void,
      Result: ValidStorePath,
      execute: () => sql`SELECT key, kind, name FROM store_paths WHERE valid = 1`,
    }),
  )
  return {
    findValid: (key: string) =>
      validByKey(key).pipe(Effect.map(Option.getOrUndefined), sqlFailure("read store path")),
    listValid: () => allValid(undefined).pipe(sqlFailure("list store paths")),
    find: (key: string) => byKey(key).pipe(Effect.map(Option.getOrUndefined), sqlFailure("read store path")),
    list: () => all(undefined).pipe(sqlFailure("list store paths")),
    insert: (row: NewStorePath) =>
      sql`INSERT OR REPLACE INTO store_paths ${sql.insert({
        key: row.key,
        kind: row.kind,
        name: row.name,
        digest: row.digest,
        listing: JSON.stringify(row.listing),
        files: row.files,
        bytes: row.bytes,
        created_at: new Date().toISOString(),
        valid: 1,
        key_inputs: row.keyInputs === undefined ? null : canonicalJson(row.keyInputs),
      })}`.pipe(Effect.asVoid, sqlFailure("record store path")),
    invalidate: (key: string) =>
      sql`UPDATE store_paths SET valid = 0 WHERE key = ${key}`.pipe(
        Effect.asVoid,
        sqlFailure("invalidate store path"),
      ),
    /**
     * Deletes a path's row unless a process holds a use named `use` (one statement, so atomic with the
     * uses: a process that took its use before this is seen; one after finds no valid path). Whether it did.
     */
    removeUnlessUsed: (key: string, use: string) =>
      sql`DELETE FROM store_paths WHERE key = ${key}
          AND NOT EXISTS (SELECT 1 FROM store_uses WHERE name = ${use})
          RETURNING key`.pipe(
        Effect.map((rows) => rows.length > 0),
        sqlFailure("delete store path"),
      ),
    remove: (key: string) =>
      sql`DELETE FROM store_paths WHERE key = ${key}`.pipe(Effect.asVoid, sqlFailure("delete store path")),
  }
})

/** The `store_paths` table: which node outputs the store holds, and whether they are still trusted. */
export class StorePathRecords extends Effect.Service<StorePathRecords>()("owrt/StorePathRecords", {
  accessors: true,
  effect: makeStorePathRecords,
}) {}
