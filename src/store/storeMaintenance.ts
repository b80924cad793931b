import { existsSync, readdirSync, rmSync, statSync } from "node:fs"
import { join } from "node:path"
import type { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import {
  deleteStorePath,
  findStorePath,
  invalidateStorePath,
  listStorePaths,
  type StorePathRow,
} from "../db/storePathRecords.js"
import { type DatabaseBusyError, type DatabaseError, InternalError } from "../errors.js"
import { currentProcess, holderAlive } from "../process/processIdentity.js"
import { storePathName } from "./nodeStore.js"
import { storeSealingKey } from "./sealingKey.js"
import { acquireStoreLock } from "./storeLock.js"
import { type TreeFile, treeDifferences, treeDigest } from "./treeDigest.js"
import { memoryScratchPrefix, memoryScratchRoot, workRoot } from "./workDirectory.js"

type DbError = DatabaseError | DatabaseBusyError

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
export const listStore = (store: string): Effect.Effect<ReadonlyArray<StoreEntry>, DbError, SqlClient.SqlClient> =>
  Effect.map(listStorePaths(), (rows) => rows.map((row) => entryOf(store, row)))

export interface VerifyReport {
  readonly checked: number
  readonly drifted: ReadonlyArray<{ readonly key: string; readonly path: string; readonly files: ReadonlyArray<string> }>
}

/**
 * Re-hashes every valid node output and compares it with the digest recorded when it was made. A path
 * that changed (or vanished) loses its valid mark, so realize builds it again instead of reusing it.
 */
export const verifyStore = (store: string): Effect.Effect<VerifyReport, DbError | InternalError, SqlClient.SqlClient> =>
  Effect.gen(function* () {
    const drifted: Array<{ key: string; path: string; files: ReadonlyArray<string> }> = []
    let checked = 0
    for (const row of yield* listStorePaths()) {
      if (row.valid !== 1) continue
      checked += 1
      const path = join(store, storePathName(row.key, row.name))
      const expected = JSON.parse(row.listing) as ReadonlyArray<TreeFile>
      if (!existsSync(path)) {
        drifted.push({ key: row.key, path, files: ["(missing)"] })
        yield* invalidateStorePath(row.key)
        continue
      }
      // stage-overlay trees may hold secret values: their contents are digested under the store's key.
      const key = row.kind === "stage-overlay" ? yield* storeSealingKey(store) : undefined
      // Fixed-output nodes (builders) recorded their listing only: their content was verified on arrival.
      const listingOnly = expected.some((entry) => entry.kind === "file" && entry.sha256 === undefined)
      const actual = yield* Effect.try({
        try: () => treeDigest(path, key, listingOnly),
        catch: (cause) => new InternalError({ cause }),
      })
      if (actual.digest !== row.digest) {
        drifted.push({ key: row.key, path, files: treeDifferences(expected, actual.entries) })
        yield* invalidateStorePath(row.key)
      }
    }
    return { checked, drifted }
  })

export interface GcReport {
  readonly removed: ReadonlyArray<string>
  readonly bytesFreed: number
}

/**
 * Removes garbage: work directories of processes that are gone, node outputs whose row is invalid or
 * missing, and anything else in the store that the database does not know. Never a valid path.
 */
export const collectGarbage = (
  store: string,
  options: { readonly dryRun: boolean },
): Effect.Effect<GcReport, DbError | InternalError, SqlClient.SqlClient> =>
  Effect.gen(function* () {
    const removed: Array<string> = []
    let bytesFreed = 0
    const remove = (path: string) =>
      Effect.try({
        try: () => {
          try {
            bytesFreed += directorySize(path)
          } catch {
            // size is informational
          }
          if (!options.dryRun) rmSync(path, { recursive: true, force: true })
          removed.push(path)
        },
        catch: (cause) => new InternalError({ cause }),
      })

    const work = workRoot(store)
    if (existsSync(work)) {
      for (const name of readdirSync(work)) {
        const [pid, start] = name.split(".")
        if (!holderAlive({ pid: Number(pid), start: start ?? "unknown", host: currentProcess.host })) {
          yield* remove(join(work, name))
        }
      }
    }
    // Builder instances kept in memory by processes that are gone (killed before their cleanup ran).
    if (existsSync(memoryScratchRoot)) {
      for (const name of readdirSync(memoryScratchRoot)) {
        if (!name.startsWith(memoryScratchPrefix)) continue
        const [pid, start] = name.slice(memoryScratchPrefix.length).split(".")
        if (!holderAlive({ pid: Number(pid), start: start ?? "unknown", host: currentProcess.host })) {
          yield* remove(join(memoryScratchRoot, name))
        }
      }
    }
    // Candidates are re-checked under their own store lock (skipped when someone holds it: it is in use),
    // and nothing published since shortly before gc started is touched.
    const started = Date.now()
    const recent = (path: string) => {
      try {
        return statSync(path).ctimeMs > started - 60_000
      } catch {
        return true
      }
    }
    const underLock = (lock: string, still: () => Effect.Effect<boolean, DbError, SqlClient.SqlClient>, path: string) =>
      Effect.scoped(
        Effect.gen(function* () {
          yield* acquireStoreLock(lock, 0)
          if (yield* still()) yield* remove(path)
        }),
      ).pipe(Effect.catchTag("LockTimeoutError", () => Effect.void))

    for (const row of yield* listStorePaths()) {
      if (row.valid === 1) continue
      const path = join(store, storePathName(row.key, row.name))
      if (recent(path)) continue
      yield* underLock(
        `node:${row.key}`,
        () =>
          Effect.map(findStorePath(row.key), (now) => {
            const stale = now === undefined || now.valid !== 1
            return stale
          }),
        path,
      )
      if (!options.dryRun) {
        const now = yield* findStorePath(row.key)
        if (now && now.valid !== 1) yield* deleteStorePath(row.key)
      }
    }
    for (const name of existsSync(store) ? readdirSync(store) : []) {
      const match = /^([0-9a-f]{16})-/.exec(name)
      const key = match?.[1]
      const path = join(store, name)
      if (!key || removed.includes(path) || recent(path)) continue
      yield* underLock(
        `node:${key}`,
        () =>
          Effect.map(
            findStorePath(key),
            (row) => row === undefined || row.valid !== 1 || storePathName(row.key, row.name) !== name,
          ),
        path,
      )
    }
    return { removed, bytesFreed }
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
