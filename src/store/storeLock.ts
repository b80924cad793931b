import { createHash, randomUUID } from "node:crypto"
import { dirname } from "node:path"
import { SqlClient } from "@effect/sql"
import { Duration, Effect, type Scope } from "effect"
import { AdvisoryLocks } from "../db/advisoryLocks.js"
import { type DatabaseFailure, sqlFailure } from "../db/database.js"
import { LockTimeoutError } from "../errors.js"
import { currentProcess, holderAlive } from "../process/processIdentity.js"
import { storeSealingKey } from "./sealingKey.js"
import { removeScratchOf } from "./workDirectory.js"

type DbError = DatabaseFailure

interface HolderRow {
  readonly name: string
  readonly owner: string
  readonly pid: number
  readonly pid_start: string
  readonly host: string
}

const isAlive = (row: HolderRow) => holderAlive({ pid: row.pid, start: row.pid_start, host: row.host })
const describeHolder = (row: { readonly pid: number; readonly host: string }) =>
  `pid ${row.pid} on ${row.host}`

/** The store directory: where the database file lives (undefined for a database without a file). */
const storeDirectory = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql<{ name: string; file: string }>`PRAGMA database_list`
  const file = rows.find((row) => row.name === "main")?.file
  return file ? dirname(file) : undefined
})

/** Holders whose scratch space this process already removed. */
const cleaned = new Set<string>()

/**
 * Everything a dead holder left: its other lock and use rows, and its scratch space (work directories and
 * builder instances, which may hold secret values). Rows are deleted by owner, so a row someone took over
 * meanwhile is never touched.
 */
const cleanUpDeadHolder = (
  holder: HolderRow,
): Effect.Effect<ReadonlyArray<string>, DbError, SqlClient.SqlClient> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    yield* sql`DELETE FROM locks WHERE pid = ${holder.pid} AND pid_start = ${holder.pid_start} AND host = ${holder.host}`
    yield* sql`DELETE FROM store_uses WHERE pid = ${holder.pid} AND pid_start = ${holder.pid_start} AND host = ${holder.host}`
    const id = `${holder.pid}.${holder.pid_start}@${holder.host}`
    if (cleaned.has(id) || holder.host !== currentProcess.host) return []
    cleaned.add(id)
    return removeScratchOf(yield* storeDirectory, { pid: holder.pid, start: holder.pid_start })
  }).pipe(sqlFailure("clean up after a dead process"))

export interface StaleSweep {
  /** Lock and use rows of dead processes that were deleted. */
  readonly rows: number
  /** Their scratch space that was removed. */
  readonly scratch: ReadonlyArray<string>
  /** Names of the locks they held: whatever those guarded is an orphan of a dead process. */
  readonly freedLocks: ReadonlyArray<string>
}

/**
 * Deletes the lock and use rows of processes that are gone (SIGKILL runs no finalizer) and removes their
 * scratch space. `store gc` runs it; every process runs it once, when it first takes a lock.
 */
export const sweepStaleHolds: Effect.Effect<StaleSweep, DbError, SqlClient.SqlClient> = Effect.gen(
  function* () {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<HolderRow & { kind: string }>`
    SELECT 'lock' AS kind, name, owner, pid, pid_start, host FROM locks
    UNION ALL SELECT 'use' AS kind, name, owner, pid, pid_start, host FROM store_uses`.pipe(
      sqlFailure("read locks"),
    )
    const dead = rows.filter((row) => !isAlive(row))
    const scratch: Array<string> = []
    const holders = new Map(dead.map((row) => [`${row.pid}.${row.pid_start}@${row.host}`, row] as const))
    for (const holder of holders.values()) scratch.push(...(yield* cleanUpDeadHolder(holder)))
    return {
      rows: dead.length,
      scratch,
      freedLocks: dead.filter((row) => row.kind === "lock").map((row) => row.name),
    }
  },
)

let sweptOnce = false
/**
 * Opportunistic, once per process (when it first takes a lock or a use): the rows and scratch space of
 * processes killed earlier go away with the next run, cache hits included. Best effort.
 */
