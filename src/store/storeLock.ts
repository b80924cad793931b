import { randomUUID } from "node:crypto"
import { SqlClient } from "@effect/sql"
import { Duration, Effect, type Scope } from "effect"
import { databaseFailure } from "../db/database.js"
import { type DatabaseBusyError, type DatabaseError, LockTimeoutError } from "../errors.js"
import { currentProcess, holderAlive } from "../process/processIdentity.js"

interface LockRow {
  readonly owner: string
  readonly pid: number
  readonly pid_start: string
  readonly host: string
}

/**
 * A named lock shared by every process using the store, kept in the database. Each step is one SQL
 * statement (atomic under SQLite's write lock). A holder that died — SIGKILL included — is detected by
 * pid and process start time and its lock taken over at once; a live holder is waited for, polling, up to
 * `timeoutSeconds`, then `LockTimeoutError` (exit 10). Released when the scope closes.
 */
export const acquireStoreLock = (
  name: string,
  timeoutSeconds: number,
): Effect.Effect<void, LockTimeoutError | DatabaseError | DatabaseBusyError, SqlClient.SqlClient | Scope.Scope> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const owner = randomUUID()
    const started = Date.now()
    let lastHolder = "another process"

    const tryOnce = Effect.gen(function* () {
      yield* sql`INSERT INTO locks (name, owner, pid, pid_start, host, acquired_at)
                 VALUES (${name}, ${owner}, ${currentProcess.pid}, ${currentProcess.start}, ${currentProcess.host},
                         ${new Date().toISOString()})
                 ON CONFLICT (name) DO NOTHING`
      const [holder] = yield* sql<LockRow>`SELECT owner, pid, pid_start, host FROM locks WHERE name = ${name}`
      if (!holder || holder.owner === owner) return true
      lastHolder = `pid ${holder.pid} on ${holder.host}`
      if (!holderAlive({ pid: holder.pid, start: holder.pid_start, host: holder.host })) {
        // Only the dead holder's row is removed: if someone else took it meanwhile, this deletes nothing.
        yield* sql`DELETE FROM locks WHERE name = ${name} AND owner = ${holder.owner}`
      }
      return false
    }).pipe(Effect.mapError(databaseFailure(`lock ${name}`)))

    const poll: Effect.Effect<boolean, DatabaseError | DatabaseBusyError> = Effect.flatMap(tryOnce, (got) =>
      got || Date.now() - started > timeoutSeconds * 1000
        ? Effect.succeed(got)
        : Effect.zipRight(Effect.sleep(Duration.millis(100)), Effect.suspend(() => poll)),
    )
    const acquired = yield* poll
    if (!acquired) return yield* new LockTimeoutError({ lock: name, holder: lastHolder, seconds: timeoutSeconds })
    yield* Effect.addFinalizer(() =>
      sql`DELETE FROM locks WHERE name = ${name} AND owner = ${owner}`.pipe(Effect.ignore),
    )
  })
