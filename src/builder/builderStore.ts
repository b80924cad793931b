import { existsSync, renameSync, rmSync } from "node:fs"
import { join } from "node:path"
import { SqlClient as Sql } from "@effect/sql"
import { Context, Effect, Layer, type Scope } from "effect"
import { AppConfig } from "../config/appConfig.js"
import {
  type BuilderRow,
  builderReferences,
  deleteBuilder,
  findBuilder,
  findResolution,
  insertBuilder,
  listBuilders,
  saveResolution,
  touchBuilder,
} from "../db/builderRecords.js"
import { databaseFailure } from "../db/database.js"
import {
  type ArchiveCorruptError,
  type ChecksumMismatchError,
  type DatabaseBusyError,
  type DatabaseError,
  DownloadError,
  InternalError,
  type LockTimeoutError,
  type NotPublishedError,
  OfflineError,
  type SignatureError,
  type StoreFullError,
  type UnsafeArchiveError,
  UsageError,
} from "../errors.js"
import { nodeKey } from "../graph/nodeKey.js"
import { Progress } from "../progress/progress.js"
import { acquireStoreLock, liveUsers, useStorePath } from "../store/storeLock.js"
import { makeWorkDirectory } from "../store/workDirectory.js"
import { downloadAndExtract, TransientDownloadError } from "./extractArchive.js"
import { type BuilderArchive, isSnapshot, resolveBuilderArchive, retrySchedule } from "./upstream.js"

export const fetchBuilderSchema = 1

/** A verified, extracted Image Builder in the store. */
export interface Builder {
  readonly key: string
  /** Absolute path of the builder tree. */
  readonly path: string
  readonly release: string
  readonly target: string
  readonly archiveName: string
  readonly archiveSha256: string
  readonly signedBy: string
  readonly upstream: string
  readonly files: number
  readonly bytes: number
  readonly createdAt: string
  readonly lastUsedAt: string
}

export type EnsureBuilderError =
  | NotPublishedError
  | OfflineError
  | DownloadError
  | ChecksumMismatchError
  | SignatureError
  | UnsafeArchiveError
  | ArchiveCorruptError
  | StoreFullError
  | LockTimeoutError
  | UsageError
  | DatabaseError
  | DatabaseBusyError
  | InternalError

export interface EnsureOptions {
  readonly release: string
  /** `<target>/<subtarget>` */
  readonly target: string
  /** Unsafe: accept a sha256sums whose signature is missing, unknown or wrong. */
  readonly skipSignature?: boolean
}

export class BuilderStore extends Context.Tag("owrt/BuilderStore")<
  BuilderStore,
  {
    /** The builder's key without fetching it (resolution from cache or upstream). */
    readonly resolve: (
      options: EnsureOptions,
    ) => Effect.Effect<{ archive: BuilderArchive; key: string }, EnsureBuilderError>
    /** The builder, fetched and verified if not yet in the store; built once even across processes. */
    readonly ensure: (
      options: EnsureOptions,
    ) => Effect.Effect<Builder & { readonly cached: boolean }, EnsureBuilderError>
    /**
     * `ensure`, holding a use of the builder until the scope closes: `builders prune` and `store gc` leave
     * it alone meanwhile. The use is taken before the builder is looked up.
     */
    readonly use: (
      options: EnsureOptions,
    ) => Effect.Effect<Builder & { readonly cached: boolean }, EnsureBuilderError, Scope.Scope>
    /** The path of the stored builder with this key, if it is there. */
    readonly find: (key: string) => Effect.Effect<string | undefined, DatabaseError | DatabaseBusyError>
    readonly list: () => Effect.Effect<
      ReadonlyArray<Builder & { readonly references: number }>,
      DatabaseError | DatabaseBusyError
    >
    /**
     * Removes builders no running process uses (with `olderThanDays`, only those unused that long). Those
     * in use or locked are skipped, and listed with the reason.
     */
    readonly prune: (options: {
      readonly olderThanDays?: number | undefined
      readonly dryRun?: boolean | undefined
    }) => Effect.Effect<PruneReport, DatabaseError | DatabaseBusyError | InternalError>
  }
>() {}

export interface PruneReport {
  readonly removed: ReadonlyArray<Builder>
  readonly skipped: ReadonlyArray<{ readonly builder: Builder; readonly reason: string }>
}

