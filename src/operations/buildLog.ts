import { existsSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { Effect } from "effect"
import { AppConfig } from "../config/appConfig.js"
import { BuildRecords, type BuildRow } from "../db/buildRecords.js"
import type { DatabaseFailure } from "../db/database.js"
import type { Database } from "../db/records.js"
import { StorePathRecords } from "../db/storePathRecords.js"
import { NotFoundError } from "../errors.js"

/** A build's record, or `not_found` naming the command that lists them. */
export const requireBuild = (
  id: number,
): Effect.Effect<BuildRow, NotFoundError | DatabaseFailure, Database> =>
  Effect.flatMap(BuildRecords.find(id), (row) =>
    row
      ? Effect.succeed(row)
      : Effect.fail(
          new NotFoundError({ what: `build ${id}`, detail: "no such build (see owrt builds list)" }),
        ),
  )

/** A build's log: the make-image output in the store, or the copy kept when the build failed. */
export const buildLog = (
  row: BuildRow,
): Effect.Effect<string, NotFoundError | DatabaseFailure, AppConfig | Database> =>
  Effect.gen(function* () {
    const config = yield* AppConfig
    const failed = join(config.store, "logs", `build-${row.id}.log`)
    if (existsSync(failed)) return readFileSync(failed, "utf8")
    if (row.image_key) {
      const stored = yield* StorePathRecords.find(row.image_key)
      const path = stored ? join(config.store, `${row.image_key}-${stored.name}`, "build.log") : undefined
      if (path && existsSync(path)) return readFileSync(path, "utf8")
    }
    return yield* new NotFoundError({
      what: `build ${row.id}`,
      detail: "no log (it ran no make, or the log was removed)",
    })
  })
