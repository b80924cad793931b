import { SqlSchema } from "@effect/sql"
import { Effect, Option, Schema } from "effect"
import { currentProcess, holderAlive } from "../process/processIdentity.js"
import { RecordsSql, sqlFailure } from "./database.js"
import { lazyQuery } from "./lazyQuery.js"

/** Where a job is: waiting, being built, built, or failed (asu-api.md §5). */
export const AsuJobStatus = Schema.Literal("queued", "started", "finished", "failed")
export type AsuJobStatus = typeof AsuJobStatus.Type

/** A row of `asu_jobs`, decoded: the database is read back, not trusted. */
export const AsuJobRow = Schema.Struct({
  id: Schema.Number,
  request_hash: Schema.String,
  /** The decoded build request as JSON (profile already canonical). */
  request: Schema.String,
  bin_dir: Schema.String,
  status: AsuJobStatus,
  imagebuilder_status: Schema.String,
  attempts: Schema.Number,
  enqueued_at: Schema.String,
  started_at: Schema.NullOr(Schema.String),
  finished_at: Schema.NullOr(Schema.String),
  result_ttl_seconds: Schema.Number,
  failure_ttl_seconds: Schema.Number,
  expires_at: Schema.NullOr(Schema.String),
  /** The finished build's body (asu-api.md §6) as JSON. */
  result: Schema.NullOr(Schema.String),
  detail: Schema.NullOr(Schema.String),
  stdout: Schema.NullOr(Schema.String),
  stderr: Schema.NullOr(Schema.String),
})
export type AsuJobRow = typeof AsuJobRow.Type

/**
 * A row of `asu_events`: one per valid build request (`requests`, and `cache-hits` when a finished build
 * answered it) and one per failed build (`failures`, with its detail). Nothing about the client is kept.
 */
export const AsuEventRow = Schema.Struct({
  at: Schema.String,
  event: Schema.Literal("requests", "cache-hits", "failures"),
  version: Schema.String,
  target: Schema.String,
  profile: Schema.String,
  /** The requested packages, as JSON. */
  packages: Schema.String,
  detail: Schema.NullOr(Schema.String),
})
export type AsuEventRow = typeof AsuEventRow.Type

/** How long request statistics are kept (the longest chart spans 26 weeks). */
const eventRetentionDays = 190

export interface NewAsuJob {
  readonly requestHash: string
  readonly request: string
  readonly binDir: string
  readonly resultTtlSeconds: number
  readonly failureTtlSeconds: number
}

/** How many times a job is started before a crash mid-build counts as its failure. */
export const maxJobAttempts = 2

const now = () => new Date().toISOString()

