import { Effect, Schema } from "effect"
import { AppConfig } from "../config/appConfig.js"
import { buildLog, requireBuild } from "./buildLog.js"
import { BuildSummarySchema, buildSummaryJson } from "./buildSummary.js"
import { defineOperation } from "./operation.js"
import { Integer } from "./schemaTypes.js"
import { StoredArtifactSchema, storedArtifacts } from "./storedArtifacts.js"

export const getBuild = defineOperation({
  name: "getBuild",
  description: "One build: status, node keys, timings, error, its artifacts and the tail of its make log",
  readOnly: true,
  params: Schema.Struct({
    id: Schema.propertySignature(Integer).annotations({
      description: "Build id (from listBuilds or realize's buildId)",
    }),
    logLines: Schema.optional(Integer.pipe(Schema.between(0, 10_000))).annotations({
      description: "How many lines of the log's end to include (default 40)",
    }),
  }),
  result: Schema.Struct({
    ...BuildSummarySchema.fields,
    artifacts: Schema.Array(StoredArtifactSchema),
    logTail: Schema.NullOr(Schema.String).annotations({
      description: "The end of the make log; null when the build ran no make or the log was removed",
    }),
  }),
  run: (params) =>
    Effect.gen(function* () {
      const config = yield* AppConfig
      const row = yield* requireBuild(params.id)
      const artifacts =
        row.artifacts_key === null
          ? []
          : yield* storedArtifacts(config.store, { key: row.artifacts_key, limit: 1000 })
      const log = yield* buildLog(row).pipe(Effect.catchTag("NotFoundError", () => Effect.succeed(null)))
      const lines = params.logLines ?? 40
      return {
        ...buildSummaryJson(row),
        artifacts,
        logTail: log === null ? null : lines === 0 ? "" : log.trimEnd().split("\n").slice(-lines).join("\n"),
      }
    }),
})
