import { realpathSync } from "node:fs"
import { join } from "node:path"
import { Effect } from "effect"
import { AppConfig } from "../config/appConfig.js"
import { ArtifactRecords } from "../db/artifactRecords.js"
import { BuildRecords, effectiveStatus } from "../db/buildRecords.js"
import type { Database } from "../db/records.js"
import { RevisionRecords } from "../db/revisionRecords.js"
import { StorePathRecords } from "../db/storePathRecords.js"
import { NotFoundError, type OwrtError, ProfileNotFoundError, UsageError } from "../errors.js"
import { readManifest } from "../graph/kinds/collectArtifactsNode.js"
import { ProfileRepository } from "../profile/profileRepository.js"
import { lookupNode, storePathName } from "../store/nodeStore.js"
import { parseListing } from "../store/treeDigest.js"
import { closestMatch, elideName } from "../text/closestMatch.js"
import type { Realization } from "./realizationDiff.js"
import { parseReference, type Reference, storePathOf } from "./reference.js"

/*
 * A reference looked up in the store and the database alone: no network, no builder, nothing built or
 * recorded. A profile names the latest successful build of that revision; a build id that build; a store
 * path the artifact set it is (or, for a make-image path, the one collected from it).
 */

/** Which of the two references: errors name it, so a user knows which one to fix. */
export type Side = "first" | "second"

type Found = Omit<Realization, "manifest" | "overlay" | "storePath">

const safeRealpath = (path: string): string => {
  try {
    return realpathSync(path)
  } catch {
    return path
  }
}

