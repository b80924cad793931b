import { Effect, Schema } from "effect"
import { ProfileRepository } from "../profile/profileRepository.js"
import { ResolvedProfile } from "../profile/resolveProfile.js"
import { defineOperation } from "./operation.js"
import { ProfileSpecSchema, RevisionSchema, revisionJson } from "./revision.js"

export const getProfile = defineOperation({
  name: "getProfile",
  description: "Show a profile as resolved (extends applied) at a revision",
  readOnly: true,
  params: Schema.Struct({ profile: ProfileSpecSchema }),
  result: Schema.Struct({ id: Schema.String, revision: RevisionSchema, profile: ResolvedProfile }),
  run: (params) =>
    Effect.gen(function* () {
      const { revision, record } = yield* (yield* ProfileRepository).resolve(params.profile)
      return { id: revision.profile.id, revision: revisionJson(record), profile: revision.profile }
    }),
})
