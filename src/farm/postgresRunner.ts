import { Deferred, Effect, Exit, Layer, Schema, Scope } from "effect"
import { Logger, runMigrations } from "graphile-worker"
import { AppConfig } from "../config/appConfig.js"
import { FarmBuildError, FarmUnavailableError, InternalError, type OwrtError } from "../errors.js"
import type { GraphRevision, NodeBuildContext, NodeSpec } from "../graph/graph.js"
import { Runner, type RunnerService } from "../graph/runner.js"
import { Substituter } from "../graph/substituter.js"
import { withoutPassword } from "../text/withoutPassword.js"
import { connectFarm, decodeNodeRow, type FarmDatabase, farmChannel, taskFor } from "./farmDatabase.js"

/*
 * The build farm's runner (`executor: { kind: "postgres", url }`): a node to build becomes a graphile-worker
 * job whose key is the node key; an `owrt worker` somewhere claims it, builds it with its own store and
 * pushes the output to the shared cache; this runner, woken by a notification, substitutes the output
 * from the cache into the node's private directory, and the executor publishes it like a local build.
 * The executor already runs nodes in dependency order, so a node is enqueued only once its inputs are in
 * the shared cache. Nodes whose output holds secrets never leave this machine: they are built here.
 */

/** The job a coordinator hands to a worker: which graph (profile) to compile, and which node of it to build. */
export const FarmJob = Schema.Struct({
  graph: Schema.String,
  key: Schema.String,
  kind: Schema.String,
  /** The revision the coordinator compiled: a worker whose own profiles do not have it resolves this. */
  revision: Schema.optional(
    Schema.NullOr(Schema.Struct({ hash: Schema.String, canonical: Schema.String, source: Schema.String })),
  ),
})
export type FarmJob = typeof FarmJob.Type

/** How often a waiting coordinator looks at its nodes without a notification (a lost one, a dropped connection). */
const fallbackPollMillis = 5_000

