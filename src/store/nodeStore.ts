import { chmodSync, existsSync, mkdirSync, renameSync } from "node:fs"
import { join } from "node:path"
import { Effect, type Scope } from "effect"
import type { DatabaseFailure } from "../db/database.js"
import type { Database } from "../db/records.js"
import { StorePathRecords, type ValidStorePath } from "../db/storePathRecords.js"
import { InternalError, type LockTimeoutError } from "../errors.js"
import type { Canonical } from "../text/canonicalJson.js"
import { ensureReadOnly, makeListedReadOnly, makeWritable, publishedRootMode } from "./readOnly.js"
import { acquireStoreLock } from "./storeLock.js"
import { type FileContent, type TreeDigest, treeDigest } from "./treeDigest.js"
import { makeWorkDirectory } from "./workDirectory.js"

/** A node's output in the store. */
export interface StoredNode {
  readonly key: string
  readonly kind: string
  readonly path: string
  readonly cacheHit: boolean
  /** The shared cache (`oci://host/repo`) it was substituted from by this request; absent when not. */
  readonly substituted?: string | undefined
}

/** Whether a store path holds secret values (readable by its owner only). */
export { isPrivateStorePath } from "./readOnly.js"

export const storePathName = (key: string, name: string): string => `${key}-${name}`

/** The stored output of `key` if it is valid: a database row marked valid and its directory present. */
export const lookupNode = (
  store: string,
  key: string,
): Effect.Effect<ValidStorePath | undefined, DatabaseFailure, Database> =>
  Effect.map(StorePathRecords.findValid(key), (row) =>
    row && existsSync(join(store, storePathName(key, row.name))) ? row : undefined,
  )

export type NodeStoreError = DatabaseFailure | InternalError | LockTimeoutError

/**
 * What a build may hand back: a check of its output's digest, made on the digest the store takes anyway,
 * before anything is published (a substitute's tree must have its signed digest). One walk of the tree,
 * not two.
 */
export interface OutputCheck<E> {
  /** Fails unless the output's plain digest is the expected one. */
  readonly check: (digest: TreeDigest) => Effect.Effect<void, E>
  /**
   * The content digest of each file, by path, taken from the very bytes the build wrote as it wrote them
   * (a substitute hashes its files as they arrive): the store's digest uses them instead of reading
   * those files back. A file whose size differs is read as any other.
   */
  readonly contents?: ReadonlyMap<string, FileContent> | undefined
}

/**
 * Builds a node's output once, even across processes: under the key's store lock, `build` writes into a
 * private directory; its tree is digested, made read-only (readOnly.ts), renamed into the store and made
 * valid by a database row — in that order, so a crash leaves either nothing or garbage that `store gc`
 * removes. With `rebuild` a valid output is built again and replaced.
 */
export const realizeNode = <E, R>(options: {
  readonly store: string
  readonly kind: string
  readonly key: string
  readonly name: string
  readonly lockTimeoutSeconds: number
  readonly rebuild?: boolean
  /** Digest file contents under this key (outputs that hold secret values). */
  readonly digestKey?: Uint8Array | undefined
  /**
   * The output holds secret values (a staged overlay that used secrets, and every node built from it): it
   * is readable by its owner only. A stored output of an older store is made so when it is used.
   */
  readonly private?: boolean | undefined
  /**
   * Digest every file's content (the default), or only the listing (paths, modes, sizes) for fixed-output
   * nodes whose content was verified as it arrived.
   */
  readonly contentDigest?: boolean | undefined
  /** What the key hashes, kept with the row so a later plan can say what changed. */
  readonly keyInputs?: Canonical | undefined
  // biome-ignore lint/suspicious/noConfusingVoidType: a build returns nothing; a substitute may return its check
  readonly build: (output: string, work: string) => Effect.Effect<void | OutputCheck<E>, E, R>
}): Effect.Effect<StoredNode, E | NodeStoreError, Exclude<R, Scope.Scope> | Database> =>
  Effect.gen(function* () {
    const { store, kind, key, name } = options
    const path = join(store, storePathName(key, name))
    const hit = (row: ValidStorePath) => storedNode({ store, kind, key, private: options.private }, row)
    if (!options.rebuild) {
      const found = yield* lookupNode(store, key)
      if (found) return yield* hit(found)
    }
    return yield* Effect.scoped(
      Effect.gen(function* () {
        yield* acquireStoreLock(`node:${key}`, options.lockTimeoutSeconds)
        if (!options.rebuild) {
          const found = yield* lookupNode(store, key)
          if (found) return yield* hit(found)
        }
        const work = yield* makeWorkDirectory(store, `${kind}-${key}`)
        const output = join(work, "out")
        yield* Effect.try({ try: () => mkdirSync(output), catch: (cause) => new InternalError({ cause }) })
        const built = yield* options.build(output, work)
        const digest = yield* treeDigest(output, {
          key: options.digestKey,
          listingOnly: options.contentDigest === false,
          known: built?.contents,
        })
        // A check compares plain digests: one taken under the store's sealing key is this store's own.
        if (built)
          yield* built.check(
            options.digestKey === undefined
              ? digest
              : yield* treeDigest(output, {
                  listingOnly: options.contentDigest === false,
                  known: built.contents,
                }),
          )
        const ownerOnly = options.private === true
        yield* makeListedReadOnly(output, digest.entries, ownerOnly)
        yield* Effect.try({
          try: () => {
            // Whatever stands at the path has no valid row (or is being replaced): move it aside first.
            if (existsSync(path)) {
              makeWritable(path)
              renameSync(path, join(work, "replaced"))
            }
            // Renaming a directory needs it writable (its `..` changes): read-only once in place.
            renameSync(output, path)
            chmodSync(path, publishedRootMode(ownerOnly))
          },
          catch: (cause) => new InternalError({ cause }),
        })
        yield* StorePathRecords.insert({
          key,
          kind,
          name,
          digest: digest.digest,
          listing: digest.entries,
          files: digest.files,
          bytes: digest.bytes,
          keyInputs: options.keyInputs,
        })
        return { key, kind, path, cacheHit: false }
      }),
    )
  })

/** A valid stored output as a cache hit (made read-only first if an older owrt stored it writable). */
export const storedNode = (
  node: {
    readonly store: string
    readonly kind: string
    readonly key: string
    readonly private?: boolean | undefined
  },
  row: { readonly name: string },
): Effect.Effect<StoredNode, InternalError> => {
  const path = join(node.store, storePathName(node.key, row.name))
  return Effect.as(ensureReadOnly(path, node.private === true), {
    key: node.key,
    kind: node.kind,
    path,
    cacheHit: true,
  })
}
