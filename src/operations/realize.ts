import { Effect, Schema } from "effect"
import { InternalError } from "../errors.js"
import { Realizer } from "../graph/realizer.js"
import { makeSubstituteRun, SubstituteRun } from "../graph/substituter.js"
import { defineOperation } from "./operation.js"
import { RealizedProfileSchema, realizedProfileJson } from "./realizedProfile.js"
import { ProfileSpecSchema } from "./revision.js"
import { Integer, RunWarningSchema } from "./schemaTypes.js"

export const realize = defineOperation({
  name: "realize",
  description:
    "Build one profile into verified images in the store, or reuse them when already built (then cacheHit is true and nothing runs)",
  readOnly: false,
  idempotent: true,
  params: Schema.Struct({
    profile: ProfileSpecSchema,
    rebuild: Schema.optional(
      Schema.Boolean.annotations({
        description: "Build make-image and collect-artifacts again even if stored",
      }),
    ),
    requireSubstitutes: Schema.optional(
      Schema.Boolean.annotations({
        description:
          "Every node not in the store must come from a shared cache; one that would be built here fails with the cache's error code",
      }),
    ),
  }),
  result: Schema.Struct({
    ...RealizedProfileSchema.fields,
    buildId: Integer.annotations({ description: "The build record (see getBuild)" }),
    cacheWarnings: Schema.Array(RunWarningSchema).annotations({
      description: "Shared-cache problems met on the way (the nodes concerned were built here)",
    }),
  }),
  run: (params, context) =>
    Effect.gen(function* () {
      const substitution = makeSubstituteRun(params.requireSubstitutes === true)
      const { results } = yield* (yield* Realizer)
        .realize({
          specs: [params.profile],
          rebuild: params.rebuild,
          requestedBy: context.requestedBy,
        })
        .pipe(Effect.provideService(SubstituteRun, substitution.service))
      const [result] = results
      if (!result)
        return yield* new InternalError({ cause: `realize of ${params.profile} returned no result` })
      return {
        ...realizedProfileJson(result),
        buildId: result.buildId,
        cacheWarnings: substitution.warnings,
      }
    }),
})
