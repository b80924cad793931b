import { createHash } from "node:crypto"
import { SqlClient } from "@effect/sql"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Option } from "effect"
import pg from "pg"
import { AppConfig } from "../../src/config/appConfig.js"
import { storeSealingKey } from "../../src/store/sealingKey.js"
import { acquireStoreLock } from "../../src/store/storeLock.js"
import { recordsBackends, stopTestPostgres } from "../helpers/recordsBackends.js"

afterAll(stopTestPostgres)

const failureCode = <A, E extends { readonly code: string }>(exit: Exit.Exit<A, E>) =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause))?.code : undefined

/** A session of "another machine" on the records' PostgreSQL, and the advisory lock name of a store lock. */
const otherMachine = Effect.gen(function* () {
  const config = yield* AppConfig
  if (config.database.kind !== "postgres") throw new Error("PostgreSQL only")
  const key = yield* storeSealingKey(config.store)
  const id = createHash("sha256").update("owrt store id\0").update(key).digest("hex").slice(0, 32)
  const client = yield* Effect.acquireRelease(
    Effect.promise(async () => {
      const c = new pg.Client({
        connectionString: config.database.kind === "postgres" ? config.database.url : "",
      })
      await c.connect()
      return c
    }),
    (c) => Effect.promise(() => c.end().catch(() => undefined)),
  )
  const tryLock = (name: string) =>
    Effect.promise(() =>
      client.query<{ got: boolean }>("SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS got", [
        `owrt store ${id} ${name}`,
      ]),
    ).pipe(Effect.map((result) => result.rows[0]?.got === true))
  return { client, tryLock }
})

describe.each(recordsBackends)("store locks with the records in $name", ({ name, layer }) => {
  it.scopedLive("a lock row left by a process on another machine", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      yield* sql`INSERT INTO locks (name, owner, pid, pid_start, host, acquired_at)
        VALUES ('node:x', 'gone', 4242, '1', 'elsewhere', '2026-01-01T00:00:00.000Z')`
      const exit = yield* Effect.exit(Effect.scoped(acquireStoreLock("node:x", 1)))
      if (name === "sqlite") {
        // A pid on another machine cannot be looked at: the lock is waited for, then lock_timeout.
        expect(failureCode(exit)).toBe("lock_timeout")
      } else {
        // Nobody holds its advisory lock: the holder is gone, and its lock is taken over at once.
        expect(exit).toMatchObject({ _tag: "Success", value: { tookOverFromDeadHolder: true } })
      }
    }).pipe(Effect.provide(layer())),
  )

  it.scopedLive("two holders in one process exclude each other, and every hold is given back", () =>
    Effect.gen(function* () {
      const first = yield* Effect.exit(
        Effect.scoped(
          Effect.gen(function* () {
            yield* acquireStoreLock("node:z", 0)
            return yield* Effect.exit(Effect.scoped(acquireStoreLock("node:z", 0.3)))
          }),
        ),
      )
      expect(first._tag).toBe("Success")
      if (Exit.isSuccess(first)) expect(failureCode(first.value)).toBe("lock_timeout")
      expect(yield* Effect.exit(Effect.scoped(acquireStoreLock("node:z", 0)))).toMatchObject({
        _tag: "Success",
      })
      if (name === "postgresql") {
        const other = yield* otherMachine
        // Released here, so free for another machine.
        expect(yield* other.tryLock("node:z")).toBe(true)
      }
    }).pipe(Effect.provide(layer())),
  )
})

describe("store locks across machines (PostgreSQL advisory locks)", () => {
  const postgres = recordsBackends.find((backend) => backend.name === "postgresql")
  if (!postgres) throw new Error("tests/helpers/recordsBackends.ts has no PostgreSQL backend")
  it.scopedLive(
    "a lock held on another machine is waited for, and free once that machine's session ends",
    () =>
      Effect.gen(function* () {
        const other = yield* otherMachine
        expect(yield* other.tryLock("node:y")).toBe(true)
        const exit = yield* Effect.exit(Effect.scoped(acquireStoreLock("node:y", 1)))
        expect(failureCode(exit)).toBe("lock_timeout")
        if (Exit.isFailure(exit)) expect(Cause.pretty(exit.cause)).toContain("another machine")
        // That machine's process dies: PostgreSQL ends its session and frees the lock.
        yield* Effect.promise(() => other.client.end())
        expect(yield* Effect.exit(Effect.scoped(acquireStoreLock("node:y", 5)))).toMatchObject({
          _tag: "Success",
        })
      }).pipe(Effect.provide(postgres.layer())),
  )

  it.scopedLive(
    "a lock connection the server drops is replaced: the next lock works and excludes again",
    () =>
      Effect.gen(function* () {
        const other = yield* otherMachine
        yield* Effect.scoped(
          Effect.gen(function* () {
            yield* acquireStoreLock("node:a", 0)
            // The server ends the session holding it (a restart, an administrator).
            yield* Effect.promise(() =>
              other.client.query(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()",
              ),
            )
          }),
        )
        // The session is gone, and with it the lock: free for another machine.
        expect(yield* other.tryLock("node:a")).toBe(true)
        yield* Effect.scoped(
          Effect.gen(function* () {
            yield* acquireStoreLock("node:b", 5)
            expect(yield* other.tryLock("node:b")).toBe(false)
          }),
        )
        expect(yield* other.tryLock("node:b")).toBe(true)
      }).pipe(Effect.provide(postgres.layer())),
  )
})
