import { Effect, Either } from "effect"
import { ProfileRepository } from "../profile/profileRepository.js"

/** Profile specs, each distinct profile revision once. */
export interface DistinctSpecs {
  /** The first spec naming each revision, in the order given. */
  readonly specs: ReadonlyArray<string>
  /** Specs left out because an earlier one names the same revision (`a a`, or `a` and `a@3`). */
  readonly merged: number
}

/**
 * Merges specs that name the same profile revision, so that a batch builds and records each revision
 * once however often it is named. Specs are resolved (recording the revisions they name, as realizing
 * them would); one that does not resolve is kept, once per spelling, so that realizing it reports why.
 */
export const distinctSpecs = (
  specs: ReadonlyArray<string>,
): Effect.Effect<DistinctSpecs, never, ProfileRepository> =>
  Effect.gen(function* () {
    const profiles = yield* ProfileRepository
    const spellings = [...new Set(specs)]
    const seen = new Set<string>()
    const kept: Array<string> = []
    for (const spec of spellings) {
      const resolved = yield* Effect.either(profiles.resolve(spec))
      const identity = Either.isRight(resolved)
        ? `${resolved.right.revision.profile.id}@${resolved.right.revision.hash}`
        : `unresolved:${spec}`
      if (seen.has(identity)) continue
      seen.add(identity)
      kept.push(spec)
    }
    return { specs: kept, merged: specs.length - kept.length }
  })
