import { existsSync, readFileSync } from "node:fs"
import { join } from "node:path"
import type { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { AppConfig } from "../config/appConfig.js"
import { type BuildRow, findBuild } from "../db/buildRecords.js"
import { findStorePath } from "../db/storePathRecords.js"
import { type DatabaseBusyError, type DatabaseError, NotFoundError } from "../errors.js"

/** A build's record, or `not_found` naming the command that lists them. */
export const requireBuild = (
  id: number,
): Effect.Effect<BuildRow, NotFoundError | DatabaseError | DatabaseBusyError, SqlClient.SqlClient> =>
  Effect.flatMap(findBuild(id), (row) =>
    row
      ? Effect.succeed(row)
      : Effect.fail(
          new NotFoundError({ what: `build ${id}`, detail: "no such build (see owrt builds list)" }),
        ),
  )

/** A build's log: the make-image output in the store, or the copy kept when the build failed. */
export const buildLog = (
  row: BuildRow,
): Effect.Effect<
  string,
  NotFoundError | DatabaseError | DatabaseBusyError,
  AppConfig | SqlClient.SqlClient
> =>
  Effect.gen(function* () {
    const config = yield* AppConfig
    const failed = join(config.store, "logs", `build-${row.id}.log`)
    if (existsSync(failed)) return readFileSync(failed, "utf8")
    if (row.image_key) {
      const stored = yield* findStorePath(row.image_key)
      const path = stored ? join(config.store, `${row.image_key}-${stored.name}`, "build.log") : undefined
      if (path && existsSync(path)) return readFileSync(path, "utf8")
    }
    return yield* new NotFoundError({
      what: `build ${row.id}`,
      detail: "no log (it ran no make, or the log was removed)",
    })
  })
