import { SqlClient } from "@effect/sql"
import { Context, Effect, Layer } from "effect"
import { AdvisoryLocks } from "./advisoryLocks.js"
import { ArtifactRecords, makeArtifactRecords } from "./artifactRecords.js"
import { AsuJobRecords, makeAsuJobRecords } from "./asuJobRecords.js"
import { BuilderRecords, makeBuilderRecords } from "./builderRecords.js"
import { BuildRecords, makeBuildRecords } from "./buildRecords.js"
import { RecordsSql } from "./database.js"
import { FlashRecords, makeFlashRecords } from "./flashRecords.js"
import { makeOtaRecords, OtaRecords } from "./otaRecords.js"
import { makePackageCheckRecords, PackageCheckRecords } from "./packageCheckRecords.js"
import { makeRevisionRecords, RevisionRecords } from "./revisionRecords.js"
import { makeStorePathRecords, StorePathRecords } from "./storePathRecords.js"

/** Every table's record service. */
export type Records =
  | ArtifactRecords
  | AsuJobRecords
  | BuilderRecords
  | BuildRecords
  | FlashRecords
  | OtaRecords
  | PackageCheckRecords
  | RevisionRecords
  | StorePathRecords

/**
 * The record services over one database, made in one effect: a layer per service (merged) cost every
 * command over a thousand effect steps to build and release again.
 */
export const makeRecords = Effect.gen(function* () {
  return Context.make(ArtifactRecords, ArtifactRecords.make(yield* makeArtifactRecords)).pipe(
    Context.add(AsuJobRecords, AsuJobRecords.make(yield* makeAsuJobRecords)),
    Context.add(BuilderRecords, BuilderRecords.make(yield* makeBuilderRecords)),
    Context.add(BuildRecords, BuildRecords.make(yield* makeBuildRecords)),
    Context.add(FlashRecords, FlashRecords.make(yield* makeFlashRecords)),
    Context.add(OtaRecords, OtaRecords.make(yield* makeOtaRecords)),
    Context.add(PackageCheckRecords, PackageCheckRecords.make(yield* makePackageCheckRecords)),
    Context.add(RevisionRecords, yield* makeRevisionRecords),
    Context.add(StorePathRecords, StorePathRecords.make(yield* makeStorePathRecords)),
  )
})

/** `makeRecords` as a layer. */
export const recordsLayer: Layer.Layer<Records, never, SqlClient.SqlClient | RecordsSql> =
  Layer.effectContext(makeRecords)

/**
 * What code that reads or writes the database needs: the record services, and the clients for the rest
 * (the store's SQLite file, and the records database: the same file, or PostgreSQL).
 */
export type Database = SqlClient.SqlClient | RecordsSql | AdvisoryLocks | Records

/**
 * The database services of the current context, and nothing else: what a service built once captures to
 * provide to its requests. (Capturing the whole context would also capture the layer's Scope and default
 * Progress, and override the request's own.)
 */
export const databaseContext: Effect.Effect<Context.Context<Database>, never, Database> = Effect.map(
  Effect.context<Database>(),
  Context.pick(
    SqlClient.SqlClient,
    RecordsSql,
    AdvisoryLocks,
    ArtifactRecords,
    AsuJobRecords,
    BuilderRecords,
    BuildRecords,
    FlashRecords,
    OtaRecords,
    PackageCheckRecords,
    RevisionRecords,
    StorePathRecords,
  ),
)