export const lookupRealization = (
  reference: string,
  side: Side,
): Effect.Effect<Realization, OwrtError, AppConfig | Database | ProfileRepository> => {
  const what = `${side} reference`
  const missing = (detail: string) => new NotFoundError({ what, detail })
  const malformed = (detail: string) => new UsageError({ detail: `${what}: ${detail}` })
  const shown = `\`${elideName(reference)}\``

  /** The artifact set of `key`, valid in the store, with what the store recorded of its staged overlay. */
  const artifactSet = (found: Found) =>
    Effect.gen(function* () {
      const config = yield* AppConfig
      const row = yield* lookupNode(config.store, found.key)
      if (row === undefined) {
        return yield* missing(
          `${shown}: its artifacts (${found.key}) are no longer in the store (removed by \`owrt store gc\`, or found changed by \`owrt store verify\`); realize it again`,
        )
      }
      if (row.kind !== "collect-artifacts") {
        return yield* malformed(`${shown} is a ${row.kind} store path, not a realized profile's artifacts`)
      }
      const storePath = join(config.store, storePathName(row.key, row.name))
      const manifest = yield* readManifest(storePath)
      // The listing stays recorded even if the tree was since found changed: it is what was staged.
      const overlayRow = yield* StorePathRecords.find(manifest.keys.stageOverlay)
      return {
        ...found,
        storePath,
        manifest,
        overlay: overlayRow === undefined ? null : parseListing(overlayRow.listing),
      } satisfies Realization
    })

  const revisionNumber = (profile: string, hash: string) =>
    Effect.gen(function* () {
      const records = yield* RevisionRecords
      const [match] = yield* records.byHashPrefix(profile, hash)
      return match?.hash === hash ? match.seq : null
    })

  const ofProfile = (ref: Extract<Reference, { _tag: "profile" }>) =>
    Effect.gen(function* () {
      const profiles = yield* ProfileRepository
      // The working tree's revision is looked up, not recorded: a diff changes nothing.
      const { hash, seq } =
        ref.rev === undefined
          ? yield* profiles.worktree.resolve(ref.id).pipe(
              Effect.flatMap((revision) =>
                Effect.map(revisionNumber(ref.id, revision.hash), (seq) => ({ hash: revision.hash, seq })),
              ),
              Effect.catchTag("ProfileMissing", ({ known }) =>
                Effect.fail(
                  missing(
                    new ProfileNotFoundError({
                      profile: elideName(ref.id),
                      known,
                      suggestion: closestMatch(ref.id, known),
                    }).message,
                  ),
                ),
              ),
            )
          : yield* profiles.inspect(ref.spec).pipe(
              Effect.map((view) => ({ hash: view.revision.hash, seq: view.record?.seq ?? null })),
              Effect.catchTags({
                ProfileNotFoundError: (e) => Effect.fail(missing(e.message)),
                RevisionNotFoundError: (e) => Effect.fail(missing(e.message)),
              }),
            )
      const build = yield* BuildRecords.latestGood(ref.id, hash)
      if (build?.artifacts_key == null) {
        const revision = seq === null ? `its current revision (${hash.slice(0, 12)})` : `revision ${seq}`
        return yield* missing(
          `${shown}: ${revision} of ${ref.id} was never realized in this store; run \`owrt realize ${elideName(ref.spec)}\` first`,
        )
      }
      return yield* artifactSet({
        reference,
        profile: ref.id,
        rev: seq,
        revision: hash,
        buildId: build.id,
        key: build.artifacts_key,
      })
    })

  const ofBuild = (id: number) =>
    Effect.gen(function* () {
      const build = yield* BuildRecords.find(id)
      if (build === undefined) return yield* missing(`no build ${id} (see \`owrt builds list\`)`)
      const status = effectiveStatus(build)
      if (status !== "succeeded" || build.artifacts_key === null) {
        return yield* missing(
          `build ${id} (${build.profile}) ${status === "running" ? "is still running" : status === "succeeded" ? "recorded no artifacts" : `ended ${status}`}: it has no artifacts to compare`,
        )
      }
      return yield* artifactSet({
        reference,
        profile: build.profile,
        rev: build.revision_seq,
        revision: build.revision_hash,
        buildId: id,
        key: build.artifacts_key,
      })
    })

  const ofPath = (path: string) =>
    Effect.gen(function* () {
      const config = yield* AppConfig
      let located = storePathOf(config.store, path, process.cwd())
      if (located._tag === "outside") {
        // Either may be reached through a symbolic link.
        located = storePathOf(safeRealpath(config.store), safeRealpath(path), process.cwd())
      }
      if (located._tag === "outside") {
        return yield* malformed(
          `${shown} is not a path in the store ${config.store} (nor a profile or a build id)`,
        )
      }
      if (located._tag === "malformed") return yield* malformed(located.detail)
      const row = yield* StorePathRecords.find(located.key)
      if (row === undefined || row.name !== located.name) {
        return yield* missing(`${shown} is not a store path this store knows (removed by \`owrt store gc\`?)`)
      }
      let key = row.key
      if (row.kind === "make-image") {
        // The artifact set collected from this image build.
        const [build] = (yield* BuildRecords.ofImage(row.key)).filter((b) => b.artifacts_key !== null)
        if (build?.artifacts_key == null) {
          return yield* missing(`${shown}: no recorded build collected artifacts from this make-image path`)
        }
        key = build.artifacts_key
      } else if (row.kind !== "collect-artifacts") {
        return yield* malformed(
          `${shown} is a ${row.kind} store path; give a realized profile's artifacts (collect-artifacts) or make-image path`,
        )
      }
      const [latest] = yield* ArtifactRecords.stored({ key, limit: 1 })
      const set = yield* artifactSet({
        reference,
        profile: "",
        rev: null,
        revision: "",
        buildId: latest?.build_id ?? null,
        key,
      })
      // The revision the artifact set was made from, as its manifest records it.
      return {
        ...set,
        profile: set.manifest.profile,
        revision: set.manifest.revision,
        rev: yield* revisionNumber(set.manifest.profile, set.manifest.revision),
      } satisfies Realization
    })

  const parsed = parseReference(reference)
  switch (parsed._tag) {
    case "malformed":
      return Effect.fail(malformed(parsed.detail))
    case "profile":
      return ofProfile(parsed)
    case "build":
      return ofBuild(parsed.id)
    case "path":
      return ofPath(parsed.path)
  }
}
