import { Effect, Schema } from "effect"
import { type ProfileEntry, ProfileRepository } from "../profile/profileRepository.js"
import { defineOperation } from "./operation.js"
import { RevisionSchema, revisionJson } from "./revision.js"

export const ProfileSummarySchema = Schema.Struct({
  id: Schema.String,
  description: Schema.NullOr(Schema.String),
  abstract: Schema.Boolean.annotations({ description: "A parent only; never built" }),
  release: Schema.NullOr(Schema.String),
  target: Schema.NullOr(Schema.String),
  device: Schema.NullOr(Schema.String),
  tags: Schema.Array(Schema.String),
  revision: RevisionSchema,
})
export type ProfileSummary = typeof ProfileSummarySchema.Type

export const profileSummaryJson = ({ revision, record }: ProfileEntry): ProfileSummary => ({
  id: revision.profile.id,
  description: revision.profile.description,
  abstract: revision.profile.abstract,
  release: revision.profile.release,
  target: revision.profile.target,
  device: revision.profile.device,
  tags: revision.profile.tags,
  revision: revisionJson(record),
})

export const listProfiles = defineOperation({
  name: "listProfiles",
  description:
    "List the profiles in the working tree with their current revision (records revisions not seen before)",
  readOnly: true,
  params: Schema.Struct({
    tag: Schema.optional(Schema.String.annotations({ description: "Only profiles with this tag" })),
  }),
  result: Schema.Struct({ profiles: Schema.Array(ProfileSummarySchema) }),
  run: (params) =>
    Effect.gen(function* () {
      const entries = yield* (yield* ProfileRepository).all()
      const tag = params.tag
      return {
        profiles: entries
          .filter((e) => tag === undefined || e.revision.profile.tags.includes(tag))
          .map(profileSummaryJson),
      }
    }),
})
