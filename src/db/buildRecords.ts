import { SqlSchema } from "@effect/sql"
import { Effect, Option, Schema } from "effect"
import { currentProcess, holderAlive } from "../process/processIdentity.js"
import { RecordsSql, sqlFailure } from "./database.js"
import { lazyQuery } from "./lazyQuery.js"

export const Requester = Schema.Literal("cli", "web", "mcp", "api")
export type Requester = typeof Requester.Type
export type BuildStatus = "running" | "succeeded" | "failed" | "interrupted"

/** A build (one profile realized once), as its row reads. */
export const BuildRow = Schema.Struct({
  id: Schema.Number,
  profile: Schema.String,
  revision_seq: Schema.NullOr(Schema.Number),
  revision_hash: Schema.String,
  builder_key: Schema.NullOr(Schema.String),
  overlay_key: Schema.NullOr(Schema.String),
  image_key: Schema.NullOr(Schema.String),
  artifacts_key: Schema.NullOr(Schema.String),
  cache_hit: Schema.Number,
  substituted_from: Schema.optionalWith(Schema.NullOr(Schema.String), { default: () => null }),
  requested_by: Schema.String,
  status: Schema.Literal("running", "succeeded", "failed", "interrupted"),
  error_code: Schema.NullOr(Schema.String),
  error_message: Schema.NullOr(Schema.String),
  started_at: Schema.String,
  finished_at: Schema.NullOr(Schema.String),
  duration_ms: Schema.NullOr(Schema.Number),
  pid: Schema.Number,
  pid_start: Schema.NullOr(Schema.String),
  /** The machine of the process that ran it (null in rows written before records were shared). */
  host: Schema.optionalWith(Schema.NullOr(Schema.String), { default: () => null }),
})
export type BuildRow = typeof BuildRow.Type

/**
 * A build still marked running whose process is gone was interrupted (killed, crashed). Only a process on
 * this machine can be looked at: another machine's running build (records in a shared PostgreSQL) is
 * taken at its word.
 */
export const effectiveStatus = (row: BuildRow): BuildStatus =>
  row.status === "running" &&
  !(row.pid === currentProcess.pid && row.pid_start === currentProcess.start) &&
  !holderAlive({ pid: row.pid, start: row.pid_start ?? "unknown", host: row.host ?? currentProcess.host })
    ? "interrupted"
    : row.status

export interface NewBuild {
  readonly profile: string
  readonly revisionSeq: number
  readonly revisionHash: string
  readonly requestedBy: Requester
}

export interface BuildOutcome {
  readonly status: Exclude<BuildStatus, "running">
  readonly cacheHit: boolean
  /** The shared cache the build's images came from (nothing built here), if any. */
  readonly substitutedFrom?: string | null | undefined
  readonly errorCode?: string | undefined
  readonly errorMessage?: string | undefined
  readonly startedMs: number
}

export type KeyColumn = "builder_key" | "overlay_key" | "image_key" | "artifacts_key"

