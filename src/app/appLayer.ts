import type { SqlClient } from "@effect/sql"
import { Layer } from "effect"
import { type BuilderStore, builderStoreLayer } from "../builder/builderStore.js"
import { type AppConfig, appConfigLayer, type ConfigFlags } from "../config/appConfig.js"
import { type DatabaseFailure, databaseLayer } from "../db/database.js"
import { type Records, recordsLayer } from "../db/records.js"
import type { ConfigInvalidError, DatabaseError } from "../errors.js"
import { type Executor, executorLayer } from "../graph/executor.js"
import { nodeKindsLayer } from "../graph/nodeKinds.js"
import { type Realizer, realizerLayer } from "../graph/realizer.js"
import { localRunner } from "../graph/runner.js"
import { noSubstituter } from "../graph/substituter.js"
import { type ProfileRepository, profileRepositoryLayer } from "../profile/profileRepository.js"
import type { Progress } from "../progress/progress.js"

export type AppServices =
  | AppConfig
  | SqlClient.SqlClient
  | Records
  | ProfileRepository
  | BuilderStore
  | Executor
  | Realizer
  | Progress

/**
 * The library core as one layer over a given configuration: what every frontend runs its commands in (and
 * what in-process tests build with a configuration of their own). `progress` is the default `Progress`; a
 * request provides its own in its context (a web job, an MCP tool call).
 */
export const coreLayer = <E>(
  config: Layer.Layer<AppConfig, E>,
  progress: Layer.Layer<Progress>,
): Layer.Layer<AppServices, E | DatabaseError | DatabaseFailure> => {
  const database = databaseLayer.pipe(Layer.provideMerge(config))
  const records = recordsLayer.pipe(Layer.provideMerge(database))
  const profiles = profileRepositoryLayer.pipe(Layer.provideMerge(records))
  const builders = builderStoreLayer.pipe(Layer.provideMerge(progress))
  const core = builders.pipe(Layer.provideMerge(profiles))
  const executor = executorLayer.pipe(
    Layer.provide(Layer.mergeAll(nodeKindsLayer(), noSubstituter, localRunner)),
    Layer.provideMerge(core),
  )
  return realizerLayer.pipe(Layer.provideMerge(executor))
}

/** The library core with the configuration of the command line: flags > OWRT_* > graph.config.ts > defaults. */
export const appLayer = (
  flags: ConfigFlags,
  progress: Layer.Layer<Progress>,
): Layer.Layer<AppServices, ConfigInvalidError | DatabaseError | DatabaseFailure> =>
  coreLayer(appConfigLayer(flags), progress)
