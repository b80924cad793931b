import { Context, Effect } from "effect"
import type { DatabaseFailure } from "./database.js"

/**
 * Locks that every machine sharing the records database respects: PostgreSQL's session advisory locks,
 * when the records are there. The store's own locks (rows in its SQLite file, src/store/storeLock.ts) tell
 * a dead holder on this machine by its pid, but cannot tell whether a process on another machine is alive;
 * a store lock also taken here can: PostgreSQL releases a session's locks when the session ends, so a lock
 * row of another machine whose advisory lock is free belongs to a process that is gone.
 */
export interface AdvisoryLocksService {
  /** Whether the locks span machines (PostgreSQL); without, every `tryLock` succeeds and says nothing. */
  readonly shared: boolean
  /** Takes the lock named `key` if no other session holds it (reentrant within this process). */
  readonly tryLock: (key: string) => Effect.Effect<boolean, DatabaseFailure>
  /** Gives one hold of `key` back. */
  readonly unlock: (key: string) => Effect.Effect<void>
}

export class AdvisoryLocks extends Context.Tag("owrt/AdvisoryLocks")<AdvisoryLocks, AdvisoryLocksService>() {}

/** The store's SQLite file alone: no lock reaches another machine. */
export const noAdvisoryLocks: AdvisoryLocksService = {
  shared: false,
  tryLock: () => Effect.succeed(true),
  unlock: () => Effect.void,
}