/** What `AsuJobRecords` is made of: records.ts makes every record service in one effect. */
export const makeAsuJobRecords = Effect.gen(function* () {
  const sql = yield* RecordsSql
  // Where SQLite and PostgreSQL differ: a time `column` seconds from now (as the ISO text the rows hold),
  // a field of the JSON request, the larger of two values, and taking the oldest queued row.
  const secondsFromNow = (column: "result_ttl_seconds" | "failure_ttl_seconds") =>
    sql.onDialectOrElse({
      pg: () =>
        sql.literal(
          `to_char(timezone('UTC', now()) + ${column} * interval '1 second', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`,
        ),
      orElse: () => sql.literal(`strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+' || ${column} || ' seconds')`),
    })
  const requestField = (field: "version" | "target" | "profile" | "packages") =>
    sql.onDialectOrElse({
      pg: () =>
        sql.literal(
          field === "packages" ? `(request::json->'packages')::text` : `request::json->>'${field}'`,
        ),
      orElse: () => sql.literal(`json_extract(request, '$.${field}')`),
    })
  const greatest = sql.onDialectOrElse({
    pg: () => sql.literal("GREATEST"),
    orElse: () => sql.literal("MAX"),
  })
  const skipLocked = sql.onDialectOrElse({
    pg: () => sql.literal("FOR UPDATE SKIP LOCKED"),
    orElse: () => sql.literal(""),
  })
  const byHash = lazyQuery(() =>
    SqlSchema.findOne({
      Request: Schema.String,
      Result: AsuJobRow,
      execute: (hash) =>
        sql`SELECT * FROM asu_jobs WHERE request_hash = ${hash} AND (expires_at IS NULL OR expires_at > ${now()})`,
    }),
  )
  const byBinDir = lazyQuery(() =>
    SqlSchema.findOne({
      Request: Schema.String,
      Result: AsuJobRow,
      execute: (binDir) =>
        sql`SELECT * FROM asu_jobs WHERE bin_dir = ${binDir} AND status = 'finished' ORDER BY id DESC LIMIT 1`,
    }),
  )
  const claim = lazyQuery(() =>
    SqlSchema.findOne({
      Request: Schema.Void,
      Result: AsuJobRow,
      execute: () =>
        sql`UPDATE asu_jobs SET status = 'started', imagebuilder_status = 'init', attempts = attempts + 1,
            started_at = ${now()}, claimed_pid = ${currentProcess.pid}, claimed_start = ${currentProcess.start},
            claimed_host = ${currentProcess.host}
          WHERE id = (SELECT id FROM asu_jobs WHERE status = 'queued' ORDER BY id LIMIT 1 ${skipLocked})
            AND status = 'queued'
          RETURNING *`,
    }),
  )
  const eventsSince = lazyQuery(() =>
    SqlSchema.findAll({
      Request: Schema.String,
      Result: AsuEventRow,
      execute: (since) =>
        sql`SELECT at, event, version, target, profile, packages, detail FROM asu_events WHERE at >= ${since} ORDER BY id`,
    }),
  )
  const count = lazyQuery(() =>
    SqlSchema.findAll({
      Request: Schema.Number,
      Result: Schema.Struct({ n: Schema.Number }),
      execute: (beforeId) =>
        sql`SELECT COUNT(*) AS n FROM asu_jobs WHERE status = 'queued' AND id < ${beforeId}`,
    }),
  )
  return {
    find: (hash: string) => byHash(hash).pipe(Effect.map(Option.getOrUndefined), sqlFailure("read ASU job")),
    /** The newest finished job whose images are under `/store/<binDir>/`. */
    findByBinDir: (binDir: string) =>
      byBinDir(binDir).pipe(Effect.map(Option.getOrUndefined), sqlFailure("read ASU job")),
    /** Adds a queued job; an expired row of the same hash is replaced. */
    enqueue: (job: NewAsuJob) =>
      Effect.gen(function* () {
        yield* sql`DELETE FROM asu_jobs WHERE request_hash = ${job.requestHash}`
        yield* sql`INSERT INTO asu_jobs ${sql.insert({
          request_hash: job.requestHash,
          request: job.request,
          bin_dir: job.binDir,
          status: "queued",
          imagebuilder_status: "queued",
          attempts: 0,
          enqueued_at: now(),
          result_ttl_seconds: job.resultTtlSeconds,
          failure_ttl_seconds: job.failureTtlSeconds,
        })}`
      }).pipe(sql.withTransaction, sqlFailure("enqueue ASU job")),
    /** Queued jobs ahead of the job with this id (0-based position). */
    position: (id: number) =>
      count(id).pipe(
        Effect.map((r) => r[0]?.n ?? 0),
        sqlFailure("read ASU queue"),
      ),
    /** Jobs waiting to start. */
    queued: () =>
      count(Number.MAX_SAFE_INTEGER).pipe(
        Effect.map((r) => r[0]?.n ?? 0),
        sqlFailure("read ASU queue"),
      ),
    /** Takes the oldest queued job and marks it started (atomically: two servers never take the same). */
    claimNext: () => claim(undefined).pipe(Effect.map(Option.getOrUndefined), sqlFailure("claim ASU job")),
    stage: (hash: string, stage: string) =>
      sql`UPDATE asu_jobs SET imagebuilder_status = ${stage} WHERE request_hash = ${hash} AND status = 'started'`.pipe(
        Effect.asVoid,
        sqlFailure("update ASU job"),
      ),
    finish: (hash: string, result: { body: string; stdout: string; stderr: string }) =>
      sql`UPDATE asu_jobs SET status = 'finished', imagebuilder_status = 'done', finished_at = ${now()},
            result = ${result.body}, stdout = ${result.stdout}, stderr = ${result.stderr}
          WHERE request_hash = ${hash}`.pipe(
        Effect.zipRight(
          sql`UPDATE asu_jobs SET expires_at = ${secondsFromNow("result_ttl_seconds")}
              WHERE request_hash = ${hash}`,
        ),
        Effect.asVoid,
        sqlFailure("finish ASU job"),
      ),
    /** Marks a job failed, and counts the failure in the request statistics (one transaction). */
    fail: (hash: string, failure: { detail: string; stdout: string; stderr: string }) =>
      Effect.gen(function* () {
        yield* sql`UPDATE asu_jobs SET status = 'failed', imagebuilder_status = 'failed', finished_at = ${now()},
              expires_at = ${secondsFromNow("failure_ttl_seconds")},
              detail = ${failure.detail}, stdout = ${failure.stdout}, stderr = ${failure.stderr}
            WHERE request_hash = ${hash}`
        yield* sql`INSERT INTO asu_events (at, event, version, target, profile, packages, detail)
            SELECT ${now()}, 'failures', COALESCE(${requestField("version")}, ''),
                   COALESCE(${requestField("target")}, ''), COALESCE(${requestField("profile")}, ''),
                   COALESCE(${requestField("packages")}, '[]'), ${failure.detail}
            FROM asu_jobs WHERE request_hash = ${hash}`
      }).pipe(sql.withTransaction, sqlFailure("fail ASU job")),
    /** Counts a valid build request (and, when a finished build answered it, a cache hit). */
    recordRequest: (
      request: { version: string; target: string; profile: string; packages: ReadonlyArray<string> },
      cacheHit: boolean,
    ) =>
      Effect.forEach(
        cacheHit ? (["requests", "cache-hits"] as const) : (["requests"] as const),
        (event) =>
          sql`INSERT INTO asu_events ${sql.insert({
            at: now(),
            event,
            version: request.version,
            target: request.target,
            profile: request.profile,
            packages: JSON.stringify(request.packages),
            detail: null,
          })}`,
        { discard: true },
      ).pipe(sql.withTransaction, sqlFailure("count ASU request")),
    /** The request statistics since an ISO time, oldest first. */
    eventsSince: (since: string) => eventsSince(since).pipe(sqlFailure("read ASU statistics")),
    /**
     * After a crash: a job that was running goes back to the queue once; one that was already retried
     * fails. Only jobs whose server is gone: on this machine, judged by its pid. In the store's own file
     * a job claimed under another host name was claimed by a server that is gone too (the store moved, or
     * a container came back under a new name); in a shared PostgreSQL it belongs to a server on another
     * machine, which recovers it when it starts again. Returns how many were requeued. Each update is
     * one statement, conditional on the job still being started (no transaction that reads, then writes).
     */
    recover: () =>
      Effect.gen(function* () {
        const shared = sql.onDialectOrElse({ pg: () => true, orElse: () => false })
        const started = yield* sql<{
          id: number
          attempts: number
          claimed_pid: number | null
          claimed_start: string | null
          claimed_host: string | null
        }>`SELECT id, attempts, claimed_pid, claimed_start, claimed_host FROM asu_jobs WHERE status = 'started'`
        const orphans = started.filter((job) => {
          // Claimed before owrt kept who claimed it: by a server that was here.
          if (job.claimed_host === null) return true
          if (job.claimed_host !== currentProcess.host) return !shared
          if (job.claimed_pid === currentProcess.pid && job.claimed_start === currentProcess.start)
            return false
          return !holderAlive({
            pid: job.claimed_pid ?? 0,
            start: job.claimed_start ?? "unknown",
            host: job.claimed_host,
          })
        })
        // Each job as it was read: claimed by the same dead server still (another server recovering at
        // the same time, or one that claimed it meanwhile, makes the update change nothing).
        let requeued = 0
        for (const job of orphans) {
          const same = sql`id = ${job.id} AND status = 'started' AND attempts = ${job.attempts}
            AND ${job.claimed_host === null ? sql`claimed_host IS NULL` : sql`claimed_host = ${job.claimed_host}`}
            AND ${job.claimed_pid === null ? sql`claimed_pid IS NULL` : sql`claimed_pid = ${job.claimed_pid}`}`
          if (job.attempts >= maxJobAttempts) {
            yield* sql`UPDATE asu_jobs SET status = 'failed', imagebuilder_status = 'failed', finished_at = ${now()},
                         expires_at = ${secondsFromNow("failure_ttl_seconds")},
                         detail = 'Error: the build was interrupted twice (server restarts)'
                       WHERE ${same}`
          } else {
            const rows = yield* sql`UPDATE asu_jobs SET status = 'queued', imagebuilder_status = 'queued'
                                    WHERE ${same} RETURNING id`
            requeued += rows.length
          }
        }
        return requeued
      }).pipe(sqlFailure("recover ASU jobs")),
    /** A job interrupted by a clean shutdown goes back to the queue, the attempt not counted. */
    requeue: (hash: string) =>
      sql`UPDATE asu_jobs SET status = 'queued', imagebuilder_status = 'queued', attempts = ${greatest}(attempts - 1, 0)
          WHERE request_hash = ${hash} AND status = 'started'`.pipe(
        Effect.asVoid,
        sqlFailure("requeue ASU job"),
      ),
    /** Deletes expired jobs (their store paths stay: a new request for them is a cache hit). */
    purgeExpired: () =>
      sql`DELETE FROM asu_jobs WHERE expires_at IS NOT NULL AND expires_at <= ${now()}`.pipe(
        Effect.zipRight(
          sql`DELETE FROM asu_events WHERE at < ${new Date(Date.now() - eventRetentionDays * 86_400_000).toISOString()}`,
        ),
        Effect.asVoid,
        sqlFailure("purge ASU jobs"),
      ),
    /** Forgets a finished or failed job, so the same request builds again. Whether there was one. */
    forget: (hash: string) =>
      sql`DELETE FROM asu_jobs WHERE request_hash = ${hash} AND status IN ('finished', 'failed') RETURNING id`.pipe(
        Effect.map((rows) => rows.length > 0),
        sqlFailure("forget ASU job"),
      ),
  }
})

/**
 * The `asu_jobs` table: the ASU build queue. Jobs live here, not in memory, so a restart loses none; a
 * finished or failed job stays until its time-to-live has passed, then reads as absent.
 */
export class AsuJobRecords extends Effect.Service<AsuJobRecords>()("owrt/AsuJobRecords", {
  accessors: true,
  effect: makeAsuJobRecords,
}) {}
