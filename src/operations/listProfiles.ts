import { Effect, Schema } from "effect"
import { toErrorReport } from "../errors.js"
import { type BrokenProfile, ProfileRepository, type ProfileView } from "../profile/profileRepository.js"
import { ErrorReportSchema } from "./errorReport.js"
import { defineOperation } from "./operation.js"
import { SeenRevisionSchema, seenRevisionJson } from "./revision.js"
import { Integer } from "./schemaTypes.js"

/**
 * A profile that does not resolve, as listings report it next to the profiles that do: its id, the error
 * report `--json` prints for it alone (`code`, `message` with file:line:column, `exitCode` 3), and the
 * same problems as located diagnostics.
 */
export const ProfileErrorSchema = Schema.Struct({
  profile: Schema.String.annotations({ description: "The profile id (its file name)" }),
  ...ErrorReportSchema.fields,
  diagnostics: Schema.Array(
    Schema.Struct({
      file: Schema.String,
      line: Integer,
      column: Integer,
      path: Schema.String.annotations({ description: "Field path, e.g. files[2].mode; empty for the file" }),
      message: Schema.String,
      hint: Schema.optional(Schema.String),
    }),
  ),
}).annotations({ description: "A profile that does not resolve, with its located error" })
export type ProfileErrorJson = typeof ProfileErrorSchema.Type

export const profileErrorJson = ({ profile, error }: BrokenProfile): ProfileErrorJson => ({
  profile,
  ...toErrorReport(error),
  diagnostics: error.diagnostics.map((d) => ({
    file: d.file,
    line: d.line,
    column: d.column,
    path: d.path,
    message: d.message,
    ...(d.hint === undefined ? {} : { hint: d.hint }),
  })),
})

export const ProfileSummarySchema = Schema.Struct({
  id: Schema.String,
  description: Schema.NullOr(Schema.String),
  abstract: Schema.Boolean.annotations({ description: "A parent only; never built" }),
  release: Schema.NullOr(Schema.String),
  target: Schema.NullOr(Schema.String),
  device: Schema.NullOr(Schema.String),
  tags: Schema.Array(Schema.String),
  revision: SeenRevisionSchema,
})
export type ProfileSummary = typeof ProfileSummarySchema.Type

export const profileSummaryJson = (view: ProfileView): ProfileSummary => {
  const { revision } = view
  return {
    id: revision.profile.id,
    description: revision.profile.description,
    abstract: revision.profile.abstract,
    release: revision.profile.release,
    target: revision.profile.target,
    device: revision.profile.device,
    tags: revision.profile.tags,
    revision: seenRevisionJson(view),
  }
}

export const listProfiles = defineOperation({
  name: "listProfiles",
  description:
    "List the profiles in the working tree with their current revision (recording none: a revision not recorded yet has no number); profiles that do not resolve are listed in `errors` with their located error",
  readOnly: true,
  params: Schema.Struct({
    tag: Schema.optional(Schema.String.annotations({ description: "Only profiles with this tag" })),
  }),
  result: Schema.Struct({
    profiles: Schema.Array(ProfileSummarySchema),
    errors: Schema.Array(ProfileErrorSchema).annotations({
      description:
        "Profiles that do not resolve (whatever the tag asked for: theirs cannot be read); empty when all do",
    }),
  }),
  run: (params) =>
    Effect.gen(function* () {
      const { entries, broken } = yield* (yield* ProfileRepository).all()
      const tag = params.tag
      return {
        profiles: entries
          .filter((e) => tag === undefined || e.revision.profile.tags.includes(tag))
          .map(profileSummaryJson),
        errors: broken.map(profileErrorJson),
      }
    }),
})
