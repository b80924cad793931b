import { Effect, Schema } from "effect"
import { NotFoundError } from "../errors.js"
import { Realizer } from "../graph/realizer.js"
import { defineOperation } from "./operation.js"
import { Integer } from "./schemaTypes.js"

export const storePath = defineOperation({
  name: "storePath",
  description:
    "The store path of a realized profile's artifact set (collect-artifacts); not_found when that revision is not realized in this store. Builds nothing",
  readOnly: true,
  params: Schema.Struct({
    profile: Schema.String.pipe(Schema.minLength(1, { message: () => "a profile is required" })).annotations({
      description: "A profile id or id@rev",
    }),
  }),
  result: Schema.Struct({
    profile: Schema.String,
    rev: Integer,
    key: Schema.String.annotations({ description: "The collect-artifacts key" }),
    path: Schema.String,
  }),
  run: (params) =>
    Effect.gen(function* () {
      const [planned] = yield* (yield* Realizer).plan({ specs: [params.profile] })
      const node = planned?.nodes.find((n) => n.kind === "collect-artifacts")
      // A stored result's revision was recorded by the realize that stored it.
      if (!planned || planned.rev === null || !node?.path || node.key === null) {
        return yield* new NotFoundError({
          what: params.profile,
          detail: "not realized in this store (owrt realize it first)",
        })
      }
      return { profile: planned.profile, rev: planned.rev, key: node.key, path: node.path }
    }),
})
