import { Effect, Schema } from "effect"
import {
  Descriptor,
  emptyConfig,
  emptyConfigDigest,
  emptyConfigMediaType,
  manifestMediaType,
} from "../cache/manifest.js"
import { makeRegistryClient } from "../cache/registryClient.js"
import { OtaVersionTakenError, type OwrtError } from "../errors.js"
import { sha256Hex } from "../text/digest.js"
import { deviceLocation, type FirmwareRegistry } from "./firmwareSource.js"

/*
 * A release as OtaFlux reads it (ota.md §2): repository `<prefix><device id>`, the version as the tag, an
 * OCI image manifest whose first layer is the raw firmware, and owrt's annotations on the manifest (profile,
 * revision, key, SHA-256, channel). A version is published once: the same bytes again are `present`, other
 * bytes are refused.
 */

export const firmwareArtifactType = "application/vnd.owrt.firmware.v1"
export const firmwareLayerMediaType = "application/vnd.owrt.firmware.v1+binary"

export const annotations = {
  version: "org.opencontainers.image.version",
  title: "org.opencontainers.image.title",
  profile: "org.owrt.profile",
  revision: "org.owrt.revision",
  key: "org.owrt.key",
  sha256: "org.owrt.sha256",
  channel: "org.owrt.channel",
  imageType: "org.owrt.image-type",
} as const

const PublishedManifest = Schema.Struct({ layers: Schema.NonEmptyArray(Descriptor) })
const decodePublished = Schema.decodeUnknownOption(Schema.parseJson(PublishedManifest))

export interface PublishInput {
  readonly registry: FirmwareRegistry
  readonly device: string
  readonly version: string
  readonly channel: string
  /** The image file, and its hex SHA-256 and size as the artifacts manifest records them. */
  readonly file: string
  readonly sha256: string
  readonly size: number
  readonly title: string
  readonly annotations: Readonly<Record<string, string>>
}

export const publishRelease = (
  input: PublishInput,
): Effect.Effect<
  { readonly status: "published" | "present"; readonly repository: string; readonly manifestDigest: string },
  OwrtError
> =>
  Effect.gen(function* () {
    const location = deviceLocation(input.registry, input.device)
    const client = makeRegistryClient({
      location,
      credentials: input.registry.credentials,
      timeoutSeconds: input.registry.timeoutSeconds,
    })
    const digest = `sha256:${input.sha256}`
    const existing = yield* client.getManifest(input.version)
    if (existing !== undefined) {
      const published = decodePublished(Buffer.from(existing).toString("utf8"))
      const layer = published._tag === "Some" ? published.value.layers[0].digest : "an unreadable manifest"
      if (layer !== digest)
        return yield* new OtaVersionTakenError({
          repository: location.url,
          version: input.version,
          published: layer,
          offered: digest,
        })
      return {
        status: "present" as const,
        repository: location.url,
        manifestDigest: `sha256:${sha256Hex(existing)}`,
      }
    }
    yield* client.ensureEmptyConfig
    yield* client.uploadBlob(digest, input.size, { file: input.file })
    const manifest = {
      schemaVersion: 2,
      mediaType: manifestMediaType,
      artifactType: firmwareArtifactType,
      config: { mediaType: emptyConfigMediaType, digest: emptyConfigDigest, size: emptyConfig.length },
      layers: [
        {
          mediaType: firmwareLayerMediaType,
          digest,
          size: input.size,
          annotations: { [annotations.title]: input.title },
        },
      ],
      annotations: {
        ...input.annotations,
        [annotations.version]: input.version,
        [annotations.sha256]: input.sha256,
        [annotations.channel]: input.channel,
      },
    }
    const bytes = new TextEncoder().encode(JSON.stringify(manifest))
    yield* client.putManifest(input.version, bytes)
    return {
      status: "published" as const,
      repository: location.url,
      manifestDigest: `sha256:${sha256Hex(bytes)}`,
    }
  })