const sweepOnce: Effect.Effect<void, never, SqlClient.SqlClient> = Effect.suspend(() => {
  if (sweptOnce) return Effect.void
  sweptOnce = true
  return Effect.ignore(sweepStaleHolds)
})

export interface LockAcquired {
  /** The lock was held by a process that is gone: whatever it was doing was cut off. */
  readonly tookOverFromDeadHolder: boolean
}

/** The store's identity in advisory lock names: a digest of its own sealing key (which it does not reveal). */
const storeIds = new Map<string, string>()
const storeIdOf = (dir: string): Effect.Effect<string> => {
  const known = storeIds.get(dir)
  if (known !== undefined) return Effect.succeed(known)
  return Effect.map(storeSealingKey(dir), (key) => {
    const id = createHash("sha256").update("owrt store id\0").update(key).digest("hex").slice(0, 32)
    storeIds.set(dir, id)
    return id
  })
}

/**
 * A named lock shared by every process using the store, kept in the database. Each step is one SQL
 * statement (atomic under SQLite's write lock). A holder that died — SIGKILL included — is detected by
 * pid and process start time and its lock taken over at once (even with a zero timeout), its other rows
 * deleted and its scratch space removed; a live holder is waited for, polling, up to `timeoutSeconds`,
 * then `LockTimeoutError` (exit 10). Released when the scope closes.
 *
 * With the records in PostgreSQL the lock is also an advisory lock there (`AdvisoryLocks`), named by the
 * store's id and the lock's name, taken first: processes on other machines using the same store directory
 * (a network file system) wait for it, and a lock row of another machine whose advisory lock is free
 * belongs to a process that is gone — taken over like a dead holder here, which a pid cannot tell.
 */
export const acquireStoreLock = (
  name: string,
  timeoutSeconds: number,
): Effect.Effect<
  LockAcquired,
  LockTimeoutError | DbError,
  SqlClient.SqlClient | AdvisoryLocks | Scope.Scope
> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const advisory = yield* AdvisoryLocks
    yield* sweepOnce
    const owner = randomUUID()
    const started = Date.now()
    let lastHolder = "another process"
    let tookOverFromDeadHolder = false
    const dir = advisory.shared
      ? yield* storeDirectory.pipe(sqlFailure("read the store's location"))
      : undefined
    const advisoryName = dir === undefined ? undefined : `owrt store ${yield* storeIdOf(dir)} ${name}`

    const insert = sql`INSERT INTO locks (name, owner, pid, pid_start, host, acquired_at)
                 VALUES (${name}, ${owner}, ${currentProcess.pid}, ${currentProcess.start}, ${currentProcess.host},
                         ${new Date().toISOString()})
                 ON CONFLICT (name) DO NOTHING`
    const tryRow: Effect.Effect<boolean, DbError> = Effect.gen(function* () {
      // A dead holder's row is deleted and the insert tried again at once: a takeover is no wait.
      for (let attempt = 0; attempt < 3; attempt++) {
        yield* insert
        const [holder] =
          yield* sql<HolderRow>`SELECT name, owner, pid, pid_start, host FROM locks WHERE name = ${name}`
        if (!holder || holder.owner === owner) return true
        lastHolder = describeHolder(holder)
        // Another machine's holder, while this process holds the advisory lock: that holder is gone.
        const goneElsewhere = advisoryName !== undefined && holder.host !== currentProcess.host
        if (!goneElsewhere && isAlive(holder)) return false
        // Only the dead holder's row is removed: if someone else took it meanwhile, this deletes nothing.
        yield* sql`DELETE FROM locks WHERE name = ${name} AND owner = ${holder.owner}`
        tookOverFromDeadHolder = true
        yield* cleanUpDeadHolder(holder).pipe(Effect.provideService(SqlClient.SqlClient, sql))
      }
      return false
    }).pipe(
      // A failure after the insert would leave this process's own row holding the lock: it goes too.
      Effect.onError(() =>
        sql`DELETE FROM locks WHERE name = ${name} AND owner = ${owner}`.pipe(Effect.ignore),
      ),
      Effect.catchTag("SqlError", (error) => sqlFailure(`lock ${name}`)(Effect.fail(error))),
    )
    const tryOnce: Effect.Effect<boolean, DbError> =
      advisoryName === undefined
        ? tryRow
        : Effect.gen(function* () {
            if (!(yield* advisory.tryLock(advisoryName))) {
              lastHolder = "a process on another machine (PostgreSQL advisory lock)"
              return false
            }
            const got = yield* Effect.onError(tryRow, () => advisory.unlock(advisoryName))
            if (!got) yield* advisory.unlock(advisoryName)
            return got
          })

    const release = sql`DELETE FROM locks WHERE name = ${name} AND owner = ${owner}`.pipe(
      Effect.ignore,
      Effect.zipRight(advisoryName === undefined ? Effect.void : advisory.unlock(advisoryName)),
    )
    // A try and, when it got the lock, the finalizer that gives it back, with no interruption in between
    // (an interrupted try could leave the lock held for the rest of the process); only the wait between
    // tries is interruptible.
    const acquired = yield* Effect.uninterruptibleMask((restore) => {
      const poll: Effect.Effect<boolean, DbError, Scope.Scope> = Effect.flatMap(tryOnce, (got) =>
        got
          ? Effect.as(
              Effect.addFinalizer(() => release),
              true,
            )
          : Date.now() - started > timeoutSeconds * 1000
            ? Effect.succeed(false)
            : Effect.zipRight(
                restore(Effect.sleep(Duration.millis(100))),
                Effect.suspend(() => poll),
              ),
      )
      return poll
    })
    if (!acquired)
      return yield* new LockTimeoutError({ lock: name, holder: lastHolder, seconds: timeoutSeconds })
    return { tookOverFromDeadHolder }
  })

