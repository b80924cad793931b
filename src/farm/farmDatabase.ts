import { Effect, Schema, type Scope } from "effect"
import pg from "pg"
import { FarmUnavailableError } from "../errors.js"
import { withoutPassword } from "../text/withoutPassword.js"

/*
 * The build farm's tables in PostgreSQL, beside graphile-worker's queue (schema `graphile_worker`):
 * - `owrt_farm.nodes`: one row per node key ever handed to the farm — its state, which worker has it, its
 *   error and log. Inserting the row is what enqueues the job, so two coordinators asking for the same
 *   node make one job; a change of state is announced on the `owrt_farm` channel (LISTEN/NOTIFY).
 * - `owrt_farm.workers`: live workers and their heartbeats; a worker silent for longer than the lock
 *   timeout is dead, and its running jobs are unlocked for another worker.
 * This module (and with it `pg`, which the bundle leaves external) is loaded only by the commands that use
 * the farm.
 */

export const farmChannel = "owrt_farm"

/** graphile-worker's task name for a queue: a worker with `--queue q` only asks for these. */
export const taskFor = (queue: string) => `owrt_node_${queue}`

const schemaSql = `
create schema if not exists owrt_farm;
create table if not exists owrt_farm.nodes (
  key text primary key,
  kind text not null,
  graph text not null,
  queue text not null,
  status text not null check (status in ('queued', 'running', 'done', 'failed')),
  worker text,
  lock_id text,
  enqueued_at timestamptz not null default now(),
  started_at timestamptz,
  finished_at timestamptz,
  error jsonb,
  log text
);
create table if not exists owrt_farm.workers (
  id text primary key,
  host text not null,
  queue text not null,
  concurrency integer not null,
  started_at timestamptz not null default now(),
  heartbeat_at timestamptz not null default now(),
  current text[] not null default '{}'
);
`

export const NodeRow = Schema.Struct({
  key: Schema.String,
  kind: Schema.String,
  graph: Schema.String,
  queue: Schema.String,
  status: Schema.Literal("queued", "running", "done", "failed"),
  worker: Schema.NullOr(Schema.String),
  enqueued_at: Schema.DateFromSelf,
  started_at: Schema.NullOr(Schema.DateFromSelf),
  finished_at: Schema.NullOr(Schema.DateFromSelf),
  error: Schema.NullOr(
    Schema.Struct({ code: Schema.String, message: Schema.String, exitCode: Schema.Number }),
  ),
  log: Schema.NullOr(Schema.String),
})
export type NodeRow = typeof NodeRow.Type
export const decodeNodeRow = Schema.decodeUnknown(NodeRow)

export const WorkerRow = Schema.Struct({
  id: Schema.String,
  host: Schema.String,
  queue: Schema.String,
  concurrency: Schema.Number,
  started_at: Schema.DateFromSelf,
  heartbeat_at: Schema.DateFromSelf,
  current: Schema.Array(Schema.String),
})
export type WorkerRow = typeof WorkerRow.Type

/** The URL with any password hidden, for messages. */

export interface FarmDatabase {
  readonly url: string
  readonly query: (
    text: string,
    values?: ReadonlyArray<unknown>,
  ) => Effect.Effect<ReadonlyArray<unknown>, FarmUnavailableError>
  /**
   * Calls `onKey` with the node key of every notification on the farm's channel, on a dedicated
   * connection, for the life of the scope.
   */
  readonly listen: (onKey: (key: string) => void) => Effect.Effect<void, FarmUnavailableError, Scope.Scope>
}

const failure = (url: string) => (cause: unknown) =>
  new FarmUnavailableError({
    url: withoutPassword(url),
    detail: cause instanceof Error ? cause.message : String(cause),
  })

/** A pool on the farm's database, its tables made (once, under an advisory lock), closed with the scope. */
export const connectFarm = (url: string): Effect.Effect<FarmDatabase, FarmUnavailableError, Scope.Scope> =>
  Effect.gen(function* () {
    const fail = failure(url)
    const pool = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const made = new pg.Pool({ connectionString: url, max: 4 })
        // An idle client that loses its connection must not crash the process: the next query reports it.
        made.on("error", () => undefined)
        return made
      }),
      (made) => Effect.promise(() => made.end()),
    )
    const query = (text: string, values: ReadonlyArray<unknown> = []) =>
      Effect.tryPromise({
        try: () => pool.query(text, [...values]).then((result) => result.rows as ReadonlyArray<unknown>),
        catch: fail,
      })
    yield* Effect.tryPromise({
      try: async () => {
        const client = await pool.connect()
        try {
          await client.query("begin")
          await client.query("select pg_advisory_xact_lock(7275766)")
          await client.query(schemaSql)
          await client.query("commit")
        } catch (error) {
          await client.query("rollback").catch(() => undefined)
          throw error
        } finally {
          client.release()
        }
      },
      catch: fail,
    })
    const listen = (onKey: (key: string) => void) =>
      Effect.gen(function* () {
        const client: pg.Client = yield* Effect.acquireRelease(
          Effect.tryPromise({
            try: async () => {
              const made = new pg.Client({ connectionString: url })
              made.on("error", () => undefined)
              await made.connect()
              return made
            },
            catch: fail,
          }),
          (made) => Effect.promise(() => made.end().catch(() => undefined)),
        )
        client.on("notification", (message) => {
          if (message.channel === farmChannel && message.payload) onKey(message.payload)
        })
        yield* Effect.tryPromise({ try: () => client.query(`listen ${farmChannel}`), catch: fail })
      })
    return { url, query, listen }
  })
