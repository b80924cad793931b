import type { SqlClient } from "@effect/sql"
import { Context, Effect, Layer } from "effect"
import { type BuilderStore, builderStoreLayer } from "../builder/builderStore.js"
import {
  noSignedIndexCache,
  noSignedIndexCacheService,
  SignedIndexCache,
} from "../builder/signedIndexCache.js"
import { AppConfig, appConfigLayer, type ConfigFlags } from "../config/appConfig.js"
import type { AdvisoryLocks } from "../db/advisoryLocks.js"
import { type DatabaseFailure, databaseLayer, type RecordsSql } from "../db/database.js"
import { type Records, recordsLayer } from "../db/records.js"
import type { ConfigInvalidError, DatabaseError } from "../errors.js"
import { type Executor, executorLayer } from "../graph/executor.js"
import { NodeKinds, nodeKindsLayer, nodeKindTable } from "../graph/nodeKinds.js"
import { type Realizer, realizerLayer } from "../graph/realizer.js"
import { localRunner, localRunnerService, Runner } from "../graph/runner.js"
import { noSubstituter, noSubstituterService, Substituter } from "../graph/substituter.js"
import { type ProfileRepository, profileRepositoryLayer } from "../profile/profileRepository.js"
import type { Progress } from "../progress/progress.js"

/** The shared cache when one is configured (loaded only then: tar and the registry client stay out of other runs). */
const substituterLayer = Layer.unwrapEffect(
  Effect.gen(function* () {
    const config = yield* AppConfig
    if (config.cache.substituters.length === 0) return noSubstituter
    const { ociSubstituterLayer } = yield* Effect.promise(() => import("../cache/ociSubstituter.js"))
    return ociSubstituterLayer
  }),
)

/** The shared cache's copy of OpenWrt's signed indexes, for resolving builders without the download server. */
const signedIndexLayer = Layer.unwrapEffect(
  Effect.gen(function* () {
    const config = yield* AppConfig
    if (config.cache.substituters.length === 0) return noSignedIndexCache
    const { signedIndexOciLayer } = yield* Effect.promise(() => import("../cache/signedIndexOci.js"))
    return signedIndexOciLayer
  }),
)

/** Where nodes are built: here, or (`executor: postgres://…`) by a build farm's workers, loaded only then. */
const runnerLayer = Layer.unwrapEffect(
  Effect.gen(function* () {
    const config = yield* AppConfig
    if (config.executor.kind === "local") return localRunner
    const { postgresRunnerLayer } = yield* Effect.promise(() => import("../farm/postgresRunner.js"))
    return postgresRunnerLayer
  }),
)

export type AppServices =
  | AppConfig
  | SqlClient.SqlClient
  | RecordsSql
  | AdvisoryLocks
  | Records
  | ProfileRepository
  | BuilderStore
  | Executor
  | Realizer
  | Substituter
  | Progress

/**
 * The library core as one layer over a given configuration: what every frontend runs its commands in (and
 * what in-process tests build with a configuration of their own). `progress` is the default `Progress`; a
 * request provides its own in its context (a web job, an MCP tool call).
 *
 * The layers are built one after the other into one scope, each given what the ones before it made: the
 * same services as `provideMerge`-ing them in a chain, at a fraction of the cost (every command starts by
 * building them, and nested layers cost thousands of effect steps to build and to release).
 */
export const coreLayer = <E>(
  config: Layer.Layer<AppConfig, E>,
  progress: Layer.Layer<Progress>,
): Layer.Layer<AppServices, E | DatabaseError | DatabaseFailure> =>
  Layer.scopedContext(
    Effect.gen(function* () {
      const scope = yield* Effect.scope
      const memoMap = yield* Layer.makeMemoMap
      const build = <ROut, E1, RIn>(layer: Layer.Layer<ROut, E1, RIn>, context: Context.Context<RIn>) =>
        Effect.provide(Layer.buildWithMemoMap(layer, memoMap, scope), context)
      const settings = Context.merge(
        yield* build(config, Context.empty()),
        yield* build(progress, Context.empty()),
      )
      const database = Context.merge(settings, yield* build(databaseLayer, settings))
      const records = Context.merge(database, yield* build(recordsLayer, database))
      const profiles = Context.merge(records, yield* build(profileRepositoryLayer, records))
      // No shared cache and no build farm (most runs): their services are plain values, with no layers to
      // build and release.
      const appConfig = Context.get(settings, AppConfig)
      const local = appConfig.cache.substituters.length === 0 && appConfig.executor.kind === "local"
      const indexes = Context.merge(
        profiles,
        local
          ? Context.make(SignedIndexCache, noSignedIndexCacheService)
          : yield* build(signedIndexLayer, settings),
      )
      const builders = Context.merge(profiles, yield* build(builderStoreLayer, indexes))
      const graph = Context.merge(
        builders,
        local
          ? Context.make(NodeKinds, nodeKindTable()).pipe(
              Context.add(Substituter, noSubstituterService),
              Context.add(Runner, localRunnerService),
            )
          : yield* build(
              Layer.provideMerge(runnerLayer, Layer.mergeAll(nodeKindsLayer(), substituterLayer)),
              settings,
            ),
      )
      const executor = Context.merge(
        Context.merge(builders, Context.pick(Substituter)(graph)),
        yield* build(executorLayer, graph),
      )
      return Context.merge(executor, yield* build(realizerLayer, executor))
    }),
  )

/** The library core with the configuration of the command line: flags > OWRT_* > graph.config.ts > defaults. */
export const appLayer = (
  flags: ConfigFlags,
  progress: Layer.Layer<Progress>,
): Layer.Layer<AppServices, ConfigInvalidError | DatabaseError | DatabaseFailure> =>
  coreLayer(appConfigLayer(flags), progress)
