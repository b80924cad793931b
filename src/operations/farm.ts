import { Effect, Schema } from "effect"
import { AppConfig } from "../config/appConfig.js"
import { UsageError } from "../errors.js"
import { defineOperation } from "./operation.js"
import { Integer } from "./schemaTypes.js"

/*
 * The build farm's operations: `owrt worker` (runs until stopped), `owrt workers` and `owrt jobs`. The
 * farm's database is `--database`, else the configured `executor` URL, else the configured records
 * `database` when it is PostgreSQL. pg and graphile-worker are loaded
 * here only, by the commands that use them.
 */

const farmModule = Effect.promise(() => import("../farm/farmDatabase.js"))

/** The farm's database URL: the one given, else the configuration's postgres executor, else its records database. */
export const farmUrl = (given: string | undefined) =>
  Effect.gen(function* () {
    const config = yield* AppConfig
    // `--database` also says where the records are: `sqlite` there names no farm.
    if (given !== undefined && /^postgres(ql)?:\/\//.test(given)) return given
    if (config.executor.kind === "postgres") return config.executor.url
    if (config.database.kind === "postgres") return config.database.url
    return yield* new UsageError({
      detail: 'no build farm: give --database postgres://… or configure executor: { kind: "postgres", url }',
    })
  })

const DatabaseParam = Schema.optional(
  Schema.String.annotations({
    description: "The farm's PostgreSQL URL (default: the configured executor's)",
  }),
)

const Iso = Schema.NullOr(Schema.String)
const iso = (date: Date | null) => (date === null ? null : date.toISOString())

export const listWorkers = defineOperation({
  name: "listWorkers",
  description:
    "The build farm's live workers: their queue, last heartbeat and the node keys they are building",
  readOnly: true,
  params: Schema.Struct({ database: DatabaseParam }),
  result: Schema.Struct({
    workers: Schema.Array(
      Schema.Struct({
        id: Schema.String,
        host: Schema.String,
        queue: Schema.String,
        concurrency: Integer,
        startedAt: Schema.String,
        heartbeatAt: Schema.String,
        current: Schema.Array(Schema.String),
      }),
    ),
  }),
  run: (params) =>
    Effect.scoped(
      Effect.gen(function* () {
        const { connectFarm, WorkerRow } = yield* farmModule
        const farm = yield* connectFarm(yield* farmUrl(params.database))
        const rows = yield* farm.query("select * from owrt_farm.workers order by id")
        const decoded = yield* Effect.orDie(Schema.decodeUnknown(Schema.Array(WorkerRow))(rows))
        return {
          workers: decoded.map((w) => ({
            id: w.id,
            host: w.host,
            queue: w.queue,
            concurrency: w.concurrency,
            startedAt: w.started_at.toISOString(),
            heartbeatAt: w.heartbeat_at.toISOString(),
            current: [...w.current],
          })),
        }
      }),
    ),
})

export const listJobs = defineOperation({
  name: "listJobs",
  description:
    "The build farm's node jobs, newest first (at most 200), and how many are queued, running, done and failed",
  readOnly: true,
  params: Schema.Struct({ database: DatabaseParam }),
  result: Schema.Struct({
    totals: Schema.Struct({ queued: Integer, running: Integer, done: Integer, failed: Integer }),
    jobs: Schema.Array(
      Schema.Struct({
        key: Schema.String,
        kind: Schema.String,
        graph: Schema.String,
        queue: Schema.String,
        status: Schema.Literal("queued", "running", "done", "failed"),
        worker: Schema.NullOr(Schema.String),
        enqueuedAt: Schema.String,
        startedAt: Iso,
        finishedAt: Iso,
        errorCode: Schema.NullOr(Schema.String),
      }),
    ),
  }),
  run: (params) =>
    Effect.scoped(
      Effect.gen(function* () {
        const { connectFarm, NodeRow } = yield* farmModule
        const farm = yield* connectFarm(yield* farmUrl(params.database))
        const rows = yield* farm.query(
          "select * from owrt_farm.nodes order by enqueued_at desc, key limit 200",
        )
        const counts = (yield* farm.query(
          "select status, count(*)::int as n from owrt_farm.nodes group by status",
        )) as ReadonlyArray<{ status: string; n: number }>
        const count = (status: string) => counts.find((c) => c.status === status)?.n ?? 0
        const decoded = yield* Effect.orDie(Schema.decodeUnknown(Schema.Array(NodeRow))(rows))
        return {
          totals: {
            queued: count("queued"),
            running: count("running"),
            done: count("done"),
            failed: count("failed"),
          },
          jobs: decoded.map((j) => ({
            key: j.key,
            kind: j.kind,
            graph: j.graph,
            queue: j.queue,
            status: j.status,
            worker: j.worker,
            enqueuedAt: j.enqueued_at.toISOString(),
            startedAt: iso(j.started_at),
            finishedAt: iso(j.finished_at),
            errorCode: j.error?.code ?? null,
          })),
        }
      }),
    ),
})

/** `owrt worker`: serves the farm's queue until interrupted (SIGTERM/SIGINT: the running jobs finish). */
export const runFarmWorker = (options: {
  readonly database: string | undefined
  readonly concurrency: number
  readonly queue: string | undefined
  readonly lockTimeout: number | undefined
  readonly name: string | undefined
  readonly onJob?: ((kind: string, result: "done" | "failed", seconds: number) => void) | undefined
}) =>
  Effect.gen(function* () {
    const config = yield* AppConfig
    const url = yield* farmUrl(options.database)
    const configured = config.executor.kind === "postgres" ? config.executor : undefined
    const { runWorker } = yield* Effect.promise(() => import("../farm/worker.js"))
    return yield* Effect.scoped(
      runWorker({
        url,
        concurrency: options.concurrency,
        queue: options.queue ?? configured?.queue ?? "default",
        lockTimeout: options.lockTimeout ?? configured?.lockTimeout ?? 60,
        name: options.name,
        onJob: options.onJob,
      }),
    )
  })
