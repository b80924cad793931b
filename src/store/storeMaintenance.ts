import { existsSync, readdirSync, statSync } from "node:fs"
import { join } from "node:path"
import { SqlClient, SqlSchema } from "@effect/sql"
import { Effect, Schema } from "effect"
import type { DatabaseFailure } from "../db/database.js"
import { sqlFailure } from "../db/database.js"
import type { Database } from "../db/records.js"
import { StorePathRecords, type StorePathRow } from "../db/storePathRecords.js"
import { InternalError } from "../errors.js"
import { currentProcess, holderAlive } from "../process/processIdentity.js"
import { storePathName } from "./nodeStore.js"
import { removeTree } from "./readOnly.js"
import { storeSealingKey } from "./sealingKey.js"
import { acquireStoreLock, liveUsers, sweepStaleHolds } from "./storeLock.js"
import { listingDigest, parseListing, treeDifferences, treeDigest } from "./treeDigest.js"
import { memoryScratchPrefix, memoryScratchRoot, workRoot } from "./workDirectory.js"

type DbError = DatabaseFailure

export interface StoreEntry {
  readonly key: string
  readonly kind: string
  readonly path: string
  readonly files: number
  readonly bytes: number
  readonly createdAt: string
  readonly valid: boolean
}

const entryOf = (store: string, row: StorePathRow): StoreEntry => ({
  key: row.key,
  kind: row.kind,
  path: join(store, storePathName(row.key, row.name)),
  files: row.files,
  bytes: row.bytes,
  createdAt: row.created_at,
  valid: row.valid === 1,
})

/** Every store path the database knows (Image Builders are store paths like every node output). */
export const listStore = (store: string): Effect.Effect<ReadonlyArray<StoreEntry>, DbError, Database> =>
  Effect.map(StorePathRecords.list(), (rows) => rows.map((row) => entryOf(store, row)))

export interface VerifyReport {
  readonly checked: number
  readonly drifted: ReadonlyArray<{
    readonly key: string
    readonly path: string
    readonly files: ReadonlyArray<string>
  }>
}

/**
 * Re-hashes every valid node output and compares it with the digest recorded when it was made. A path
 * that changed (or vanished) loses its valid mark, so realize builds it again instead of reusing it.
 */
export const verifyStore = (store: string): Effect.Effect<VerifyReport, DbError | InternalError, Database> =>
  Effect.gen(function* () {
    const drifted: Array<{ key: string; path: string; files: ReadonlyArray<string> }> = []
    let checked = 0
    for (const row of yield* StorePathRecords.list()) {
      if (row.valid !== 1) continue
      checked += 1
      const path = join(store, storePathName(row.key, row.name))
      const expected = parseListing(row.listing)
      if (!existsSync(path)) {
        drifted.push({ key: row.key, path, files: ["(missing)"] })
        yield* StorePathRecords.invalidate(row.key)
        continue
      }
      // stage-overlay trees may hold secret values: their contents are digested under the store's key.
      const key = row.kind === "stage-overlay" ? yield* storeSealingKey(store) : undefined
      // Fixed-output nodes (builders) recorded their listing only: their content was verified on arrival.
      const listingOnly = expected.some((entry) => entry.kind === "file" && entry.sha256 === undefined)
      const actual = yield* treeDigest(path, { key, listingOnly })
      // Unchanged since it was digested — or since then only made read-only (publishing does that, and so
      // does a cache hit of a path an older owrt stored writable): its listing is the recorded one, modes
      // compared as published. That takes a recorded listing that is the one the digest was taken over.
      if (actual.digest === row.digest) continue
      const recorded = listingDigest(expected) === row.digest
      const differing = treeDifferences(expected, actual.entries, { modes: recorded ? "published" : "exact" })
      if (recorded && differing.length === 0) continue
      drifted.push({
        key: row.key,
        path,
        files: differing.length > 0 ? differing : ["(its recorded listing does not match its digest)"],
      })
      yield* StorePathRecords.invalidate(row.key)
    }
    return { checked, drifted }
  })

/** What a piece of garbage is: why it may go. */
export type GarbageKind = "work-directory" | "build-instance" | "invalid-path" | "unknown-path"

/** Each kind of garbage in words, for people (`store gc` prints it next to the path). */
export const garbageDescriptions: Readonly<Record<GarbageKind, string>> = {
  "work-directory": "work directory of a killed process",
  "build-instance": "abandoned build instance of a killed process",
  "invalid-path": "store path marked invalid (changed, or replaced by a rebuild)",
  "unknown-path": "store path the database does not know (a crash before it was recorded)",
}

export interface GcReport {
  readonly removed: ReadonlyArray<string>
  /** Each removed path (`removed`, in the same order) with what it was. */
  readonly garbage: ReadonlyArray<{ readonly path: string; readonly kind: GarbageKind }>
  readonly bytesFreed: number
  /** Garbage left alone this time, and why: in use or locked by a live process, or changed just now. */
  readonly skipped: ReadonlyArray<{ readonly path: string; readonly reason: string }>
  /** Lock and use rows of dead processes deleted (with `dryRun`: that would be deleted). */
  readonly staleLocks: number
}

/**
 * Removes garbage: work directories and builder instances of processes that are gone, their stale lock and
 * use rows, node outputs whose row is invalid or missing, and anything else in the store that the database
 * does not know. Never a valid path, and never one a live process uses or holds the lock of.
 */
