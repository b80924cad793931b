import { Effect, Schema } from "effect"
import { BuilderStore } from "../builder/builderStore.js"
import { BuilderSummarySchema, builderSummaryJson } from "./builderSummary.js"
import { defineOperation } from "./operation.js"
import { NoParams } from "./schemaTypes.js"

export const listBuilders = defineOperation({
  name: "listBuilders",
  description:
    "The official Image Builders in the store: release, target, archive and its signer, size, how many builds used each, last use",
  readOnly: true,
  params: NoParams,
  result: Schema.Struct({ builders: Schema.Array(BuilderSummarySchema) }),
  run: () =>
    Effect.map(
      Effect.flatMap(BuilderStore, (store) => store.list()),
      (builders) => ({ builders: builders.map(builderSummaryJson) }),
    ),
})
