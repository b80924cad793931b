import { Effect, Schema } from "effect"
import { AppConfig } from "../config/appConfig.js"
import { collectGarbage as removeGarbage } from "../store/storeMaintenance.js"

export { garbageDescriptions } from "../store/storeMaintenance.js"

import { defineOperation } from "./operation.js"
import { Integer } from "./schemaTypes.js"

export const collectGarbage = defineOperation({
  name: "collectGarbage",
  description:
    "Remove the store's garbage: work directories and builder instances of processes that are gone, their stale locks, invalid or unknown paths. Never a valid path, nor one a running process uses or holds the lock of",
  readOnly: false,
  // Only garbage goes: nothing a realize could still use.
  destructive: false,
  idempotent: true,
  params: Schema.Struct({
    dryRun: Schema.optional(Schema.Boolean).annotations({
      description: "Say what would be removed; remove nothing",
    }),
  }),
  result: Schema.Struct({
    removed: Schema.Array(Schema.String).annotations({ description: "Paths removed (or that would be)" }),
    garbage: Schema.Array(
      Schema.Struct({
        path: Schema.String,
        kind: Schema.Literal("work-directory", "build-instance", "invalid-path", "unknown-path"),
      }),
    ).annotations({
      description:
        "Each removed path with what it was: work-directory or build-instance (/dev/shm/owrt-instance.*) of a killed process, invalid-path, unknown-path",
    }),
    bytesFreed: Integer,
    skipped: Schema.Array(Schema.Struct({ path: Schema.String, reason: Schema.String })).annotations({
      description:
        "Garbage left alone this time, and why (in use or locked by a live process, changed just now)",
    }),
    staleLocks: Integer.annotations({ description: "Lock and use rows of dead processes released" }),
    dryRun: Schema.Boolean,
  }),
  run: (params) =>
    Effect.gen(function* () {
      const config = yield* AppConfig
      const dryRun = params.dryRun === true
      const report = yield* removeGarbage(config.store, { dryRun })
      return { ...report, dryRun }
    }),
})
