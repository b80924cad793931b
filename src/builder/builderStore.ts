import { existsSync } from "node:fs"
import { basename, dirname, join } from "node:path"
import { Context, Effect, Option } from "effect"
import { AppConfig } from "../config/appConfig.js"
import { BuilderRecords, type BuilderRow } from "../db/builderRecords.js"
import type { DatabaseFailure } from "../db/database.js"
import { type Database, databaseContext } from "../db/records.js"
import { StorePathRecords } from "../db/storePathRecords.js"
import {
  type DownloadError,
  InternalError,
  type NotPublishedError,
  OfflineError,
  type SignatureError,
  UsageError,
} from "../errors.js"
import { removeTree } from "../store/readOnly.js"
import { acquireStoreLock, liveUsers } from "../store/storeLock.js"
import { treeDigest } from "../store/treeDigest.js"
import { noSignedIndexCacheService, SignedIndexCache } from "./signedIndexCache.js"
import { archiveFromSignedSums, type BuilderArchive, isSnapshot, resolveBuilderArchive } from "./upstream.js"

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

export type ResolveBuilderError =
  | NotPublishedError
  | OfflineError
  | DownloadError
  | SignatureError
  | UsageError
  | DatabaseFailure

export interface EnsureOptions {
  readonly release: string
  /** `<target>/<subtarget>` */
  readonly target: string
  /** Unsafe: accept a sha256sums whose signature is missing, unknown or wrong. */
  readonly skipSignature?: boolean
}

/*
 * The Image Builders of the store. A builder is an ordinary store node (fetch-builder, published like every
 * other: graph/kinds/fetchBuilderNode.ts); what this service adds is resolving a release/target to its
 * signed archive, and the `builders` rows (archive, signer, last use) that `builders list` and `prune` read.
 */
export class BuilderStore extends Context.Tag("owrt/BuilderStore")<
  BuilderStore,
  {
    /** The archive a release/target resolves to (cached resolution, or upstream's signed sha256sums). */
    readonly resolve: (options: EnsureOptions) => Effect.Effect<BuilderArchive, ResolveBuilderError>
    /**
     * The archives a release/target was resolved to before (cached resolutions, the configured upstream's
     * first): what a stored build used. Asks no upstream, so looking up what is stored works offline.
     */
    readonly resolved: (
      release: string,
      target: string,
    ) => Effect.Effect<ReadonlyArray<BuilderArchive>, DatabaseFailure>
    /** The stored builder with this key, if its row and its tree are both there. */
    readonly find: (key: string) => Effect.Effect<Builder | undefined, DatabaseFailure>
    readonly list: () => Effect.Effect<
      ReadonlyArray<Builder & { readonly references: number }>,
      DatabaseFailure
    >
    /**
     * Removes builders no running process uses (with `olderThanDays`, only those unused that long). Those
     * in use or locked are skipped, and listed with the reason. A removed builder is fetched again when a
     * realize needs it.
     */
    readonly prune: (options: {
      readonly olderThanDays?: number | undefined
      readonly dryRun?: boolean | undefined
    }) => Effect.Effect<PruneReport, DatabaseFailure | InternalError>
  }
>() {}

export interface PruneReport {
  readonly removed: ReadonlyArray<Builder>
  readonly skipped: ReadonlyArray<{ readonly builder: Builder; readonly reason: string }>
}