export const postgresRunnerLayer = Layer.scoped(
  Runner,
  Effect.gen(function* () {
    const config = yield* AppConfig
    const substituter = yield* Substituter
    const executor = config.executor
    if (executor.kind !== "postgres")
      return yield* Effect.dieMessage("postgresRunnerLayer needs executor.kind postgres")
    const layerScope = yield* Effect.scope
    const waiters = new Map<string, Set<() => void>>()
    const wake = (key: string) => {
      for (const waiter of waiters.get(key) ?? []) waiter()
    }
    // Connected on the first node to build (a command that builds nothing never connects), then kept.
    const farm: Effect.Effect<FarmDatabase, FarmUnavailableError> = yield* Effect.cached(
      Effect.gen(function* () {
        const database = yield* connectFarm(executor.url)
        yield* Effect.tryPromise({
          try: () =>
            runMigrations({ connectionString: executor.url, logger: new Logger(() => () => undefined) }),
          catch: (cause) =>
            new FarmUnavailableError({
              url: withoutPassword(executor.url),
              detail: `graphile-worker: ${String(cause)}`,
            }),
        })
        yield* database.listen(wake)
        return database
      }).pipe(Scope.extend(layerScope)),
    )

    const readRow = (database: FarmDatabase, key: string) =>
      Effect.flatMap(database.query("select * from owrt_farm.nodes where key = $1", [key]), (rows) =>
        rows.length === 0
          ? Effect.succeed(undefined)
          : decodeNodeRow(rows[0]).pipe(Effect.mapError((cause) => new InternalError({ cause }))),
      )

    /** Inserts the node's row and its job unless another coordinator did (or it failed before: again). */
    const enqueue = (
      database: FarmDatabase,
      node: NodeSpec,
      graph: string,
      again: boolean,
      revision: GraphRevision | undefined,
    ) =>
      database.query(
        `with claimed as (
           insert into owrt_farm.nodes (key, kind, graph, queue, status) values ($1, $2, $3, $4, 'queued')
           on conflict (key) do update set status = 'queued', graph = excluded.graph, worker = null,
             lock_id = null, error = null, log = null, enqueued_at = now(), started_at = null, finished_at = null
           where owrt_farm.nodes.status = 'failed' or ($5 and owrt_farm.nodes.status = 'done')
           returning key
         )
         select graphile_worker.add_job($6, json_build_object('graph', $3::text, 'key', $1::text, 'kind', $2::text,
           'revision', $7::json),
           job_key => key, max_attempts => 25), pg_notify('${farmChannel}', key)
         from claimed`,
        [
          node.key,
          node.kind.kind,
          graph,
          executor.queue,
          again,
          taskFor(executor.queue),
          revision === undefined ? null : JSON.stringify(revision),
        ],
      )

    const fetchOutput = (node: NodeSpec, context: NodeBuildContext) =>
      Effect.gen(function* () {
        let last: OwrtError | undefined
        for (const source of substituter.sources) {
          const fetched = yield* Effect.either(
            Effect.scoped(substituter.fetch(node, source, context.output, context.report)),
          )
          if (fetched._tag === "Right") return true
          last = fetched.left
        }
        if (last) context.report({ line: `the farm's output could not be fetched: ${last.message}` })
        return false
      })

    const run: RunnerService["run"] = (node, context) =>
      Effect.gen(function* () {
        const graph = context.graph
        // Secrets stay here; a graph without a label (never the case in realize) cannot be compiled elsewhere.
        if (node.private || graph === undefined || substituter.sources.length === 0)
          return yield* node.build(context)
        const database = yield* farm
        const started = Date.now()
        let seen: string | undefined
        let refetched = false
        // Registered before the row is read: a notification between the read and the wait is not lost.
        let signal = yield* Deferred.make<void>()
        const waiter = () => Deferred.unsafeDone(signal, Exit.void)
        const set = waiters.get(node.key) ?? new Set()
        set.add(waiter)
        waiters.set(node.key, set)
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            set.delete(waiter)
            if (set.size === 0) waiters.delete(node.key)
          }),
        )
        yield* enqueue(database, node, graph, false, context.revision)
        for (;;) {
          const row = yield* readRow(database, node.key)
          if (row === undefined) {
            yield* enqueue(database, node, graph, false, context.revision)
          } else if (row.status === "done") {
            context.report({
              line: `built by worker ${row.worker ?? "?"} in ${seconds(row.started_at, row.finished_at)}; fetching it`,
            })
            if (yield* fetchOutput(node, context)) return
            if (refetched)
              return yield* new InternalError({
                cause: `${node.key}: the farm's output is not in the shared cache`,
              })
            // Built, but gone from the cache since (a registry cleaned up): built again.
            refetched = true
            yield* enqueue(database, node, graph, true, context.revision)
          } else if (row.status === "failed") {
            return yield* new FarmBuildError({
              node: `${node.kind.kind} ${node.key}`,
              worker: row.worker ?? "?",
              report: row.error ?? {
                code: "internal_error",
                message: "the worker reported no error",
                exitCode: 70,
              },
              log: tail(row.log ?? "", 40),
            })
          } else if (row.status === "running" && row.worker !== seen) {
            seen = row.worker ?? undefined
            context.report({
              line: `claimed by worker ${seen ?? "?"} after ${((Date.now() - started) / 1000).toFixed(1)} s`,
            })
          }
          yield* Effect.race(Deferred.await(signal), Effect.sleep(fallbackPollMillis))
          signal = yield* Deferred.make<void>()
        }
      })

    return {
      describe: `postgres ${withoutPassword(executor.url)} (queue ${executor.queue})`,
      run,
    } satisfies RunnerService
  }),
)

const seconds = (from: Date | null, to: Date | null) =>
  from && to ? `${((to.getTime() - from.getTime()) / 1000).toFixed(1)} s` : "?"

const tail = (text: string, lines: number) => text.split("\n").slice(-lines).join("\n")
