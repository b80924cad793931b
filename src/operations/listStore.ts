import { Effect, Schema } from "effect"
import { AppConfig } from "../config/appConfig.js"
import { listStore as listStorePaths } from "../store/storeMaintenance.js"
import { defineOperation } from "./operation.js"
import { Integer, NoParams } from "./schemaTypes.js"

export const listStore = defineOperation({
  name: "listStore",
  description:
    "Every path of the store the database knows (builders, overlays, images, artifact sets): node key and kind, files, size, whether it is valid",
  readOnly: true,
  params: NoParams,
  result: Schema.Struct({
    store: Schema.String.annotations({ description: "The store directory" }),
    paths: Schema.Array(
      Schema.Struct({
        key: Schema.String,
        kind: Schema.String.annotations({ description: "The node kind that made it, e.g. make-image" }),
        path: Schema.String,
        files: Integer,
        bytes: Integer,
        createdAt: Schema.String,
        valid: Schema.Boolean.annotations({
          description: "false: drifted or unfinished; the next realize rebuilds it and gc removes it",
        }),
      }),
    ),
  }),
  run: () =>
    Effect.gen(function* () {
      const config = yield* AppConfig
      return { store: config.store, paths: yield* listStorePaths(config.store) }
    }),
})
