import { Effect, Schema } from "effect"
import { ProfileRepository } from "../profile/profileRepository.js"
import { defineOperation } from "./operation.js"
import { ProfileSpecSchema, RevisionSchema, revisionJson } from "./revision.js"
import { Integer } from "./schemaTypes.js"

/** The canonical resolved profile (`owrt profiles show --json`'s `profile`). */
export const ResolvedProfileSchema = Schema.Struct({
  schema: Integer,
  id: Schema.String,
  description: Schema.NullOr(Schema.String),
  abstract: Schema.Boolean,
  parents: Schema.Array(Schema.String).annotations({ description: "extends, linearised" }),
  release: Schema.NullOr(Schema.String),
  target: Schema.NullOr(Schema.String),
  device: Schema.NullOr(Schema.String),
  packages: Schema.Array(Schema.String),
  overlay: Schema.Array(
    Schema.Struct({
      path: Schema.String,
      kind: Schema.Literal("file", "symlink"),
      mode: Integer,
      sha256: Schema.String,
      size: Integer,
      linkTarget: Schema.optional(Schema.String),
    }),
  ),
  files: Schema.Array(
    Schema.Struct({
      path: Schema.String,
      mode: Schema.String,
      content: Schema.optional(Schema.String),
      secret: Schema.optional(Schema.String),
    }),
  ),
  first_boot: Schema.Array(Schema.Struct({ name: Schema.String, script: Schema.String })),
  disabled_services: Schema.Array(Schema.String),
  rootfs_size: Schema.NullOr(Schema.Number).annotations({
    description: "MB, or null for the builder default",
  }),
  tags: Schema.Array(Schema.String),
  secrets: Schema.Record({ key: Schema.String, value: Schema.String }).annotations({
    description: "Secret name → reference (env:NAME or file:PATH); never a value",
  }),
  flash: Schema.Struct({ image: Schema.String, verify: Schema.String, wipe: Schema.Boolean }),
})

export const getProfile = defineOperation({
  name: "getProfile",
  description: "Show a profile as resolved (extends applied) at a revision",
  readOnly: true,
  params: Schema.Struct({ profile: ProfileSpecSchema }),
  result: Schema.Struct({ id: Schema.String, revision: RevisionSchema, profile: ResolvedProfileSchema }),
  run: (params) =>
    Effect.gen(function* () {
      const { revision, record } = yield* (yield* ProfileRepository).resolve(params.profile)
      return { id: revision.profile.id, revision: revisionJson(record), profile: revision.profile }
    }),
})
