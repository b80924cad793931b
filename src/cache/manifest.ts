import { Schema } from "effect"
import type { Fingerprinted } from "./signing.js"

/*
 * A store path as an OCI artifact (docs/cache.md): one image manifest tagged with the node key,
 * `artifactType: application/vnd.owrt.node.v1`, the empty config, and two layers — the path's content as a
 * deterministic tar, then a small JSON metadata layer (kind, key, key inputs, tree digest, artifacts). The
 * signature over the fingerprint (key, kind, tree digest, layer digests) is a manifest annotation.
 */

export const artifactType = "application/vnd.owrt.node.v1"
export const manifestMediaType = "application/vnd.oci.image.manifest.v1+json"
export const emptyConfigMediaType = "application/vnd.oci.empty.v1+json"
export const treeLayerMediaType = "application/vnd.owrt.node.tree.v1.tar"
export const metadataLayerMediaType = "application/vnd.owrt.node.metadata.v1+json"
/** The empty config blob is the two bytes `{}`. */
export const emptyConfig = new TextEncoder().encode("{}")
export const emptyConfigDigest = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"

export const annotation = {
  key: "org.owrt.node.key",
  kind: "org.owrt.node.kind",
  treeDigest: "org.owrt.node.tree-digest",
  signature: "org.owrt.node.signature",
} as const

const Digest = Schema.String.pipe(Schema.pattern(/^sha256:[0-9a-f]{64}$/))

export const Descriptor = Schema.Struct({
  mediaType: Schema.String,
  digest: Digest,
  size: Schema.Number.pipe(Schema.int(), Schema.nonNegative()),
  annotations: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String })),
})
export type Descriptor = typeof Descriptor.Type

export const NodeManifest = Schema.Struct({
  schemaVersion: Schema.Literal(2),
  mediaType: Schema.Literal(manifestMediaType),
  artifactType: Schema.Literal(artifactType),
  config: Descriptor,
  layers: Schema.Array(Descriptor).pipe(Schema.minItems(2)),
  annotations: Schema.Struct({
    [annotation.key]: Schema.String,
    [annotation.kind]: Schema.String,
    [annotation.treeDigest]: Schema.String,
    [annotation.signature]: Schema.optional(Schema.String),
  }),
})
export type NodeManifest = typeof NodeManifest.Type

/** The JSON metadata layer. */
export const NodeMetadata = Schema.Struct({
  version: Schema.Literal(1),
  key: Schema.String,
  kind: Schema.String,
  keyInputs: Schema.Unknown,
  treeDigest: Schema.String,
  artifacts: Schema.Array(Schema.Struct({ path: Schema.String, sha256: Schema.String, size: Schema.Number })),
})
export type NodeMetadata = typeof NodeMetadata.Type

/** What the signature covers, read from a manifest (the layers in their order). */
export const fingerprintOf = (manifest: NodeManifest): Fingerprinted => ({
  key: manifest.annotations[annotation.key],
  kind: manifest.annotations[annotation.kind],
  treeDigest: manifest.annotations[annotation.treeDigest],
  layerDigests: manifest.layers.map((layer) => layer.digest),
})

export const makeManifest = (input: {
  readonly key: string
  readonly kind: string
  readonly treeDigest: string
  readonly tree: { readonly digest: string; readonly size: number }
  readonly metadata: { readonly digest: string; readonly size: number }
  readonly signature?: string | undefined
}): NodeManifest => ({
  schemaVersion: 2,
  mediaType: manifestMediaType,
  artifactType,
  config: { mediaType: emptyConfigMediaType, digest: emptyConfigDigest, size: emptyConfig.length },
  layers: [
    { mediaType: treeLayerMediaType, digest: input.tree.digest, size: input.tree.size },
    { mediaType: metadataLayerMediaType, digest: input.metadata.digest, size: input.metadata.size },
  ],
  annotations: {
    [annotation.key]: input.key,
    [annotation.kind]: input.kind,
    [annotation.treeDigest]: input.treeDigest,
    ...(input.signature === undefined ? {} : { [annotation.signature]: input.signature }),
  },
})
