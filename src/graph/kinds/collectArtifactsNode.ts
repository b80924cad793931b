import { readFileSync } from "node:fs"
import { join } from "node:path"
import { Effect, Schema } from "effect"
import {
  type ArtifactsManifest,
  ArtifactsManifestSchema,
  artifactsManifestName,
  collectArtifactsSchema,
  runCollectArtifacts,
} from "../../artifacts/collectArtifacts.js"
import { ArtifactRecords } from "../../db/artifactRecords.js"
import { InternalError } from "../../errors.js"
import type { NodeKindDefinition } from "../../store/nodeKind.js"
import { makeSpec, type NodeSpec } from "../graph.js"

/*
 * collect-artifacts: make-image's output verified against its own sha256sums and profiles.json, every
 * image classified, the package manifest and SBOM kept, and the owrt manifest written. Keyed by the
 * make-image key alone: everything else it records follows from it.
 */
export const collectArtifactsKind: NodeKindDefinition = {
  kind: "collect-artifacts",
  schema: collectArtifactsSchema,
  description: "the verified artifact set: images with type, filesystem, SHA-256 and size; manifest; SBOM",
  slot: "none",
  digest: "content",
  rebuildable: true,
  audited: true,
}

export const collectArtifactsNode = (inputs: {
  readonly imageKey: string
  readonly profile: string
  readonly private: boolean
  /** The owrt manifest's fields that do not come from the images: profile, revision, inputs, builder, keys. */
  readonly manifest: (key: string) => Omit<ArtifactsManifest, "images" | "packages" | "sbom">
}): Effect.Effect<NodeSpec> =>
  makeSpec({
    kind: collectArtifactsKind,
    name: `${inputs.profile}-artifacts`,
    deps: [inputs.imageKey],
    keyInputs: { image: inputs.imageKey },
    private: inputs.private,
    build: ({ key, output, inputs: stored }) =>
      Effect.asVoid(
        runCollectArtifacts({
          imagePath: stored.get(inputs.imageKey)?.path ?? "",
          output,
          manifest: inputs.manifest(key),
        }),
      ),
    // The artifact rows `owrt builds`, flash and the API look images up by.
    stored: (stored) =>
      Effect.flatMap(readManifest(stored.path), (manifest) =>
        ArtifactRecords.record(stored.key, manifest.images),
      ),
  })

const decodeManifest = Schema.decodeUnknown(Schema.parseJson(ArtifactsManifestSchema))

/** The owrt manifest of a stored artifact set, decoded with its Schema: a store file is read back, not trusted. */
export const readManifest = (path: string): Effect.Effect<ArtifactsManifest, InternalError> =>
  Effect.try({
    try: () => readFileSync(join(path, artifactsManifestName), "utf8"),
    catch: (cause) => new InternalError({ cause }),
  }).pipe(
    Effect.flatMap((text) =>
      decodeManifest(text).pipe(
        Effect.mapError(
          (cause) =>
            new InternalError({
              cause: `${join(path, artifactsManifestName)} is not an owrt manifest: ${cause.message}`,
            }),
        ),
      ),
    ),
  )
