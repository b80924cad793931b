import { readFileSync } from "node:fs"
import { basename, relative, resolve as resolvePath } from "node:path"
import { SqlClient, SqlSchema } from "@effect/sql"
import { Context, Effect, Either, Schema } from "effect"
import { AppConfig } from "../config/appConfig.js"
import type { DatabaseFailure } from "../db/database.js"
import { lazyQuery } from "../db/lazyQuery.js"
import { type RevisionRecord, RevisionRecords } from "../db/revisionRecords.js"
import {
  type GitError,
  InternalError,
  ProfileInvalidError,
  ProfileNotFoundError,
  RevisionAmbiguousError,
  RevisionNotFoundError,
  UsageError,
} from "../errors.js"
import { blobPath, hasBlob, putBlob } from "../store/blobStore.js"
import { closestMatch, elideName } from "../text/closestMatch.js"
import { sha256Hex } from "../text/digest.js"
import { ProfileDocument, profileLimits } from "./profileSchema.js"
import {
  gitProfileTree,
  type ProfileTree,
  resolveCommit,
  withOutsideProfileFile,
  worktreeProfileTree,
} from "./profileTree.js"
import {
  type DocumentCache,
  makeProfileResolver,
  type ProfileMissing,
  type ProfileResolver,
  type ProfileRevision,
  ResolvedProfile,
} from "./resolveProfile.js"

/**
 * A resolved profile revision, and its database record (sequence number, first seen) when it has one.
 * Looking at a profile records nothing: only what realizes, audits or flashes a revision records it.
 */
export interface ProfileView {
  readonly revision: ProfileRevision
  readonly record: RevisionRecord | undefined
}

/** A resolved profile revision and its database record: one that is realized, audited or flashed. */
export interface ProfileEntry extends ProfileView {
  readonly record: RevisionRecord
}

/** How a revision is named in words: `home-ap@3`, or `home-ap` while it has no number. */
export const revisionLabel = ({ revision, record }: ProfileView): string =>
  record === undefined ? revision.profile.id : `${revision.profile.id}@${record.seq}`

/** A working-tree profile that does not resolve, with its located error. */
export interface BrokenProfile {
  readonly profile: string
  readonly error: ProfileInvalidError
}

/** Every working-tree profile: those that resolve (recording nothing) and those that do not. */
export interface ProfileListing {
  readonly entries: ReadonlyArray<ProfileView>
  readonly broken: ReadonlyArray<BrokenProfile>
}

export type ProfileLookupError =
  | ProfileInvalidError
  | ProfileNotFoundError
  | RevisionNotFoundError
  | RevisionAmbiguousError
  | UsageError
  | GitError
  | InternalError
  | DatabaseFailure

/** `id` or `id@rev`. */
export const parseProfileSpec = (
  spec: string,
): Effect.Effect<{ id: string; rev: string | undefined }, UsageError> => {
  const at = spec.indexOf("@")
  if (at === -1) return Effect.succeed({ id: spec, rev: undefined })
  const id = spec.slice(0, at)
  const rev = spec.slice(at + 1)
  if (id === "" || rev === "") {
    return Effect.fail(
      new UsageError({
        detail: `\`${elideName(spec)}\` is not a profile reference: write <id> or <id>@<rev> (e.g. home-ap@3)`,
      }),
    )
  }
  return Effect.succeed({ id, rev })
}

