import { SqlClient, SqlSchema } from "@effect/sql"
import { Effect, Option, Schema } from "effect"
import { sqlFailure } from "./database.js"
import { lazyQuery } from "./lazyQuery.js"

/** What `PackageCheckRecords` is made of: records.ts makes every record service in one effect. */
export const makePackageCheckRecords = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const byKey = lazyQuery(() =>
    SqlSchema.findOne({
      Request: Schema.String,
      Result: Schema.Struct({ key: Schema.String }),
      execute: (key) => sql`SELECT key FROM package_checks WHERE key = ${key}`,
    }),
  )
  return {
    checked: (key: string) => byKey(key).pipe(Effect.map(Option.isSome), sqlFailure("read package checks")),
    record: (key: string, manifest: string) =>
      sql`INSERT OR REPLACE INTO package_checks ${sql.insert({
        key,
        manifest,
        checked_at: new Date().toISOString(),
      })}`.pipe(Effect.asVoid, sqlFailure("record package check")),
  }
})

/**
 * The `package_checks` table: package selections whose manifest was already checked against the
 * builder's index, so a rebuild of the same selection skips the check.
 */
export class PackageCheckRecords extends Effect.Service<PackageCheckRecords>()("owrt/PackageCheckRecords", {
  accessors: true,
  effect: makePackageCheckRecords,
}) {}
