import type { SqlClient } from "@effect/sql"
import { Context, Effect, Layer } from "effect"
import { BuilderStore, makeBuilderStore } from "../builder/builderStore.js"
import {
  noSignedIndexCache,
  noSignedIndexCacheService,
  SignedIndexCache,
} from "../builder/signedIndexCache.js"
import { AppConfig, appConfigLayer, type ConfigFlags } from "../config/appConfig.js"
import type { AdvisoryLocks } from "../db/advisoryLocks.js"
import { type DatabaseFailure, openDatabase, type RecordsSql } from "../db/database.js"
import { makeRecords, type Records } from "../db/records.js"
import type { ConfigInvalidError, DatabaseError } from "../errors.js"
import { Executor, makeExecutor } from "../graph/executor.js"
import { NodeKinds, nodeKindsLayer, nodeKindTable } from "../graph/nodeKinds.js"
import { makeRealizer, Realizer } from "../graph/realizer.js"
import { localRunner, localRunnerService, Runner } from "../graph/runner.js"
import { noSubstituter, noSubstituterService, Substituter } from "../graph/substituter.js"
import { makeProfileRepository, ProfileRepository } from "../profile/profileRepository.js"
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
 * The services are made one after the other in one scope, each given what the ones before it made: the
 * same services as `provideMerge`-ing their layers in a chain, at a fraction of the cost (every command
 * starts by making them, and each layer costs hundreds of effect steps to build and again to release).
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
      const database = Context.merge(settings, yield* Effect.provide(openDatabase, settings))
      const records = Context.merge(database, yield* Effect.provide(makeRecords, database))
      const profiles = Context.add(
        records,
        ProfileRepository,
        yield* Effect.provide(makeProfileRepository, records),
      )
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
      const builders = Context.add(profiles, BuilderStore, yield* Effect.provide(makeBuilderStore, indexes))
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
      const executor = Context.add(
        Context.merge(builders, Context.pick(Substituter)(graph)),
        Executor,
        yield* Effect.provide(makeExecutor, graph),
      )
      return Context.add(executor, Realizer, yield* Effect.provide(makeRealizer, executor))
    }),
  )

/** The library core with the configuration of the command line: flags > OWRT_* > graph.config.ts > defaults. */
export const appLayer = (
  flags: ConfigFlags,
  progress: Layer.Layer<Progress>,
): Layer.Layer<AppServices, ConfigInvalidError | DatabaseError | DatabaseFailure> =>
  coreLayer(appConfigLayer(flags), progress)
