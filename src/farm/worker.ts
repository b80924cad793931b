import { existsSync, readFileSync } from "node:fs"
import { hostname } from "node:os"
import { Cause, Effect, Exit, FiberSet, Option, Schema } from "effect"
import * as graphile from "graphile-worker"
import { BuilderStore } from "../builder/builderStore.js"
import { AppConfig } from "../config/appConfig.js"
import { BuildRecords } from "../db/buildRecords.js"
import { type Database, databaseContext } from "../db/records.js"
import {
  CacheRegistryError,
  FarmNodeUnknownError,
  InternalError,
  isOwrtError,
  type OwrtError,
  toErrorReport,
  WarningCode,
} from "../errors.js"
import { compileGraph } from "../graph/compileGraph.js"
import { Executor } from "../graph/executor.js"
import { isPending, type NodeSpec } from "../graph/graph.js"
import { failureLogPath } from "../graph/kinds/makeImageNode.js"
import { makeSubstituteRun, SubstituteRun, Substituter } from "../graph/substituter.js"
import { builderInfo } from "../image/builderInfoStore.js"
import { ProfileRepository } from "../profile/profileRepository.js"
import { Progress } from "../progress/progress.js"
import { withoutPassword } from "../text/withoutPassword.js"
import { connectFarm, farmChannel, taskFor } from "./farmDatabase.js"
import { FarmJob } from "./postgresRunner.js"

/*
 * `owrt worker`: claims node jobs from the farm's queue (graphile-worker: `FOR UPDATE SKIP LOCKED`), and
 * for each compiles the job's profile with this machine's project, realizes the node — its inputs come
 * from the shared cache, where the workers that built them pushed them — with the same executor and
 * local runner as `owrt realize`, pushes the output, and records the outcome in `owrt_farm.nodes`
 * (announced on the `owrt_farm` channel). A build failure is a result (the coordinator gets the typed
 * error and the log), not a job to retry. Workers heartbeat; one silent for longer than the lock timeout
 * is dead, and any live worker gives its jobs back to the queue.
 */

export interface WorkerOptions {
  readonly url: string
  readonly concurrency: number
  readonly queue: string
  /** Seconds without a heartbeat before a worker's jobs go to another. */
  readonly lockTimeout: number
  /** This worker's name in `owrt workers` and in the coordinators' progress. */
  readonly name?: string | undefined
  /** Called once the worker is registered and polling (tests and benchmarks wait for it). */
  readonly ready?: (() => void) | undefined
  /** Told of every job this worker finishes (metrics). */
  readonly onJob?: ((kind: string, result: "done" | "failed", seconds: number) => void) | undefined
}

const decodeJob = Schema.decodeUnknown(FarmJob)

/** The profile a graph label names: `ap@3` → `ap` (revision numbers are per database; the project decides). */
const profileOf = (graph: string) => graph.replace(/@\d+$/, "")

