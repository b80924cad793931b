import { Effect, Schema } from "effect"
import { BuildRecords } from "../db/buildRecords.js"
import { BuildSummarySchema, buildSummaryJson } from "./buildSummary.js"
import { defineOperation } from "./operation.js"
import { Integer } from "./schemaTypes.js"

export const listBuilds = defineOperation({
  name: "listBuilds",
  description: "Recorded builds (realizations), newest first: status, cache hit, who asked, node keys, error",
  readOnly: true,
  params: Schema.Struct({
    profile: Schema.optional(Schema.String.annotations({ description: "Only builds of this profile" })),
    limit: Schema.optional(Integer.pipe(Schema.between(1, 1000))).annotations({
      description: "How many, newest first (default 50)",
    }),
  }),
  result: Schema.Struct({ builds: Schema.Array(BuildSummarySchema) }),
  run: (params) =>
    Effect.map(BuildRecords.list({ profile: params.profile, limit: params.limit ?? 50 }), (rows) => ({
      builds: rows.map(buildSummaryJson),
    })),
})
