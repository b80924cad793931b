import { Effect, Schema } from "effect"
import { AppConfig } from "../config/appConfig.js"
import { StoreDriftError } from "../errors.js"
import { verifyStore } from "../store/storeMaintenance.js"
import { defineOperation } from "./operation.js"
import { Integer, NoParams } from "./schemaTypes.js"

export const storeVerify = defineOperation({
  name: "storeVerify",
  description:
    "Re-hash every store path against the digest recorded when it was made; drifted paths are invalidated (the next realize rebuilds them) and reported as store_drift",
  // It marks drifted paths invalid, which changes what the next realize does.
  readOnly: false,
  idempotent: true,
  params: NoParams,
  result: Schema.Struct({ checked: Integer, drifted: Schema.Tuple() }),
  run: () =>
    Effect.gen(function* () {
      const config = yield* AppConfig
      const report = yield* verifyStore(config.store)
      if (report.drifted.length > 0) return yield* new StoreDriftError({ paths: report.drifted })
      return { checked: report.checked, drifted: [] as const }
    }),
})