/** The use and lock name of a builder. */
export const builderHold = (key: string): string => `builder:${key}`

const toBuilder = (store: string, row: BuilderRow): Builder => ({
  key: row.key,
  path: join(store, row.path),
  release: row.release,
  target: row.target,
  archiveName: row.archive_name,
  archiveSha256: row.archive_sha256,
  signedBy: row.signed_by,
  upstream: row.upstream,
  files: row.files,
  bytes: row.bytes,
  createdAt: row.created_at,
  lastUsedAt: row.last_used_at,
})

const targetPattern = /^[a-z0-9_-]+\/[a-z0-9_-]+$/

export const builderStoreLayer = Layer.effect(
  BuilderStore,
  Effect.gen(function* () {
    const config = yield* AppConfig
    const progress = yield* Progress
    const sqlContext = yield* Effect.context<Sql.SqlClient>()
    const provide = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      effect.pipe(Effect.provide(sqlContext)) as Effect.Effect<A, E, Exclude<R, Sql.SqlClient>>

    const resolve = (options: EnsureOptions) =>
      provide(
        Effect.gen(function* () {
          if (!targetPattern.test(options.target)) {
            return yield* new UsageError({
              detail: `\`${options.target}\` is not <target>/<subtarget> (e.g. ath79/generic)`,
            })
          }
          const cached = yield* findResolution(
            config.upstream,
            options.release,
            options.target,
            config.offline,
          )
          const usable = cached && (options.skipSignature || cached.signedBy !== "unverified")
          // Releases never change: a cached resolution is final. Snapshots move, so online they are re-read.
          let archive: BuilderArchive
          if (usable && (config.offline || !isSnapshot(options.release))) archive = cached
          else if (config.offline) {
            return yield* new OfflineError({
              detail: `the Image Builder of ${options.release} ${options.target}`,
            })
          } else {
            archive = yield* resolveBuilderArchive({
              upstream: config.upstream,
              release: options.release,
              target: options.target,
              keyring: config.keyring,
              skipSignature: options.skipSignature === true,
            })
            yield* saveResolution(archive)
          }
          const key = yield* nodeKey("fetch-builder", fetchBuilderSchema, {
            release: archive.release,
            target: archive.target,
            archiveSha256: archive.sha256,
          })
          return { archive, key }
        }),
      )

    /** The stored builder for `key`, if its row and its tree are both there. */
    const present = (key: string) =>
      Effect.gen(function* () {
        const row = yield* findBuilder(key)
        if (!row) return undefined
        if (existsSync(join(config.store, row.path))) return row
        yield* deleteBuilder(key)
        return undefined
      })

    const download = (archive: BuilderArchive, key: string) =>
      Effect.gen(function* () {
        const task = `fetch ${archive.name}`
        let attempts = 0
        const attempt = Effect.gen(function* () {
          attempts += 1
          const work = yield* makeWorkDirectory(config.store, `builder-${key}`)
          const result = yield* downloadAndExtract({
            url: archive.url,
            destination: work,
            expectedSha256: archive.sha256,
            stallSeconds: config.timeouts.stall,
            attempt: attempts,
            onBytes: (bytes, total) => progress.report({ kind: "bytes", task, bytes, total }),
          })
          const dirName = `${key}-${archive.name.replace(/\.tar\.(?:zst|xz)$/, "")}`
          const target = join(config.store, dirName)
          yield* Effect.try({
            try: () => {
              // A tree without a database row is a leftover of a process killed after publishing: redo it.
              rmSync(target, { recursive: true, force: true })
              renameSync(join(work, result.topLevel), target)
            },
            catch: (cause) => new InternalError({ cause }),
          })
          const now = new Date().toISOString()
          const row: BuilderRow = {
            key,
            path: dirName,
            release: archive.release,
            target: archive.target,
            upstream: archive.upstream,
            archive_name: archive.name,
            archive_sha256: archive.sha256,
            signed_by: archive.signedBy,
            files: result.files,
            bytes: result.bytes,
            created_at: now,
            last_used_at: now,
          }
          yield* insertBuilder(row)
          progress.report({ kind: "done", task })
          return row
        }).pipe(Effect.scoped)
        return yield* attempt.pipe(
          Effect.retry({
            schedule: retrySchedule(4),
            while: (error) => error instanceof TransientDownloadError,
          }),
          Effect.catchIf(
            (error): error is TransientDownloadError => error instanceof TransientDownloadError,
            (error) => Effect.fail(new DownloadError({ url: archive.url, detail: error.detail, attempts })),
          ),
        )
      })

    const ensure = (options: EnsureOptions) =>
      Effect.gen(function* () {
        const { archive, key } = yield* resolve(options)
        const existing = yield* provide(present(key))
        if (existing) {
          yield* provide(touchBuilder(key))
          return { ...toBuilder(config.store, existing), cached: true }
        }
        if (config.offline) return yield* new OfflineError({ detail: `the Image Builder ${archive.name}` })
        const row = yield* provide(
          Effect.gen(function* () {
            yield* acquireStoreLock(builderHold(key), config.timeouts.lock)
            // Whoever held the lock may have just stored it.
            const stored = yield* present(key)
            if (stored) return { row: stored, cached: true }
            return { row: yield* download(archive, key), cached: false }
          }).pipe(Effect.scoped),
        )
        return { ...toBuilder(config.store, row.row), cached: row.cached }
      })

    const use = (options: EnsureOptions) =>
      Effect.gen(function* () {
        const { key } = yield* resolve(options)
        yield* provide(useStorePath(builderHold(key)))
        return yield* ensure(options)
      })

    const list = () =>
      provide(
        Effect.gen(function* () {
          const rows = yield* listBuilders()
          const result: Array<Builder & { references: number }> = []
          for (const row of rows)
            result.push({ ...toBuilder(config.store, row), references: yield* builderReferences(row.key) })
          return result
        }),
      )

    const prune = (options: {
      readonly olderThanDays?: number | undefined
      readonly dryRun?: boolean | undefined
    }) =>
      provide(
        Effect.gen(function* () {
          const sql = yield* Sql.SqlClient
          const cutoff =
            options.olderThanDays === undefined ? undefined : Date.now() - options.olderThanDays * 86_400_000
          const old = (row: BuilderRow) => cutoff === undefined || Date.parse(row.last_used_at) <= cutoff
          const removed: Array<Builder> = []
          const skipped: Array<{ builder: Builder; reason: string }> = []
          for (const row of yield* listBuilders()) {
            if (!old(row)) continue
            const builder = toBuilder(config.store, row)
            const users = yield* liveUsers(builderHold(row.key))
            if (users.length > 0) {
              skipped.push({ builder, reason: `in use by ${users.join(", ")}` })
              continue
            }
            if (options.dryRun) {
              removed.push(builder)
              continue
            }
            const outcome = yield* Effect.gen(function* () {
              // A download or another prune of the same builder holds its lock: not now.
              yield* acquireStoreLock(builderHold(row.key), 0)
              const now = yield* findBuilder(row.key)
              if (!now || !old(now)) return "gone"
              // One statement, so that it is atomic with the uses: a process that took its use before this
              // either is seen here or finds no builder (and fetches it again under the lock held here).
              const deleted = yield* sql<{ key: string }>`DELETE FROM builders WHERE key = ${row.key}
                AND NOT EXISTS (SELECT 1 FROM store_uses WHERE name = ${builderHold(row.key)})
                RETURNING key`.pipe(Effect.mapError(databaseFailure("delete builder")))
              if (deleted.length === 0)
                return `in use by ${(yield* liveUsers(builderHold(row.key))).join(", ")}`
              yield* Effect.try({
                try: () => rmSync(join(config.store, row.path), { recursive: true, force: true }),
                catch: (cause) => new InternalError({ cause }),
              })
              return "removed"
            }).pipe(
              Effect.scoped,
              Effect.catchTag("LockTimeoutError", (error) => Effect.succeed(`locked by ${error.holder}`)),
            )
            if (outcome === "removed") removed.push(builder)
            else if (outcome !== "gone") skipped.push({ builder, reason: outcome })
          }
          return { removed, skipped }
        }),
      )

    const find = (key: string) =>
      provide(present(key)).pipe(Effect.map((row) => (row ? join(config.store, row.path) : undefined)))

    return { resolve, ensure, use, find, list, prune }
  }),
)