/**
 * A shared "use" of a store path or builder (`builder:<key>`, `node:<key>`) by this process, for as long
 * as the scope is open: `builders prune` and `store gc` leave it alone. Taken before the thing is looked
 * up, so whoever removes it either sees the use or removed it before it was found. A use of a process that
 * is gone is stale and ignored.
 */
export const useStorePath = (name: string): Effect.Effect<void, DbError, SqlClient.SqlClient | Scope.Scope> =>
  useStorePaths([name])

/** Uses of several store paths at once: one statement to take them, one to give them back. */
export const useStorePaths = (
  names: ReadonlyArray<string>,
): Effect.Effect<void, DbError, SqlClient.SqlClient | Scope.Scope> =>
  Effect.gen(function* () {
    if (names.length === 0) return
    const sql = yield* SqlClient.SqlClient
    yield* sweepOnce
    const owner = randomUUID()
    const at = new Date().toISOString()
    yield* Effect.acquireRelease(
      sql`INSERT INTO store_uses ${sql.insert(
        names.map((name) => ({
          name,
          owner,
          pid: currentProcess.pid,
          pid_start: currentProcess.start,
          host: currentProcess.host,
          acquired_at: at,
        })),
      )}`.pipe(sqlFailure(`use ${names.join(", ")}`)),
      () => sql`DELETE FROM store_uses WHERE owner = ${owner}`.pipe(Effect.ignore),
    )
  })

/**
 * The live processes using `name` (as "pid N on host"); uses of dead processes are deleted on the way
 * (and their scratch space removed).
 */
export const liveUsers = (name: string): Effect.Effect<ReadonlyArray<string>, DbError, SqlClient.SqlClient> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const rows =
      yield* sql<HolderRow>`SELECT name, owner, pid, pid_start, host FROM store_uses WHERE name = ${name}`.pipe(
        sqlFailure(`read uses of ${name}`),
      )
    const live: Array<string> = []
    for (const row of rows) {
      if (isAlive(row)) live.push(describeHolder(row))
      else yield* cleanUpDeadHolder(row)
    }
    return [...new Set(live)]
  })