export const toBuilder = (store: string, row: BuilderRow): Builder => ({
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

/** What `BuilderStore` is made of: the core (app/appLayer.ts) makes it in its scope. */
export const makeBuilderStore = Effect.gen(function* () {
  const config = yield* AppConfig
  const database = yield* databaseContext
  const indexCache = Option.getOrElse(
    yield* Effect.serviceOption(SignedIndexCache),
    () => noSignedIndexCacheService,
  )
  const provide = <A, E>(effect: Effect.Effect<A, E, Database>) => effect.pipe(Effect.provide(database))

  // A store from before builders were ordinary store nodes has `builders` rows without `store_paths` rows:
  // adopt those trees (one query when there are none).
  yield* provide(adoptLegacyBuilders(config.store))

  const resolve = (options: EnsureOptions) =>
    provide(
      Effect.gen(function* () {
        if (!targetPattern.test(options.target)) {
          return yield* new UsageError({
            detail: `\`${options.target}\` is not <target>/<subtarget> (e.g. ath79/generic)`,
          })
        }
        const cached = yield* BuilderRecords.findResolution(
          config.upstream,
          options.release,
          options.target,
          config.offline,
        )
        const usable = cached && (options.skipSignature || cached.signedBy !== "unverified")
        // Releases never change: a cached resolution is final. Snapshots move, so online they are re-read.
        if (usable && (config.offline || !isSnapshot(options.release))) return cached
        if (config.offline) {
          return yield* new OfflineError({
            detail: `the Image Builder of ${options.release} ${options.target}`,
          })
        }
        const skipSignature = options.skipSignature === true
        // A release's signed index from the shared cache, checked against the keyring like the download
        // server's copy: a runner with a warm cache never asks the download server. A copy that fails the
        // check is ignored (the download server decides).
        const fromCache =
          skipSignature || isSnapshot(options.release)
            ? undefined
            : yield* indexCache.get(options.release, options.target).pipe(
                Effect.flatMap((signed) =>
                  signed === undefined
                    ? Effect.succeed(undefined)
                    : archiveFromSignedSums({
                        upstream: config.upstream,
                        release: options.release,
                        target: options.target,
                        keyring: config.keyring,
                        sums: signed.sums,
                        sig: signed.sig,
                        skipSignature: false,
                      }).pipe(Effect.option, Effect.map(Option.getOrUndefined)),
                ),
              )
        if (fromCache) {
          yield* BuilderRecords.saveResolution(fromCache)
          return fromCache
        }
        const { archive, signed } = yield* resolveBuilderArchive({
          upstream: config.upstream,
          release: options.release,
          target: options.target,
          keyring: config.keyring,
          skipSignature,
        })
        yield* BuilderRecords.saveResolution(archive)
        if (signed !== undefined && !isSnapshot(options.release))
          yield* indexCache.put(options.release, options.target, signed)
        return archive
      }),
    )

  /** The stored builder for `key`: its builders row, and a valid store path that is there. */
  const present = (key: string) =>
    Effect.gen(function* () {
      const row = yield* BuilderRecords.find(key)
      if (!row) return undefined
      const path = yield* StorePathRecords.find(key)
      return path?.valid === 1 && existsSync(join(config.store, row.path)) ? row : undefined
    })

  const list = () =>
    provide(
      Effect.gen(function* () {
        const rows = yield* BuilderRecords.list()
        const result: Array<Builder & { references: number }> = []
        for (const row of rows) {
          if (!(yield* present(row.key))) continue
          result.push({
            ...toBuilder(config.store, row),
            references: yield* BuilderRecords.references(row.key),
          })
        }
        return result
      }),
    )

  const prune = (options: {
    readonly olderThanDays?: number | undefined
    readonly dryRun?: boolean | undefined
  }) =>
    provide(
      Effect.gen(function* () {
        const cutoff =
          options.olderThanDays === undefined ? undefined : Date.now() - options.olderThanDays * 86_400_000
        const old = (row: BuilderRow) => cutoff === undefined || Date.parse(row.last_used_at) <= cutoff
        const removed: Array<Builder> = []
        const skipped: Array<{ builder: Builder; reason: string }> = []
        for (const row of yield* BuilderRecords.list()) {
          if (!old(row)) continue
          const builder = toBuilder(config.store, row)
          const hold = `node:${row.key}`
          const users = yield* liveUsers(hold)
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
            yield* acquireStoreLock(hold, 0)
            const now = yield* BuilderRecords.find(row.key)
            if (!now || !old(now)) return "gone"
            // One statement, atomic with the uses: a process that took its use before this either is seen
            // here, or finds no valid store path (and fetches the builder again under the lock held here).
            const deleted = yield* StorePathRecords.removeUnlessUsed(row.key, hold)
            if (!deleted) return `in use by ${(yield* liveUsers(hold)).join(", ")}`
            yield* BuilderRecords.remove(row.key)
            yield* Effect.try({
              try: () => removeTree(join(config.store, row.path)),
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
        return { removed, skipped } satisfies PruneReport
      }),
    )

  const find = (key: string) =>
    provide(present(key)).pipe(Effect.map((row) => (row ? toBuilder(config.store, row) : undefined)))

  const resolved = (release: string, target: string) =>
    provide(BuilderRecords.resolutions(config.upstream, release, target))

  return { resolve, resolved, find, list, prune }
})

/** Records a stored builder's archive and signer (idempotent), and marks it used now. */
export const recordBuilder = (options: {
  readonly archive: BuilderArchive
  readonly key: string
  readonly storePath: string
}): Effect.Effect<Builder, DatabaseFailure, Database> =>
  Effect.gen(function* () {
    const store = dirname(options.storePath)
    const existing = yield* BuilderRecords.find(options.key)
    if (existing) {
      yield* BuilderRecords.touch(options.key)
      return toBuilder(store, { ...existing, last_used_at: new Date().toISOString() })
    }
    const stored = yield* StorePathRecords.find(options.key)
    const now = new Date().toISOString()
    const row: BuilderRow = {
      key: options.key,
      path: basename(options.storePath),
      release: options.archive.release,
      target: options.archive.target,
      upstream: options.archive.upstream,
      archive_name: options.archive.name,
      archive_sha256: options.archive.sha256,
      signed_by: options.archive.signedBy,
      files: stored?.files ?? 0,
      bytes: stored?.bytes ?? 0,
      created_at: stored?.created_at ?? now,
      last_used_at: now,
    }
    yield* BuilderRecords.insert(row)
    return toBuilder(store, row)
  })

/** Store paths for builders that a store from before fetch-builder was an ordinary node recorded only in `builders`. */
const adoptLegacyBuilders = (store: string) =>
  Effect.gen(function* () {
    const orphans = yield* BuilderRecords.withoutStorePath()
    for (const row of orphans) {
      const path = join(store, row.path)
      if (!existsSync(path)) {
        yield* BuilderRecords.remove(row.key)
        continue
      }
      const digest = yield* treeDigest(path, { listingOnly: true }).pipe(Effect.orDie)
      yield* StorePathRecords.insert({
        key: row.key,
        kind: "fetch-builder",
        name: row.path.slice(row.key.length + 1),
        digest: digest.digest,
        listing: digest.entries,
        files: digest.files,
        bytes: digest.bytes,
        keyInputs: { release: row.release, target: row.target, archiveSha256: row.archive_sha256 },
      })
    }
  })
