import { Effect, Schema } from "effect"
import { Realizer } from "../graph/realizer.js"
import { defineOperation } from "./operation.js"
import { Integer } from "./schemaTypes.js"

export const storePath = defineOperation({
  name: "storePath",
  description:
    "The store path of a realized profile's artifact set (collect-artifacts), from the store and the database alone (no upstream is asked, nothing is recorded); not_found when that revision is not realized in this store. Builds nothing",
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
  run: (params) => Effect.flatMap(Realizer, (realizer) => realizer.storedResult(params.profile)),
})
