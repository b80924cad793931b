import { Effect, Schema } from "effect"
import { flashImage } from "../flash/flashOperation.js"
import { defineOperation } from "./operation.js"
import { Integer } from "./schemaTypes.js"

const optionalString = Schema.optional(Schema.String)

export const FlashReportSchema = Schema.Struct({
  id: Integer.annotations({ description: "The flash record" }),
  mode: Schema.Literal("dry-run", "write", "verify-only"),
  status: Schema.Literal("planned", "succeeded").annotations({
    description: "planned: a dry run, nothing was written",
  }),
  image: Schema.Struct({
    path: Schema.String,
    bytes: Integer,
    fileBytes: Integer,
    compression: Schema.Literal("none", "gzip", "xz", "zstd"),
    profile: optionalString,
    revision: optionalString,
    artifact: Schema.optional(
      Schema.Struct({ key: Schema.String, name: Schema.String, type: Schema.String, sha256: Schema.String }),
    ),
    choice: optionalString,
    bmap: Schema.optional(
      Schema.Struct({ path: Schema.String, mappedBytes: Integer }).annotations({
        description: "The block map used: only the blocks it names were written and read back",
      }),
    ),
  }),
  device: Schema.Struct({
    path: Schema.String,
    requested: Schema.String,
    name: Schema.String,
    sizeBytes: Integer,
    blockSize: Integer,
    model: optionalString,
    serial: optionalString,
    removable: Schema.Boolean,
    suspect: Schema.Boolean.annotations({ description: "The card failed a verification before" }),
  }),
  wipe: Schema.Boolean,
  verify: Schema.Literal("full", "none"),
  steps: Schema.Array(Schema.String).annotations({ description: "What the flash does (or did), in words" }),
  writtenSha256: optionalString,
  writeMs: Schema.optional(Schema.Number),
  verifyMs: Schema.optional(Schema.Number),
})

export const flash = defineOperation({
  name: "flash",
  description:
    "Write a firmware image to a TF/SD card or USB disk. A dry run (the plan: image, device, steps) unless force is true. Only devices on the configuration's flash.allowDevices list are accepted; every pre-flight safety check applies (refusals are flash_* errors, exit code 8)",
  readOnly: false,
  destructive: true,
  idempotent: false,
  params: Schema.Struct({
    source: Schema.String.pipe(
      Schema.minLength(1, { message: () => "an image source is required" }),
    ).annotations({
      description:
        "An image file, an artifact id (sha256 prefix or <key>/<name>), or a profile id[@rev] (built or reused)",
    }),
    device: Schema.String.pipe(Schema.minLength(1, { message: () => "a device is required" })).annotations({
      description: "The whole card's block device, e.g. /dev/sdb or a /dev/disk/by-id name",
    }),
    force: Schema.optional(Schema.Boolean).annotations({
      description: "Write for real; without it nothing is written and the plan is returned",
    }),
    wipe: Schema.optional(Schema.Boolean).annotations({
      description: "Zero old partition tables and signatures first (default: the profile's flash policy)",
    }),
    verify: Schema.optional(Schema.Literal("full", "none")).annotations({
      description: "Read the card back and compare (default: the profile's flash policy, else full)",
    }),
    allowLoop: Schema.optional(Schema.Boolean).annotations({
      description: "Accept a loop device (lab and test use)",
    }),
    bmap: Schema.optional(Schema.Boolean).annotations({
      description: "Write only the blocks of the image's block map when one lies beside it (default: true)",
    }),
  }),
  result: FlashReportSchema,
  run: (params, context) =>
    Effect.map(
      flashImage({
        source: params.source,
        device: params.device,
        force: params.force === true,
        wipe: params.wipe,
        verify: params.verify,
        allowLoop: params.allowLoop === true,
        bmap: params.bmap,
        // Clients of the library's operations (MCP, web) never flash a device the configuration does not list.
        requireAllowList: true,
        requestedBy: context.requestedBy,
      }),
      (report) => ({ ...report, steps: [...report.steps] }),
    ),
})
