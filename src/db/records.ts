import { SqlClient } from "@effect/sql"
import { Context, Effect, Layer } from "effect"
import { AdvisoryLocks } from "./advisoryLocks.js"
import { ArtifactRecords } from "./artifactRecords.js"
import { AsuJobRecords } from "./asuJobRecords.js"
import { BuilderRecords } from "./builderRecords.js"
import { BuildRecords } from "./buildRecords.js"
import { RecordsSql } from "./database.js"
import { FlashRecords } from "./flashRecords.js"
import { OtaRecords } from "./otaRecords.js"
import { PackageCheckRecords } from "./packageCheckRecords.js"
import { RevisionRecords, revisionRecordsLayer } from "./revisionRecords.js"
import { StorePathRecords } from "./storePathRecords.js"

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

/** The record services over one database. */
export const recordsLayer: Layer.Layer<Records, never, SqlClient.SqlClient | RecordsSql> = Layer.mergeAll(
  ArtifactRecords.Default,
  AsuJobRecords.Default,
  BuilderRecords.Default,
  BuildRecords.Default,
  FlashRecords.Default,
  OtaRecords.Default,
  PackageCheckRecords.Default,
  revisionRecordsLayer,
  StorePathRecords.Default,
)

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
