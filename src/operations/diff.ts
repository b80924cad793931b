import { Effect, Schema } from "effect"
import { diffRealizations, type Realization } from "../diff/realizationDiff.js"
import { lookupRealization } from "../diff/realizationLookup.js"
import { defineOperation } from "./operation.js"
import { Integer } from "./schemaTypes.js"

const ReferenceSchema = Schema.String.pipe(
  Schema.minLength(1, { message: () => "a reference is required, not an empty string" }),
  Schema.annotations({
    description:
      "A realization: a profile id or id@rev (its latest successful build), a build id, or a store path (collect-artifacts or make-image)",
  }),
)

const SideSchema = Schema.Struct({
  reference: Schema.String.annotations({ description: "The reference as given" }),
  profile: Schema.String,
  rev: Schema.NullOr(Integer).annotations({
    description: "Revision number; null when this store never recorded the revision",
  }),
  revision: Schema.String.annotations({ description: "Revision hash" }),
  buildId: Schema.NullOr(Integer).annotations({
    description: "The build that produced it (the latest successful one); null when none is recorded",
  }),
  key: Schema.String.annotations({ description: "collect-artifacts key" }),
  storePath: Schema.String.annotations({ description: "The artifact set's store path" }),
  release: Schema.String,
  target: Schema.String,
  device: Schema.String,
})

const PackageSchema = Schema.Struct({ name: Schema.String, version: Schema.String })

const OverlayEntrySchema = Schema.Struct({
  path: Schema.String.annotations({ description: "Path in the image, without the leading /" }),
  kind: Schema.Literal("file", "symlink", "dir"),
  mode: Schema.NullOr(Schema.String).annotations({
    description: 'Octal permission bits ("0644"); null for a symbolic link',
  }),
  size: Integer,
  linkTarget: Schema.NullOr(Schema.String),
})

const ImageFileSchema = Schema.Struct({ name: Schema.String, size: Integer, sha256: Schema.String })

export const DiffSchema = Schema.Struct({
  from: SideSchema,
  to: SideSchema,
  identical: Schema.Boolean.annotations({
    description: "Both name the same artifact set (same collect-artifacts key)",
  }),
  keys: Schema.Array(
    Schema.Struct({
      node: Schema.Literal(
        "fetch-builder",
        "stage-overlay",
        "make-image",
        "collect-artifacts",
        "fetch-base-image",
        "customise-image",
      ),
      from: Schema.String,
      to: Schema.String,
      changed: Schema.Boolean,
    }),
  ).annotations({ description: "Every node's key on both sides, in graph order" }),
  inputs: Schema.Array(
    Schema.Struct({
      field: Schema.String.annotations({
        description:
          "release, target, device, packages (as requested), disabledServices or rootfsSize; for Raspberry Pi OS images baseRelease (the base image's release date) and hostname instead of release and device",
      }),
      from: Schema.NullOr(Schema.String),
      to: Schema.NullOr(Schema.String),
    }),
  ).annotations({ description: "Build inputs that differ (lists space-separated)" }),
  packages: Schema.Struct({
    added: Schema.Array(PackageSchema),
    removed: Schema.Array(PackageSchema),
    changed: Schema.Array(Schema.Struct({ name: Schema.String, from: Schema.String, to: Schema.String })),
    unchanged: Integer,
  }).annotations({ description: "Installed packages, from the package manifests of the artifact sets" }),
  files: Schema.NullOr(
    Schema.Struct({
      added: Schema.Array(OverlayEntrySchema),
      removed: Schema.Array(OverlayEntrySchema),
      changed: Schema.Array(
        Schema.Struct({
          path: Schema.String,
          from: OverlayEntrySchema,
          to: OverlayEntrySchema,
          changes: Schema.Array(Schema.Literal("kind", "content", "mode", "target")),
        }),
      ),
      unchanged: Integer,
    }),
  ).annotations({
    description:
      "The staged overlay (FILES=: overlay files, inline files, first-boot scripts); null when the store has no listing of one side's",
  }),
  images: Schema.Array(
    Schema.Struct({
      type: Schema.String,
      filesystem: Schema.NullOr(Schema.String),
      status: Schema.Literal("added", "removed", "changed", "unchanged"),
      from: Schema.NullOr(ImageFileSchema),
      to: Schema.NullOr(ImageFileSchema),
      sizeDelta: Integer.annotations({ description: "to.size - from.size in bytes (a missing image is 0)" }),
    }),
  ),
})
export type DiffJson = typeof DiffSchema.Type

const sideJson = (r: Realization): DiffJson["from"] => ({
  reference: r.reference,
  profile: r.profile,
  rev: r.rev,
  revision: r.revision,
  buildId: r.buildId,
  key: r.key,
  storePath: r.storePath,
  release: r.manifest.inputs.release,
  target: r.manifest.inputs.target,
  device: r.manifest.inputs.device,
})

export const diff = defineOperation({
  name: "diff",
  description:
    "Compare two realizations, as `nix store diff-closures` does: packages added, removed and changed version, overlay files added, removed and changed, image sizes and their delta, and which node keys differ. Reads the store and database only: nothing is built, fetched or unpacked",
  readOnly: true,
  params: Schema.Struct({
    from: ReferenceSchema,
    to: ReferenceSchema,
  }),
  result: DiffSchema,
  run: (params) =>
    Effect.gen(function* () {
      const from = yield* lookupRealization(params.from, "first")
      const to = yield* lookupRealization(params.to, "second")
      return { from: sideJson(from), to: sideJson(to), ...diffRealizations(from, to) }
    }),
})