export const runWorker = (options: WorkerOptions) =>
  Effect.gen(function* () {
    const config = yield* AppConfig
    const profiles = yield* ProfileRepository
    const builders = yield* BuilderStore
    const executor = yield* Executor
    const substituter = yield* Substituter
    const outer = yield* Progress
    const name = options.name ?? `${hostname()}-${process.pid}`
    const database = yield* connectFarm(options.url)
    // graphile-worker calls its task with a Promise: each job runs as a fiber of this set, in this scope —
    // interrupted if the worker's scope closes first.
    const runJob = yield* FiberSet.makeRuntimePromise<Database>()
    const db = yield* databaseContext

    /** Builds one node of one graph here; the job's log lines, collected. */
    const buildNode = (job: FarmJob, lines: Array<string>) =>
      Effect.gen(function* () {
        const progress = {
          report: (event: Parameters<typeof outer.report>[0]) => {
            outer.report(event)
            if (event.kind === "node" && event.line !== undefined) lines.push(event.line)
          },
        }
        // The profile as this machine's working tree has it; when it has not this revision (an ASU request,
        // a revision edited since), the revision the coordinator compiled, carried by the job.
        const given = job.revision ?? undefined
        const local = yield* Effect.either(profiles.inspect(profileOf(job.graph)))
        const entry =
          given !== undefined && (local._tag === "Left" || local.right.revision.hash !== given.hash)
            ? yield* profiles.fromCanonical(given)
            : yield* profiles.record(yield* local)
        const view = entry
        const started = Date.now()
        const buildId = yield* BuildRecords.start({
          profile: view.revision.profile.id,
          revisionSeq: entry.record.seq,
          revisionHash: entry.revision.hash,
          requestedBy: "cli",
        })
        const label = job.graph
        const body = Effect.gen(function* () {
          const compiled = yield* compileGraph(entry, {
            lenient: false,
            failureLog: failureLogPath(config.store, buildId),
            buildId,
            resolveArchive: (release, target) => builders.resolve({ release, target }),
            builderInfo: (archive, node) =>
              Effect.gen(function* () {
                const realized = yield* executor.realize({ label, nodes: [node], root: node.key })
                const stored = realized.get(node.key)
                if (!stored)
                  return yield* new InternalError({ cause: `${label}: the builder was not realized` })
                return yield* Effect.provide(
                  builderInfo(
                    { key: node.key, path: stored.path, release: archive.release, target: archive.target },
                    config.store,
                    config.timeouts.build,
                  ),
                  db,
                )
              }).pipe(
                Effect.mapError((e): OwrtError => (isOwrtError(e) ? e : new InternalError({ cause: e }))),
              ),
          }).pipe(Effect.provideService(AppConfig, config), Effect.provideService(BuilderStore, builders))
          const specs = compiled.graph.nodes.filter((n): n is NodeSpec => !isPending(n))
          const target = specs.find((spec) => spec.key === job.key)
          if (!target) return yield* new FarmNodeUnknownError({ graph: label, key: job.key })
          // The node and what it depends on: the inputs come from the shared cache, the node is built here.
          const wanted = new Set<string>()
          const visit = (key: string) => {
            if (wanted.has(key)) return
            wanted.add(key)
            for (const dep of specs.find((spec) => spec.key === key)?.deps ?? []) visit(dep)
          }
          visit(target.key)
          // The job's output must reach the shared cache (the coordinator takes it from there): a push that
          // failed fails the job, with the registry's words, instead of a "done" nobody can fetch.
          const run = makeSubstituteRun(false)
          const realized = yield* executor
            .realize({
              label,
              nodes: specs.filter((spec) => wanted.has(spec.key)),
              root: target.key,
            })
            .pipe(Effect.provideService(SubstituteRun, run.service))
          const stored = realized.get(target.key)
          // Stored here before (an earlier job): offered again, in case the cache lost it.
          if (stored?.cacheHit === true && !target.private) yield* substituter.offer(target, stored.path)
          const pushFailed = run.warnings.find(
            (w) => w.code === WarningCode.cachePushFailed && w.message.includes(target.key),
          )
          if (pushFailed !== undefined && !target.private)
            return yield* new CacheRegistryError({
              kind: "unavailable",
              registry: substituter.sources[0] ?? "the shared cache",
              detail: pushFailed.message,
            })
        })
        yield* Effect.scoped(body).pipe(
          Effect.provideService(Progress, progress),
          Effect.onExit((exit) =>
            BuildRecords.finish(buildId, {
              status: Exit.isSuccess(exit) ? "succeeded" : "failed",
              cacheHit: false,
              startedMs: started,
              ...(Exit.isFailure(exit)
                ? Option.match(Cause.failureOption(exit.cause), {
                    onNone: () => ({ errorCode: "internal", errorMessage: "internal error" }),
                    onSome: (error) => ({ errorCode: error.code, errorMessage: error.message }),
                  })
                : {}),
            }).pipe(Effect.ignore),
          ),
          Effect.tapError(() =>
            Effect.sync(() => {
              const log = failureLogPath(config.store, buildId)
              if (existsSync(log)) lines.push(...readFileSync(log, "utf8").split("\n").slice(-60))
            }),
          ),
        )
      })

    /** One job, from claim to recorded outcome. Only a database failure makes graphile retry it. */
    const handle = (payload: unknown, lockId: string) =>
      Effect.gen(function* () {
        const job = yield* decodeJob(payload).pipe(Effect.mapError((cause) => new InternalError({ cause })))
        const claimed = yield* database.query(
          `update owrt_farm.nodes set status = 'running', worker = $2, lock_id = $3, started_at = now()
           where key = $1 and status in ('queued', 'running') returning key, pg_notify('${farmChannel}', key)`,
          [job.key, name, lockId],
        )
        // Done already (a duplicate job), or failed and not asked again: nothing to do.
        if (claimed.length === 0) return
        yield* heartbeat([job.key])
        const lines: Array<string> = []
        const began = performance.now()
        const outcome = yield* Effect.exit(buildNode(job, lines))
        options.onJob?.(
          job.kind,
          Exit.isSuccess(outcome) ? "done" : "failed",
          (performance.now() - began) / 1000,
        )
        const error: OwrtError | undefined = Exit.isSuccess(outcome)
          ? undefined
          : Option.getOrElse(
              Cause.failureOption(outcome.cause),
              (): OwrtError => new InternalError({ cause: Cause.pretty(outcome.cause) }),
            )
        yield* database.query(
          `update owrt_farm.nodes set status = $2, finished_at = now(), error = $3, log = $4
             where key = $1 and worker = $5 returning pg_notify('${farmChannel}', key)`,
          [
            job.key,
            error === undefined ? "done" : "failed",
            error === undefined ? null : JSON.stringify(toErrorReport(error)),
            lines.slice(-200).join("\n"),
            name,
          ],
        )
      })

    const current = new Set<string>()
    const heartbeat = (extra: ReadonlyArray<string> = []) =>
      database.query(
        `insert into owrt_farm.workers (id, host, queue, concurrency, current) values ($1, $2, $3, $4, $5)
         on conflict (id) do update set heartbeat_at = now(), current = excluded.current`,
        [name, hostname(), options.queue, options.concurrency, [...current, ...extra]],
      )

    /** Gives the jobs of workers silent for longer than the lock timeout back to the queue. */
    const reap = (unlock: (ids: Array<string>) => Promise<void>) =>
      Effect.gen(function* () {
        const dead = (yield* database.query(
          `delete from owrt_farm.workers where heartbeat_at < now() - make_interval(secs => $1) and id <> $2
           returning id`,
          [options.lockTimeout, name],
        )) as ReadonlyArray<{ id: string }>
        if (dead.length === 0) return
        const ids = dead.map((row) => row.id)
        const locks = (yield* database.query(
          `update owrt_farm.nodes set status = 'queued', worker = null, started_at = null
           where status = 'running' and worker = any($1) returning lock_id, pg_notify('${farmChannel}', key)`,
          [ids],
        )) as ReadonlyArray<{ lock_id: string | null }>
        const lockIds = locks.flatMap((row) => (row.lock_id ? [row.lock_id] : []))
        if (lockIds.length > 0)
          yield* Effect.tryPromise({
            try: () => unlock(lockIds),
            catch: (cause) => new InternalError({ cause }),
          })
      })

    const runner = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () =>
          graphile.run({
            connectionString: options.url,
            concurrency: options.concurrency,
            noHandleSignals: true,
            pollInterval: 1000,
            logger: new graphile.Logger(() => () => undefined),
            taskList: {
              [taskFor(options.queue)]: async (payload, helpers) => {
                const key =
                  typeof payload === "object" && payload !== null && "key" in payload
                    ? String(payload.key)
                    : ""
                current.add(key)
                try {
                  await runJob(handle(payload, helpers.job.locked_by ?? ""))
                } finally {
                  current.delete(key)
                }
              },
            },
          }),
        catch: (cause) =>
          new InternalError({
            cause: `graphile-worker on ${withoutPassword(options.url)}: ${String(cause)}`,
          }),
      }),
      // SIGTERM/SIGINT: no new jobs; the running ones finish (graphile gives back what it must abort).
      (running) => Effect.promise(() => Promise.resolve(running.stop()).catch(() => undefined)),
    )
    const utils = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () =>
          graphile.makeWorkerUtils({
            connectionString: options.url,
            logger: new graphile.Logger(() => () => undefined),
          }),
        catch: (cause) => new InternalError({ cause }),
      }),
      (made) => Effect.promise(() => Promise.resolve(made.release())),
    )
    yield* heartbeat()
    options.ready?.()
    const every = Math.max(0.5, Math.min(5, options.lockTimeout / 4))
    yield* Effect.forkScoped(
      Effect.forever(
        Effect.sleep(`${every} seconds`).pipe(
          Effect.zipRight(heartbeat()),
          Effect.zipRight(reap((ids) => utils.forceUnlockWorkers(ids))),
          Effect.catchAll((error) => Effect.logWarning(`owrt worker: ${error.message}`)),
        ),
      ),
    )
    yield* Effect.addFinalizer(() =>
      database.query("delete from owrt_farm.workers where id = $1", [name]).pipe(Effect.ignore),
    )
    return yield* Effect.tryPromise({
      try: () => runner.promise,
      catch: (cause) => new InternalError({ cause }),
    })
  })