export class ProfileRepository extends Context.Tag("owrt/ProfileRepository")<
  ProfileRepository,
  {
    /** Ids of the profiles in the working tree. */
    readonly ids: () => Effect.Effect<ReadonlyArray<string>, GitError>
    /** Resolves `id` or `id@rev` and records the revision it sees: for what realizes, audits or flashes it. */
    readonly resolve: (spec: string) => Effect.Effect<ProfileEntry, ProfileLookupError>
    /** Resolves `id` or `id@rev` without recording it: for what only looks (show, plan, store path). */
    readonly inspect: (spec: string) => Effect.Effect<ProfileView, ProfileLookupError>
    /** Records a resolved revision (if new) and keeps its overlay files, so it can be rebuilt later. */
    readonly record: (view: ProfileView) => Effect.Effect<ProfileEntry, ProfileLookupError>
    /**
     * Resolves every working-tree profile, recording nothing. A profile that does not resolve is listed in
     * `broken` with its error and hides no other; one removed meanwhile is left out.
     */
    readonly all: () => Effect.Effect<ProfileListing, ProfileLookupError>
    /** The recorded revisions of a profile, oldest first (empty for a profile nothing recorded yet). */
    readonly history: (id: string) => Effect.Effect<ReadonlyArray<RevisionRecord>, ProfileLookupError>
    /**
     * A resolver over the working tree, for callers that check without recording (validate). Each call
     * reads the profiles directory as it is then.
     */
    readonly worktree: ProfileResolver
    /**
     * Resolves a profile file from anywhere (its id is its file name), parents and overlays from the
     * working-tree profiles directory, without recording a revision: checking a file before it is added.
     */
    readonly resolveFile: (
      path: string,
    ) => Effect.Effect<ProfileRevision, ProfileInvalidError | GitError | ProfileMissing>
    /**
     * Concrete working-tree profiles (of `ids`, or all) whose resolved revision differs from the one at
     * git ref `ref`, or that did not exist there: a change in a parent or an overlay file counts. A
     * profile that does not resolve now is listed too (what it would build is unknown).
     */
    readonly changedSince: (
      ref: string,
      ids?: ReadonlyArray<string>,
    ) => Effect.Effect<ReadonlyArray<string>, ProfileLookupError>
    /**
     * Resolves a profile document given as text (no parents, no overlay directory) and records its
     * revision, with `source` naming where it came from (e.g. `asu`): a build request compiled to a profile.
     * The same text under the same id as a working-tree profile is the same revision, with the same keys.
     */
    readonly resolveText: (
      id: string,
      text: string,
      source: string,
    ) => Effect.Effect<ProfileEntry, ProfileLookupError>
    /**
     * Records a revision given as data — its hash, its resolved profile's canonical JSON and its source — as
     * another machine resolved it (a build farm's job). The JSON must decode and hash to `hash`; overlay
     * files come from this store's blobs.
     */
    readonly fromCanonical: (revision: {
      readonly hash: string
      readonly canonical: string
      readonly source: string
    }) => Effect.Effect<ProfileEntry, ProfileLookupError>
  }
>() {}

/** A profile document cached by digest (kept as the decoded value's JSON). */
const decodeCachedDocument = Schema.decodeUnknownEither(Schema.parseJson(Schema.typeSchema(ProfileDocument)))
const decodeStoredProfile = Schema.decodeUnknownSync(Schema.parseJson(ResolvedProfile))

