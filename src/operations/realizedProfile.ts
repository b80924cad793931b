import { Schema } from "effect"
import type { RealizeResult } from "../graph/realizer.js"
import { RealizeWarningSchema, realizeWarnings } from "../image/removals.js"
import { Integer } from "./schemaTypes.js"

export const ArtifactSchema = Schema.Struct({
  name: Schema.String,
  type: Schema.String.annotations({ description: "sysupgrade, factory, …" }),
  filesystem: Schema.NullOr(Schema.String).annotations({
    description: "squashfs, ext4, …, where the target makes an image per root file system",
  }),
  sha256: Schema.String,
  size: Integer,
  path: Schema.String.annotations({ description: "Absolute path of the file in the store" }),
})

/** One realized profile, as an entry of `owrt realize --json`'s `results`. */
export const RealizedProfileSchema = Schema.Struct({
  profile: Schema.String,
  rev: Integer,
  key: Schema.String.annotations({ description: "collect-artifacts key" }),
  cacheHit: Schema.Boolean.annotations({
    description: "true when neither make-image nor collect-artifacts ran",
  }),
  substituted: Schema.Boolean.annotations({
    description:
      "true when make-image and collect-artifacts were not built here but substituted from a shared cache (cacheHit stays for the local store)",
  }),
  substitutedFrom: Schema.NullOr(Schema.String).annotations({
    description: "The shared cache (oci://host/repo) they were substituted from",
  }),
  storePath: Schema.String,
  artifacts: Schema.Array(ArtifactSchema),
  warnings: Schema.Array(RealizeWarningSchema).annotations({
    description:
      "What built but is not what the profile says: a removal (`-name`) that another package undid (code removal_without_effect)",
  }),
})
export type RealizedProfile = typeof RealizedProfileSchema.Type

export const realizedProfileJson = (r: RealizeResult): RealizedProfile => ({
  profile: r.profile,
  rev: r.rev,
  key: r.key,
  cacheHit: r.cacheHit,
  substituted: r.substitutedFrom !== null,
  substitutedFrom: r.substitutedFrom,
  storePath: r.storePath,
  artifacts: r.artifacts.map((a) => ({
    name: a.name,
    type: a.type,
    filesystem: a.filesystem,
    sha256: a.sha256,
    size: a.size,
    path: a.path,
  })),
  warnings: realizeWarnings(r.manifest),
})
