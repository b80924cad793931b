import type { SqlClient } from "@effect/sql"
import { Layer } from "effect"
import { type AppConfig, appConfigLayer, type ConfigFlags } from "./config/appConfig.js"
import { databaseLayer } from "./db/database.js"
import { type RevisionRecords, revisionRecordsLayer } from "./db/revisionRecords.js"
import type { ConfigInvalidError, DatabaseBusyError, DatabaseError } from "./errors.js"
import { type ProfileRepository, profileRepositoryLayer } from "./profile/profileRepository.js"

/** The library core as one layer: what every frontend (CLI, MCP, web) runs its commands in. */
export const appLayer = (
  flags: ConfigFlags,
): Layer.Layer<
  AppConfig | SqlClient.SqlClient | RevisionRecords | ProfileRepository,
  ConfigInvalidError | DatabaseError | DatabaseBusyError
> => {
  const config = appConfigLayer(flags)
  const database = databaseLayer.pipe(Layer.provideMerge(config))
  const records = revisionRecordsLayer.pipe(Layer.provideMerge(database))
  return profileRepositoryLayer.pipe(Layer.provideMerge(records))
}