/** What `ProfileRepository` is made of: the core (app/appLayer.ts) makes it in its scope. */
export const makeProfileRepository = Effect.gen(function* () {
  const config = yield* AppConfig
  const records = yield* RevisionRecords
  const displayDir = relative(process.cwd(), config.profiles) || "."
  const sql = yield* SqlClient.SqlClient
  // Read all at first use (one query), written (and kept) as new documents are decoded. Keyed by the
  // digest of a file's text, so it stays right however often files change under a long-running process.
  // A row is decoded when its digest is first asked for: the table keeps every version of every file.
  let cachedDocuments: Map<string, ProfileDocument | string> | undefined
  const documentRows = lazyQuery(() =>
    SqlSchema.findAll({
      Request: Schema.Void,
      Result: Schema.Struct({ digest: Schema.String, document: Schema.String }),
      execute: () => sql`SELECT digest, document FROM profile_documents`,
    }),
  )
  const documentCache: DocumentCache = {
    get: (digest) =>
      Effect.gen(function* () {
        if (!cachedDocuments) {
          const rows = yield* documentRows(undefined).pipe(Effect.orElseSucceed(() => []))
          cachedDocuments = new Map(rows.map((row) => [row.digest, row.document]))
        }
        const cached = cachedDocuments.get(digest)
        if (typeof cached !== "string") return cached
        // A cache: a row that does not decode (written by another version) is a miss, not an error.
        const document = decodeCachedDocument(cached)
        if (Either.isLeft(document)) {
          cachedDocuments.delete(digest)
          return undefined
        }
        cachedDocuments.set(digest, document.right)
        return document.right
      }),
    put: (digest, document) =>
      Effect.zipRight(
        Effect.sync(() => cachedDocuments?.set(digest, document)),
        sql`INSERT OR IGNORE INTO profile_documents (digest, document) VALUES (${digest}, ${JSON.stringify(document)})`.pipe(
          Effect.ignore,
        ),
      ),
  }
  /*
   * A resolver reads the file list and each document once, and keeps them: one is made per request, so
   * that a long-running process (`owrt serve`, `owrt mcp`) sees edited, added and removed profiles on the
   * next one. Within a request, profiles that share parents still read and parse them once; across
   * requests, the digest-keyed document cache spares the YAML parsing of unchanged files.
   */
  const freshWorktree = () =>
    makeProfileResolver(worktreeProfileTree(config.profiles), displayDir, documentCache)
  const worktree: ProfileResolver = {
    ids: () => freshWorktree().ids(),
    resolve: (id) => freshWorktree().resolve(id),
  }
  const resolveFile = (path: string) => {
    const absolute = resolvePath(path)
    const tree = withOutsideProfileFile(worktreeProfileTree(config.profiles), absolute, path)
    return makeProfileResolver(tree, displayDir, documentCache).resolve(
      basename(absolute).replace(/\.ya?ml$/, ""),
    )
  }

  // A name from outside (argument, MCP, HTTP) can be megabytes long: it is echoed shortened, and matched
  // against known ids only within closestMatch's bounds.
  const notFound = (id: string) =>
    Effect.flatMap(worktree.ids(), (known) =>
      Effect.fail(
        new ProfileNotFoundError({ profile: elideName(id), known, suggestion: closestMatch(id, known) }),
      ),
    )

  /** No profile id is this long: answered as not found before any file, database or git lookup. */
  const tooLong = (id: string) => id.length > profileLimits.idLength

  const resolveWith = (resolver: ProfileResolver, id: string) =>
    tooLong(id)
      ? notFound(id)
      : resolver.resolve(id).pipe(
          Effect.catchIf(
            (e): e is Extract<typeof e, { _tag: "ProfileMissing" }> => e._tag === "ProfileMissing",
            () => notFound(id),
          ),
        )

  /** Records a revision; a new one also keeps its overlay files, so it can be rebuilt later. */
  const record = ({ revision, record: seen }: ProfileView) =>
    Effect.gen(function* () {
      if (seen) return { revision, record: seen } satisfies ProfileEntry
      const stored = yield* records.record({
        profile: revision.profile.id,
        hash: revision.hash,
        canonical: revision.canonical,
        source: revision.source,
      })
      // A new revision keeps its overlay files, so it can be rebuilt after the working tree moved on.
      for (const entry of revision.profile.overlay) {
        if (entry.kind !== "file" || hasBlob(config.store, entry.sha256)) continue
        const bytes = yield* revision.readOverlay(entry.path)
        if (bytes) yield* putBlob(config.store, entry.sha256, bytes)
      }
      return { revision, record: stored } satisfies ProfileEntry
    })

  /** A recorded revision's overlay files, read from the store's blobs (undefined: a path it does not have). */
  const overlayFromBlobs = (profile: ResolvedProfile): ProfileRevision["readOverlay"] => {
    const digests = new Map(profile.overlay.map((e) => [e.path, e.sha256]))
    return (path) => {
      const digest = digests.get(path)
      return digest === undefined
        ? Effect.succeed(undefined)
        : Effect.try({
            try: () => readFileSync(blobPath(config.store, digest)),
            catch: (cause) => new InternalError({ cause }),
          })
    }
  }

  const fromRecord = (stored: RevisionRecord & { canonical: string }): ProfileEntry => {
    // Written by this program from a validated profile; one that does not decode is a corrupted database.
    const profile = decodeStoredProfile(stored.canonical)
    return {
      record: stored,
      revision: {
        profile,
        canonical: stored.canonical,
        hash: stored.hash,
        source: stored.source,
        readOverlay: overlayFromBlobs(profile),
      },
    }
  }

  /** A revision as seen: with its record when it has one, recorded only when `recording`. */
  const seen = (revision: ProfileRevision, recording: boolean) =>
    recording
      ? record({ revision, record: undefined })
      : Effect.map(
          records.find(revision.profile.id, revision.hash),
          (stored): ProfileView => ({ revision, record: stored }),
        )

  const resolveRev = (id: string, rev: string, recording: boolean) =>
    Effect.gen(function* () {
      if (tooLong(id)) return yield* notFound(id)
      // Revision numbers, hashes (64) and commit-ish names are short; a longer one names nothing.
      if (rev.length > 256) {
        return yield* new RevisionNotFoundError({
          profile: id,
          rev: elideName(rev),
          detail:
            "not a revision number, a recorded revision hash, or a git commit of the profiles repository",
        })
      }
      // A number is a revision number when one is recorded; otherwise it may still be a hash or commit
      // prefix made only of digits (a 7-digit short commit id is one in 27).
      const numeric = /^\d+$/.test(rev)
      if (numeric) {
        const stored = yield* records.bySeq(id, Number(rev))
        if (stored) return fromRecord(stored)
      }
      const noSuchNumber = Effect.gen(function* () {
        const history = yield* records.history(id)
        if (history.length === 0 && !(yield* worktree.ids()).includes(id)) return yield* notFound(id)
        return yield* new RevisionNotFoundError({
          profile: id,
          rev,
          detail:
            history.length === 0
              ? "no revision recorded yet (see `owrt profiles history`)"
              : `no revision ${rev}; known revisions are 1..${history[history.length - 1]?.seq ?? 0}`,
        })
      })
      if (numeric && rev.length < 4) return yield* noSuchNumber
      if (/^[0-9a-f]{4,64}$/i.test(rev)) {
        const matches = yield* records.byHashPrefix(id, rev)
        if (matches.length > 1) {
          return yield* new RevisionAmbiguousError({
            profile: id,
            rev,
            candidates: matches.map((m) => `${m.seq} (${m.hash.slice(0, 12)})`),
          })
        }
        const [match] = matches
        if (match) return fromRecord(match)
      }
      const commit = yield* resolveCommit(config.profiles, rev)
      if (commit === undefined && numeric) return yield* noSuchNumber
      if (commit === undefined) {
        if (!(yield* worktree.ids()).includes(id) && (yield* records.history(id)).length === 0)
          return yield* notFound(id)
        return yield* new RevisionNotFoundError({
          profile: id,
          rev,
          detail:
            "not a revision number, a recorded revision hash, or a git commit of the profiles repository",
        })
      }
      const tree = yield* gitProfileTree(config.profiles, commit)
      const resolver = makeProfileResolver(
        tree,
        `${relative(process.cwd(), config.profiles) || "."}@${commit.slice(0, 12)}`,
      )
      const revision = yield* resolver.resolve(id).pipe(
        Effect.catchIf(
          (e): e is Extract<typeof e, { _tag: "ProfileMissing" }> => e._tag === "ProfileMissing",
          () =>
            Effect.fail(
              new RevisionNotFoundError({
                profile: id,
                rev,
                detail: `profile did not exist at commit ${commit.slice(0, 12)}`,
              }),
            ),
        ),
      )
      return yield* seen(revision, recording)
    })

  const changedSince = (ref: string, only?: ReadonlyArray<string>) =>
    Effect.gen(function* () {
      const commit = yield* resolveCommit(config.profiles, ref)
      if (commit === undefined) {
        return yield* new RevisionNotFoundError({
          profile: "*",
          rev: ref,
          detail: "not a git commit of the profiles repository",
        })
      }
      const then = makeProfileResolver(yield* gitProfileTree(config.profiles, commit), "")
      const current = freshWorktree()
      const changed: Array<string> = []
      for (const id of only ?? (yield* current.ids())) {
        const now = yield* resolveWith(current, id).pipe(
          Effect.map((revision) => revision as ProfileRevision | undefined),
          // Listed, so that planning it reports why it does not resolve.
          Effect.catchTag("ProfileInvalidError", () => Effect.succeed(undefined)),
        )
        if (now === undefined) {
          changed.push(id)
          continue
        }
        if (now.profile.abstract) continue
        const before = yield* Effect.either(then.resolve(id))
        if (before._tag === "Left" || before.right.hash !== now.hash) changed.push(id)
      }
      return changed
    })

  const resolveText = (id: string, text: string, source: string) =>
    Effect.gen(function* () {
      const file = `${id}.yaml`
      const tree: ProfileTree = {
        source,
        listProfileFiles: () => Effect.succeed([file]),
        readText: (path) => Effect.succeed(path === file ? { _tag: "text" as const, text } : undefined),
        walk: () => Effect.succeed(undefined),
        readBytes: () => Effect.succeed(undefined),
        staysInside: () => false,
        displayPath: () => `${source}:${id}`,
      }
      const revision = yield* resolveWith(makeProfileResolver(tree, source), id)
      return yield* record({ revision, record: undefined })
    })

  const fromCanonical = (given: {
    readonly hash: string
    readonly canonical: string
    readonly source: string
  }) =>
    Effect.gen(function* () {
      const refused = (detail: string) =>
        new RevisionNotFoundError({ profile: "(farm job)", rev: given.hash.slice(0, 12), detail })
      if (sha256Hex(given.canonical) !== given.hash)
        return yield* refused("the revision's JSON does not hash to its hash")
      const decoded = Schema.decodeUnknownEither(Schema.parseJson(ResolvedProfile))(given.canonical)
      if (decoded._tag === "Left") return yield* refused("the revision's JSON is not a resolved profile")
      const profile = decoded.right
      const revision: ProfileRevision = {
        profile,
        canonical: given.canonical,
        hash: given.hash,
        source: given.source,
        readOverlay: overlayFromBlobs(profile),
      }
      return yield* record({ revision, record: undefined })
    })

  return ProfileRepository.of({
    ids: () => worktree.ids(),
    worktree,
    resolveText,
    fromCanonical,
    resolveFile,
    changedSince,
    resolve: (spec) =>
      Effect.gen(function* () {
        const { id, rev } = yield* parseProfileSpec(spec)
        if (rev === undefined)
          return yield* record({ revision: yield* resolveWith(worktree, id), record: undefined })
        return yield* record(yield* resolveRev(id, rev, true))
      }),
    inspect: (spec) =>
      Effect.gen(function* () {
        const { id, rev } = yield* parseProfileSpec(spec)
        if (rev === undefined) return yield* seen(yield* resolveWith(worktree, id), false)
        return yield* resolveRev(id, rev, false)
      }),
    record,
    all: () =>
      Effect.gen(function* () {
        const entries: Array<ProfileView> = []
        const broken: Array<BrokenProfile> = []
        const known = yield* records.known()
        const current = freshWorktree()
        for (const id of yield* current.ids()) {
          const resolved = yield* resolveWith(current, id).pipe(
            Effect.map((revision): ProfileRevision | ProfileInvalidError | undefined => revision),
            Effect.catchTags({
              ProfileInvalidError: (error) => Effect.succeed(error),
              // Removed since the directory was listed: it is no longer a profile.
              ProfileNotFoundError: () => Effect.succeed(undefined),
            }),
          )
          if (resolved instanceof ProfileInvalidError)
            broken.push({ profile: elideName(id), error: resolved })
          else if (resolved !== undefined)
            entries.push({ revision: resolved, record: known.get(`${id}\0${resolved.hash}`) })
        }
        return { entries, broken } satisfies ProfileListing
      }),
    history: (id) =>
      Effect.gen(function* () {
        if (tooLong(id)) return yield* notFound(id)
        const history = yield* records.history(id)
        // A profile of the working tree that nothing has realized yet has an empty history.
        if (history.length === 0 && !(yield* worktree.ids()).includes(id)) return yield* notFound(id)
        return history
      }),
  })
})
