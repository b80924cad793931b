import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { Console, Effect, Option } from "effect"
import { cliCaller } from "../cliCaller.js"
import { configOptions, jsonOption } from "../commonOptions.js"
import { emit, table } from "../output.js"
import { runWithApp } from "../runWithApp.js"

// Loaded when a command runs: pg and graphile-worker stay out of every other command's start-up.
const farmModule = Effect.promise(() => import("../../operations/farm.js"))

export const workerCommand = Command.make(
  "worker",
  {
    concurrency: Options.integer("concurrency").pipe(
      Options.withDefault(1),
      Options.withDescription("Node jobs to build at once"),
    ),
    queue: Options.text("queue").pipe(
      Options.optional,
      Options.withDescription("Take only this queue's jobs (default: the configured one, else `default`)"),
    ),
    lockTimeout: Options.integer("lock-timeout").pipe(
      Options.optional,
      Options.withDescription("Seconds without a worker's heartbeat before its jobs go to another worker"),
    ),
    name: Options.text("name").pipe(
      Options.optional,
      Options.withDescription("This worker's name (default: host-pid)"),
    ),
    metricsPort: Options.integer("metrics-port").pipe(
      Options.optional,
      Options.withDescription(
        "Serve Prometheus metrics at /metrics on this port (0 picks one; default: none)",
      ),
    ),
    metricsHost: Options.text("metrics-host").pipe(
      Options.withDefault("127.0.0.1"),
      Options.withDescription("Address the metrics port listens on (default 127.0.0.1)"),
    ),
    ...configOptions,
  },
  (options) =>
    // A worker builds here whatever the project's `executor` says (it is the farm).
    runWithApp({ ...options, executor: Option.some("local") }, () =>
      Effect.gen(function* () {
        const { runFarmWorker, listJobs, listWorkers } = yield* farmModule
        const database = Option.getOrUndefined(options.database)
        const metricsPort = Option.getOrUndefined(options.metricsPort)
        let onJob: ((kind: string, result: "done" | "failed", seconds: number) => void) | undefined
        if (metricsPort !== undefined) {
          const [{ makeFarmMetrics }, { serveMetrics }] = yield* Effect.promise(() =>
            Promise.all([import("../../web/farm/farmMetrics.js"), import("../../web/metricsServer.js")]),
          )
          const metrics = makeFarmMetrics()
          onJob = metrics.job
          // Each scrape reads the queue's totals and the live workers from the farm's database.
          const refresh = Effect.all([
            listJobs.run({ database }, cliCaller),
            listWorkers.run({ database }, cliCaller),
          ]).pipe(
            Effect.flatMap(([jobs, workers]) =>
              Effect.sync(() => metrics.counts({ totals: jobs.totals, workers: workers.workers.length })),
            ),
            Effect.catchAll((error) =>
              Effect.sync(() => process.stderr.write(`owrt: metrics: ${error.message}\n`)),
            ),
          )
          const url = yield* serveMetrics({
            host: options.metricsHost,
            port: metricsPort,
            registry: metrics.registry,
            refresh,
          })
          yield* Console.log(`metrics: ${url}`)
        }
        yield* runFarmWorker({
          database,
          concurrency: options.concurrency,
          queue: Option.getOrUndefined(options.queue),
          lockTimeout: Option.getOrUndefined(options.lockTimeout),
          name: Option.getOrUndefined(options.name),
          onJob,
        })
      }).pipe(Effect.scoped),
    ),
).pipe(
  Command.withDescription(
    "Build the nodes a build farm's coordinators queue in PostgreSQL (runs until SIGTERM; see docs/farm.md)",
  ),
)

export const workersCommand = Command.make("workers", { json: jsonOption, ...configOptions }, (options) =>
  runWithApp(options, () =>
    Effect.gen(function* () {
      const { listWorkers } = yield* farmModule
      const result = yield* listWorkers.run({ database: Option.getOrUndefined(options.database) }, cliCaller)
      yield* emit(options.json, result, (value) =>
        value.workers.length === 0
          ? ["no live workers"]
          : table([
              ["WORKER", "HOST", "QUEUE", "SLOTS", "HEARTBEAT", "BUILDING"],
              ...value.workers.map((w) => [
                w.id,
                w.host,
                w.queue,
                String(w.concurrency),
                w.heartbeatAt.slice(0, 19).replace("T", " "),
                w.current.join(" ") || "-",
              ]),
            ]),
      )
    }),
  ),
).pipe(Command.withDescription("List the build farm's live workers"))

export const jobsCommand = Command.make("jobs", { json: jsonOption, ...configOptions }, (options) =>
  runWithApp(options, () =>
    Effect.gen(function* () {
      const { listJobs } = yield* farmModule
      const result = yield* listJobs.run({ database: Option.getOrUndefined(options.database) }, cliCaller)
      yield* emit(options.json, result, (value) => [
        `queued ${value.totals.queued}, running ${value.totals.running}, done ${value.totals.done}, failed ${value.totals.failed}`,
        ...(value.jobs.length === 0
          ? []
          : table([
              ["KEY", "KIND", "GRAPH", "STATUS", "WORKER", "ERROR"],
              ...value.jobs.map((j) => [
                j.key,
                j.kind,
                j.graph,
                j.status,
                j.worker ?? "-",
                j.errorCode ?? "-",
              ]),
            ])),
      ])
    }),
  ),
).pipe(Command.withDescription("List the build farm's node jobs (newest first) and the queue's totals"))
