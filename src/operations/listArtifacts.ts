import { Effect, Schema } from "effect"
import { AppConfig } from "../config/appConfig.js"
import { defineOperation } from "./operation.js"
import { Integer } from "./schemaTypes.js"
import { StoredArtifactSchema, storedArtifacts } from "./storedArtifacts.js"

export const listArtifacts = defineOperation({
  name: "listArtifacts",
  description:
    "Images in the store (valid artifact sets), newest first, with their SHA-256, size, path and build",
  readOnly: true,
  params: Schema.Struct({
    profile: Schema.optional(Schema.String.annotations({ description: "Only this profile's images" })),
    limit: Schema.optional(Integer.pipe(Schema.between(1, 1000))).annotations({
      description: "How many, newest first (default 100)",
    }),
  }),
  result: Schema.Struct({ artifacts: Schema.Array(StoredArtifactSchema) }),
  run: (params) =>
    Effect.gen(function* () {
      const config = yield* AppConfig
      return {
        artifacts: yield* storedArtifacts(config.store, {
          profile: params.profile,
          limit: params.limit ?? 100,
        }),
      }
    }),
})
