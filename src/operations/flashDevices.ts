import { Effect, Schema } from "effect"
import { AppConfig } from "../config/appConfig.js"
import { listEligibleDevices } from "../flash/eligibleDevices.js"
import { defineOperation } from "./operation.js"
import { Integer } from "./schemaTypes.js"

export const flashDevices = defineOperation({
  name: "flashDevices",
  description:
    "The devices flash accepts: whole disks on the configuration's flash.allowDevices list that pass the pre-flight checks (not mounted, not a system disk, writable)",
  readOnly: true,
  params: Schema.Struct({
    allowLoop: Schema.optional(Schema.Boolean).annotations({ description: "Include loop devices" }),
  }),
  result: Schema.Struct({
    allowDevices: Schema.Array(Schema.String).annotations({
      description: "flash.allowDevices as configured",
    }),
    devices: Schema.Array(
      Schema.Struct({
        path: Schema.String,
        name: Schema.String,
        sizeBytes: Integer,
        model: Schema.optional(Schema.String),
        serial: Schema.optional(Schema.String),
        removable: Schema.Boolean,
        isLoop: Schema.Boolean,
      }),
    ),
  }),
  run: (params) =>
    Effect.map(AppConfig, (config) => ({
      allowDevices: config.flash.allowDevices,
      devices: listEligibleDevices({
        allowLoop: params.allowLoop === true,
        allowList: config.flash.allowDevices,
      }),
    })),
})