/** What `BuildRecords` is made of: records.ts makes every record service in one effect. */
export const makeBuildRecords = Effect.gen(function* () {
  const sql = yield* RecordsSql
  const insert = lazyQuery(() =>
    SqlSchema.single({
      Request: Schema.Struct({
        profile: Schema.String,
        revision_seq: Schema.Number,
        revision_hash: Schema.String,
        requested_by: Requester,
      }),
      Result: Schema.Struct({ id: Schema.Number }),
      execute: (build) =>
        sql`INSERT INTO builds ${sql.insert({
          ...build,
          status: "running",
          started_at: new Date().toISOString(),
          pid: currentProcess.pid,
          pid_start: currentProcess.start,
          host: currentProcess.host,
        })} RETURNING id`,
    }),
  )
  const byId = lazyQuery(() =>
    SqlSchema.findOne({
      Request: Schema.Number,
      Result: BuildRow,
      execute: (id) => sql`SELECT * FROM builds WHERE id = ${id}`,
    }),
  )
  const recent = lazyQuery(() =>
    SqlSchema.findAll({
      Request: Schema.Struct({ profile: Schema.UndefinedOr(Schema.String), limit: Schema.Number }),
      Result: BuildRow,
      execute: ({ profile, limit }) =>
        profile === undefined
          ? sql`SELECT * FROM builds ORDER BY id DESC LIMIT ${limit}`
          : sql`SELECT * FROM builds WHERE profile = ${profile} ORDER BY id DESC LIMIT ${limit}`,
    }),
  )
  const latestGood = lazyQuery(() =>
    SqlSchema.findOne({
      Request: Schema.Struct({ profile: Schema.String, revisionHash: Schema.UndefinedOr(Schema.String) }),
      Result: BuildRow,
      execute: ({ profile, revisionHash }) =>
        revisionHash === undefined
          ? sql`SELECT * FROM builds WHERE profile = ${profile} AND status = 'succeeded' ORDER BY id DESC LIMIT 1`
          : sql`SELECT * FROM builds WHERE profile = ${profile} AND revision_hash = ${revisionHash}
              AND status = 'succeeded' ORDER BY id DESC LIMIT 1`,
    }),
  )
  const ofImage = lazyQuery(() =>
    SqlSchema.findAll({
      Request: Schema.String,
      Result: BuildRow,
      execute: (imageKey) =>
        sql`SELECT * FROM builds WHERE image_key = ${imageKey} AND status = 'succeeded' AND cache_hit = 0
          ORDER BY id DESC LIMIT 20`,
    }),
  )
  const reusesOfImage = lazyQuery(() =>
    SqlSchema.single({
      Request: Schema.String,
      Result: Schema.Struct({ count: Schema.Number }),
      execute: (imageKey) =>
        sql`SELECT COUNT(*) AS count FROM builds
          WHERE image_key = ${imageKey} AND status = 'succeeded' AND cache_hit = 1`,
    }),
  )
  const keysOf = lazyQuery(() =>
    SqlSchema.findAll({
      Request: Schema.Struct({
        profile: Schema.String,
        column: Schema.Literal("builder_key", "overlay_key", "image_key", "artifacts_key"),
      }),
      Result: Schema.Struct({ key: Schema.String }),
      execute: ({ profile, column }) =>
        sql`SELECT ${sql(column)} AS key FROM builds
          WHERE profile = ${profile} AND ${sql(column)} IS NOT NULL
          GROUP BY ${sql(column)} ORDER BY MAX(id) DESC LIMIT 50`,
    }),
  )
  return {
    /** Records a build as running, owned by this process; returns its id. */
    start: (build: NewBuild) =>
      insert({
        profile: build.profile,
        revision_seq: build.revisionSeq,
        revision_hash: build.revisionHash,
        requested_by: build.requestedBy,
      }).pipe(
        Effect.map((row) => row.id),
        Effect.catchTag("NoSuchElementException", (cause) => Effect.die(cause)),
        sqlFailure("record build"),
      ),
    updateKeys: (
      id: number,
      keys: { builder?: string; overlay?: string; image?: string; artifacts?: string },
    ) =>
      sql`UPDATE builds SET
        builder_key = COALESCE(${keys.builder ?? null}, builder_key),
        overlay_key = COALESCE(${keys.overlay ?? null}, overlay_key),
        image_key = COALESCE(${keys.image ?? null}, image_key),
        artifacts_key = COALESCE(${keys.artifacts ?? null}, artifacts_key)
        WHERE id = ${id}`.pipe(Effect.asVoid, sqlFailure("record build keys")),
    finish: (id: number, outcome: BuildOutcome) =>
      sql`UPDATE builds SET status = ${outcome.status}, cache_hit = ${outcome.cacheHit ? 1 : 0},
        substituted_from = ${outcome.substitutedFrom ?? null},
        error_code = ${outcome.errorCode ?? null}, error_message = ${outcome.errorMessage ?? null},
        finished_at = ${new Date().toISOString()}, duration_ms = ${Date.now() - outcome.startedMs}
        WHERE id = ${id}`.pipe(Effect.asVoid, sqlFailure("finish build")),
    list: (options: { readonly profile?: string | undefined; readonly limit: number }) =>
      recent({ profile: options.profile, limit: options.limit }).pipe(sqlFailure("list builds")),
    find: (id: number) => byId(id).pipe(Effect.map(Option.getOrUndefined), sqlFailure("read build")),
    /** The most recent successful build of a profile, optionally of one revision. */
    latestGood: (profile: string, revisionHash?: string) =>
      latestGood({ profile, revisionHash }).pipe(
        Effect.map(Option.getOrUndefined),
        sqlFailure("read builds"),
      ),
    /** Builds that made the image with this key (what a build marker names), not those that reused it. */
    ofImage: (imageKey: string) => ofImage(imageKey).pipe(sqlFailure("read builds")),
    /** How many builds reused the image with this key (cache hits). */
    reusesOfImage: (imageKey: string) =>
      reusesOfImage(imageKey).pipe(
        Effect.map((row) => row.count),
        Effect.catchTag("NoSuchElementException", (cause) => Effect.die(cause)),
        sqlFailure("read builds"),
      ),
    /** The node keys a profile's builds used, most recent first (builder, overlay, image or artifacts). */
    recentKeys: (profile: string, column: KeyColumn) =>
      keysOf({ profile, column }).pipe(
        Effect.map((rows) => rows.map((row) => row.key)),
        sqlFailure("read builds"),
      ),
  }
})

/** The `builds` table: every realization of a profile, who asked, which node keys it used, how it ended. */
export class BuildRecords extends Effect.Service<BuildRecords>()("owrt/BuildRecords", {
  accessors: true,
  effect: makeBuildRecords,
}) {}
