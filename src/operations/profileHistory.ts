import { Effect, Schema } from "effect"
import { ProfileRepository } from "../profile/profileRepository.js"
import { defineOperation } from "./operation.js"
import { RevisionSchema, revisionJson } from "./revision.js"

export const profileHistory = defineOperation({
  name: "profileHistory",
  description:
    "Every recorded revision of a profile, oldest first (use them as <profile>@<seq>); realize, audit and flash record the revisions they use, and looking records none (empty for a profile never realized)",
  readOnly: true,
  params: Schema.Struct({
    profile: Schema.String.pipe(
      Schema.minLength(1, { message: () => "a profile id is required, not an empty string" }),
    ).annotations({
      title: "profile",
      description: "Profile id",
    }),
  }),
  result: Schema.Struct({ id: Schema.String, revisions: Schema.Array(RevisionSchema) }),
  run: (params) =>
    Effect.gen(function* () {
      const revisions = yield* (yield* ProfileRepository).history(params.profile)
      return { id: params.profile, revisions: revisions.map(revisionJson) }
    }),
})
