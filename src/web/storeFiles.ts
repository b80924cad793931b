import { realpathSync, statSync } from "node:fs"
import { dirname, extname, join, sep } from "node:path"
import { Effect } from "effect"
import { AppConfig } from "../config/appConfig.js"
import type { DatabaseFailure } from "../db/database.js"
import type { Database } from "../db/records.js"
import { StorePathRecords } from "../db/storePathRecords.js"
import { NotFoundError, StoreDriftError } from "../errors.js"
import { storedArtifacts } from "../operations/storedArtifacts.js"
import { isPrivateStorePath, storePathName } from "../store/nodeStore.js"
import { parseListing } from "../store/treeDigest.js"
import { PathOutsideStoreError, StorePathPrivateError } from "./httpErrors.js"

/** A store file a client may download, with what its digest and size were when it was stored. */
export interface ServedFile {
  readonly path: string
  readonly name: string
  readonly size: number
  readonly sha256: string
  readonly contentType: string
}

type StoreFileError =
  | NotFoundError
  | PathOutsideStoreError
  | StorePathPrivateError
  | StoreDriftError
  | DatabaseFailure

/*
 * Only build outputs are served: make-image (images and the build log, secrets already redacted) and
 * collect-artifacts. Staged overlays may hold secret values in the clear, and builders are not ours.
 *
 * Outputs of a profile that uses secrets hold them inside the image (a Wi-Fi key, a WireGuard private key):
 * their store paths are readable by the owner only (see realizeNode's `private`), and they are served only
 * by a server that requires a token — never to anyone who can reach an unauthenticated loopback port (any
 * local user, a browser page through DNS rebinding is already refused).
 */

/** Who may be served a store path that holds secret values: only clients of a server that checks a token. */
export interface ServeAccess {
  readonly tokenRequired: boolean
}
const servedKinds = new Set(["make-image", "collect-artifacts"])

const nodeKeyPattern = /^[0-9a-f]{16}$/

const contentTypes: Readonly<Record<string, string>> = {
  ".json": "application/json",
  ".log": "text/plain; charset=utf-8",
  ".manifest": "text/plain; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
}

/** One decoded URL path segment, refused when it could step out of the directory it is looked up in. */
const safeSegment = (segment: string, shown: string) =>
  segment === "" || segment === "." || segment === ".." || /[/\\\0]/.test(segment)
    ? Effect.fail(new PathOutsideStoreError({ path: shown }))
    : Effect.succeed(segment)

/**
 * The file a link names, after resolving every symlink on the way: it must still lie inside the store
 * path it was looked up in, and be the size recorded when it was stored (else the store drifted).
 */
const checkedFile = (root: string, file: string, expectedSize: number, shown: string, access: ServeAccess) =>
  Effect.gen(function* () {
    const resolved = yield* Effect.try({
      try: () => ({ root: realpathSync(root), file: realpathSync(file) }),
      catch: () => new NotFoundError({ what: shown, detail: "no such file in the store" }),
    })
    if (!access.tokenRequired && isPrivateStorePath(resolved.root)) {
      return yield* new StorePathPrivateError({ path: shown })
    }
    if (!resolved.file.startsWith(resolved.root + sep))
      return yield* new PathOutsideStoreError({ path: shown })
    const stat = statSync(resolved.file)
    if (!stat.isFile()) return yield* new NotFoundError({ what: shown, detail: "not a file" })
    if (stat.size !== expectedSize) {
      return yield* new StoreDriftError({ paths: [{ path: root, files: [file.slice(root.length + 1)] }] })
    }
    return resolved.file
  })

const served = (path: string, name: string, size: number, sha256: string): ServedFile => ({
  path,
  name,
  size,
  sha256,
  contentType: contentTypes[extname(name)] ?? "application/octet-stream",
})

/** An image of a valid artifact set, by its collect-artifacts key and file name. */
export const artifactFile = (
  key: string,
  name: string,
  access: ServeAccess,
): Effect.Effect<ServedFile, StoreFileError, AppConfig | Database> =>
  Effect.gen(function* () {
    const shown = `${key}/${name}`
    yield* safeSegment(name, shown)
    const missing = new NotFoundError({
      what: `artifact ${shown}`,
      detail: "no such image in a valid artifact set",
    })
    if (!nodeKeyPattern.test(key)) return yield* missing
    const config = yield* AppConfig
    const artifact = (yield* storedArtifacts(config.store, { key, limit: 1000 })).find((a) => a.name === name)
    if (!artifact) return yield* missing
    const path = yield* checkedFile(
      dirname(dirname(artifact.path)),
      artifact.path,
      artifact.size,
      shown,
      access,
    )
    return served(path, name, artifact.size, artifact.sha256)
  })

/** Any file of a served store path, by `<key>-<name>/<path inside>` as `owrt store ls` shows them. */
export const storeFile = (
  segments: ReadonlyArray<string>,
  access: ServeAccess,
): Effect.Effect<ServedFile, StoreFileError, AppConfig | Database> =>
  Effect.gen(function* () {
    const shown = segments.join("/")
    for (const segment of segments) yield* safeSegment(segment, shown)
    const [top = "", ...inside] = segments
    const missing = new NotFoundError({ what: shown, detail: "not a file of a served store path" })
    const key = top.slice(0, 16)
    if (!nodeKeyPattern.test(key) || top[16] !== "-" || inside.length === 0) return yield* missing
    const row = yield* StorePathRecords.find(key)
    if (row?.valid !== 1 || storePathName(key, row.name) !== top || !servedKinds.has(row.kind)) {
      return yield* missing
    }
    const relative = inside.join("/")
    const listed = parseListing(row.listing).find((entry) => entry.path === relative && entry.kind === "file")
    if (!listed?.sha256) return yield* missing
    const config = yield* AppConfig
    const root = join(config.store, top)
    const path = yield* checkedFile(root, join(root, ...inside), listed.size, shown, access)
    return served(path, inside[inside.length - 1] ?? top, listed.size, listed.sha256)
  })