export const collectGarbage = (
  store: string,
  options: { readonly dryRun: boolean },
): Effect.Effect<GcReport, DbError | InternalError, Database> =>
  Effect.gen(function* () {
    const removed: Array<string> = []
    const garbage: Array<{ path: string; kind: GarbageKind }> = []
    const skipped: Array<{ path: string; reason: string }> = []
    let bytesFreed = 0
    const remove = (path: string, kind: GarbageKind) =>
      Effect.try({
        try: () => {
          try {
            bytesFreed += directorySize(path)
          } catch {
            // size is informational
          }
          if (!options.dryRun) removeTree(path)
          removed.push(path)
          garbage.push({ path, kind })
        },
        catch: (cause) => new InternalError({ cause }),
      })

    const work = workRoot(store)
    if (existsSync(work)) {
      for (const name of readdirSync(work)) {
        const [pid, start] = name.split(".")
        if (!holderAlive({ pid: Number(pid), start: start ?? "unknown", host: currentProcess.host })) {
          yield* remove(join(work, name), "work-directory")
        }
      }
    }
    // Builder instances kept in memory by processes that are gone (killed before their cleanup ran).
    if (existsSync(memoryScratchRoot)) {
      for (const name of readdirSync(memoryScratchRoot)) {
        if (!name.startsWith(memoryScratchPrefix)) continue
        const [pid, start] = name.slice(memoryScratchPrefix.length).split(".")
        if (!holderAlive({ pid: Number(pid), start: start ?? "unknown", host: currentProcess.host })) {
          yield* remove(join(memoryScratchRoot, name), "build-instance")
        }
      }
    }
    // Lock and use rows of dead processes (SIGKILL runs no finalizer): deleted, so they block nobody.
    const sweep = options.dryRun ? undefined : yield* sweepStaleHolds
    const staleLocks = sweep ? sweep.rows : yield* staleHoldCount
    /** Locks a dead process held: what it was making is an orphan, however recent. */
    const orphaned = new Set(sweep?.freedLocks ?? [])

    // Candidates are re-checked under their own store lock: skipped when a live process uses them or holds
    // the lock. A lock taken over from a dead process means its path is an orphan of that process; a free
    // lock and a path changed moments ago may be a publish that raced this listing, so it is left alone.
    const started = Date.now()
    const recent = (path: string) => {
      try {
        return statSync(path).ctimeMs > started - 60_000
      } catch {
        return true
      }
    }
    const underLock = (
      name: string,
      path: string,
      kind: GarbageKind,
      garbage: () => Effect.Effect<boolean, DbError, Database>,
      afterRemoval: Effect.Effect<void, DbError, Database> = Effect.void,
    ) =>
      Effect.scoped(
        Effect.gen(function* () {
          if (!(yield* garbage())) return
          const users = yield* liveUsers(name)
          if (users.length > 0) {
            skipped.push({ path, reason: `in use by ${users.join(", ")}` })
            return
          }
          const lock = yield* acquireStoreLock(name, 0)
          if (!(yield* garbage())) return
          if (!lock.tookOverFromDeadHolder && !orphaned.has(name) && recent(path)) {
            skipped.push({ path, reason: "changed less than a minute ago" })
            return
          }
          yield* remove(path, kind)
          if (!options.dryRun) yield* afterRemoval
        }),
      ).pipe(
        Effect.catchTag("LockTimeoutError", (error) =>
          Effect.sync(() => skipped.push({ path, reason: `locked by ${error.holder}` })),
        ),
      )

    for (const row of yield* StorePathRecords.list()) {
      if (row.valid === 1) continue
      const path = join(store, storePathName(row.key, row.name))
      const invalid = Effect.map(
        StorePathRecords.find(row.key),
        (now) => now !== undefined && now.valid !== 1,
      )
      yield* underLock(
        `node:${row.key}`,
        path,
        "invalid-path",
        () => Effect.map(StorePathRecords.find(row.key), (now) => now === undefined || now.valid !== 1),
        // The row goes with its path, under the same lock: a rebuild that made it valid again is kept.
        Effect.flatMap(invalid, (stillInvalid) =>
          stillInvalid ? StorePathRecords.remove(row.key) : Effect.void,
        ),
      )
    }
    for (const name of existsSync(store) ? readdirSync(store) : []) {
      const match = /^([0-9a-f]{16})-/.exec(name)
      const key = match?.[1]
      const path = join(store, name)
      if (!key || removed.includes(path) || skipped.some((s) => s.path === path)) continue
      // Invalid rows were handled above: what is left here has no row (or another path has it).
      yield* underLock(`node:${key}`, path, "unknown-path", () =>
        Effect.map(
          StorePathRecords.find(key),
          (row) => row === undefined || row.valid !== 1 || storePathName(row.key, row.name) !== name,
        ),
      )
    }
    return { removed, garbage, bytesFreed, skipped, staleLocks }
  })

/** How many lock and use rows belong to dead processes (what `sweepStaleHolds` would delete). */
const staleHoldCount: Effect.Effect<number, DbError, Database> = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const holders = SqlSchema.findAll({
    Request: Schema.Void,
    Result: Schema.Struct({ pid: Schema.Number, pid_start: Schema.String, host: Schema.String }),
    execute: () =>
      sql`SELECT pid, pid_start, host FROM locks UNION ALL SELECT pid, pid_start, host FROM store_uses`,
  })
  const rows = yield* holders(undefined).pipe(sqlFailure("read locks"))
  return rows.filter((row) => !holderAlive({ pid: row.pid, start: row.pid_start, host: row.host })).length
})

const directorySize = (path: string): number => {
  let total = 0
  const visit = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = join(dir, entry.name)
      if (entry.isDirectory()) visit(full)
      else if (entry.isFile()) total += statSync(full).size
    }
  }
  visit(path)
  return total
}
