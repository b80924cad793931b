import { Effect, Schema } from "effect"
import { Realizer } from "../graph/realizer.js"
import { ProfileRepository } from "../profile/profileRepository.js"
import { ProfileErrorSchema, profileErrorJson } from "./listProfiles.js"
import { defineOperation } from "./operation.js"
import { Integer } from "./schemaTypes.js"
import { SelectionFields } from "./selection.js"

const StatusSchema = Schema.Literal("cached", "remote", "missing").annotations({
  description:
    "cached: in this store; remote: not here but in a shared cache (cache.substituters), substituted instead of built; missing: to be built",
})

export const PlannedProfileSchema = Schema.Struct({
  profile: Schema.String,
  rev: Schema.NullOr(Integer).annotations({
    description:
      "Revision number; null while the revision is not recorded (plan records nothing; realize, audit and flash record the revisions they use)",
  }),
  revision: Schema.String,
  status: StatusSchema,
  nodes: Schema.Array(
    Schema.Struct({
      kind: Schema.String.annotations({
        description: "The node's kind: fetch-builder, stage-overlay, make-image, collect-artifacts",
      }),
      key: Schema.NullOr(Schema.String).annotations({
        description: "null until it can be computed (make-image needs the builder fetched once)",
      }),
      status: StatusSchema,
      path: Schema.NullOr(Schema.String),
      explain: Schema.optional(
        Schema.Struct({
          comparedWith: Schema.NullOr(Schema.String).annotations({
            description: "Key of the stored node of the same profile and kind this one is compared with",
          }),
          changes: Schema.Array(Schema.String).annotations({
            description: "What differs, one phrase each: `packages +tcpdump`, `release: 23.05.4 → 23.05.5`",
          }),
        }).annotations({ description: "With `explain`, for a node that is not cached: why" }),
      ),
    }),
  ),
})

export const plan = defineOperation({
  name: "plan",
  description:
    "Show the task graph of profiles (node keys) and what is already in the store, without building or recording anything",
  readOnly: true,
  params: Schema.Struct({
    ...SelectionFields,
    since: Schema.optional(
      Schema.String.annotations({
        description: "Only profiles whose resolved revision differs from this git ref (what CI builds)",
      }),
    ),
    explain: Schema.optional(
      Schema.Boolean.annotations({
        description:
          "For every node that is not cached, say which key inputs differ from the nearest stored one",
      }),
    ),
  }),
  result: Schema.Struct({
    since: Schema.optional(Schema.String),
    profiles: Schema.Array(PlannedProfileSchema),
    errors: Schema.Array(ProfileErrorSchema).annotations({
      description:
        "Profiles of --all, --tag or --since that do not resolve, not planned; empty when all do (a profile named explicitly fails the plan instead)",
    }),
    summary: Schema.Struct({ profiles: Integer, cached: Integer, remote: Integer, missing: Integer }),
  }),
  run: (params) =>
    Effect.gen(function* () {
      const realizer = yield* Realizer
      const requested = params.profiles ?? []
      const since = params.since
      const specs =
        since === undefined
          ? requested
          : yield* (yield* ProfileRepository).changedSince(
              since,
              requested.length > 0 ? requested : undefined,
            )
      const { profiles: planned, broken } =
        since !== undefined && specs.length === 0
          ? { profiles: [], broken: [] }
          : yield* realizer.planReporting(
              { specs, all: params.all === true || since !== undefined, tag: params.tag },
              // With --since, the specs are what changed: one that does not resolve is reported, like --all.
              { explain: params.explain, reportInvalid: since !== undefined },
            )
      return {
        ...(since !== undefined ? { since } : {}),
        profiles: planned,
        errors: broken.map(profileErrorJson),
        summary: {
          profiles: planned.length,
          cached: planned.filter((p) => p.status === "cached").length,
          remote: planned.filter((p) => p.status === "remote").length,
          missing: planned.filter((p) => p.status === "missing").length,
        },
      }
    }),
})
