import { Effect, Schema } from "effect"
import { BuilderStore } from "../builder/builderStore.js"
import { BuilderSummarySchema, builderSummaryJson, KeptBuilderSchema } from "./builderSummary.js"
import { defineOperation } from "./operation.js"
import { Integer } from "./schemaTypes.js"

export const pruneBuilders = defineOperation({
  name: "pruneBuilders",
  description:
    "Remove stored Image Builders no running owrt process uses (with olderThanDays, only those unused that long); those in use or locked are kept and listed with the reason. A removed builder is fetched and verified again when a realize needs it",
  readOnly: false,
  // Nothing is lost that cannot be fetched again, and nothing in use is touched.
  destructive: false,
  idempotent: true,
  params: Schema.Struct({
    olderThanDays: Schema.optional(Integer.pipe(Schema.nonNegative())).annotations({
      description: "Only builders unused for at least this many days",
    }),
    dryRun: Schema.optional(Schema.Boolean).annotations({
      description: "Say what would be removed; remove nothing",
    }),
  }),
  result: Schema.Struct({
    removed: Schema.Array(BuilderSummarySchema),
    skipped: Schema.Array(KeptBuilderSchema),
    dryRun: Schema.Boolean,
  }),
  run: (params) =>
    Effect.gen(function* () {
      const dryRun = params.dryRun === true
      const report = yield* (yield* BuilderStore).prune({ olderThanDays: params.olderThanDays, dryRun })
      return {
        removed: report.removed.map(builderSummaryJson),
        skipped: report.skipped.map((s) => ({ ...builderSummaryJson(s.builder), reason: s.reason })),
        dryRun,
      }
    }),
})
