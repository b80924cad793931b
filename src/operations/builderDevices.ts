import { Effect, Schema } from "effect"
import { Realizer } from "../graph/realizer.js"
import { BuilderTargetFields } from "./builderTarget.js"
import { defineOperation } from "./operation.js"

/** One device profile of a builder, from its `make info`. */
export const BuilderDeviceSchema = Schema.Struct({
  id: Schema.String.annotations({ description: "The device profile id a profile's `device` names" }),
  title: Schema.NullOr(Schema.String).annotations({ description: "Vendor, model and variant" }),
  supportedDevices: Schema.Array(Schema.String).annotations({
    description: "Other names the builder accepts for it (`vendor,model`, also with `_` for `,`)",
  }),
  packages: Schema.Array(Schema.String).annotations({
    description: "The device's own packages (`-name` removes a default one)",
  }),
})

export const builderDevices = defineOperation({
  name: "builderDevices",
  description:
    "The device profiles an official Image Builder can build (from its `make info`): id, title, other accepted names and device packages. Fetches and verifies the builder when it is not stored",
  // It may fetch and store the builder; asking again reuses it.
  readOnly: false,
  idempotent: true,
  params: Schema.Struct(BuilderTargetFields),
  result: Schema.Struct({
    release: Schema.String,
    target: Schema.String,
    revision: Schema.NullOr(Schema.String).annotations({ description: "The builder's OpenWrt revision" }),
    defaultPackages: Schema.Array(Schema.String),
    devices: Schema.Array(BuilderDeviceSchema),
  }),
  run: (params) =>
    Effect.gen(function* () {
      const { builder, info } = yield* (yield* Realizer).describeBuilder({
        release: params.release,
        target: params.target,
      })
      return {
        release: builder.release,
        target: builder.target,
        revision: info.revision,
        defaultPackages: info.defaultPackages,
        devices: info.profiles.map((p) => ({
          id: p.id,
          title: p.name,
          supportedDevices: p.supportedDevices,
          packages: p.packages,
        })),
      }
    }),
})
