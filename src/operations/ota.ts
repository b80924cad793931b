import { existsSync } from "node:fs"
import { join } from "node:path"
import { Effect, Schema } from "effect"
import { AppConfig } from "../config/appConfig.js"
import { OtaRecords } from "../db/otaRecords.js"
import { databaseContext } from "../db/records.js"
import { NotFoundError, type OwrtError, UsageError } from "../errors.js"
import { readManifest } from "../graph/kinds/collectArtifactsNode.js"
import { Realizer } from "../graph/realizer.js"
import { type FirmwareSource, makeFirmwareSource, validDeviceId } from "../ota/firmwareSource.js"
import { type MqttSettings, noticeTopic, notifyRelease } from "../ota/notify.js"
import { firmwareRegistry } from "../ota/otaRegistry.js"
import { annotations, publishRelease } from "../ota/publishRelease.js"
import { compareSemVer, parseSemVer } from "../ota/semver.js"
import { defineOperation } from "./operation.js"
import { ProfileSpecSchema } from "./revision.js"
import { NoParams } from "./schemaTypes.js"

/*
 * OTA releases (docs/ota.md): `otaPublish` pushes a realized profile's image to the OTA registry as
 * OtaFlux lays it out. Serving them is `owrt ota serve` (src/web/ota).
 */

/** The image a device installs by default: OpenWrt's sysupgrade image, else the only one, else `sdcard`. */
const defaultImageTypes = ["sysupgrade", "sdcard", "combined"]

export const otaPublish = defineOperation({
  name: "otaPublish",
  description:
    "Publish a realized profile's image as an OTA release: repository <prefix><device>, tag = version, first layer = the image",
  readOnly: false,
  idempotent: true,
  params: Schema.Struct({
    profile: ProfileSpecSchema,
    version: Schema.String.annotations({ description: "Semantic version, e.g. 1.4.0 or 1.5.0-beta.1" }),
    channel: Schema.optional(Schema.String.annotations({ description: "Channel (default stable)" })),
    image: Schema.optional(Schema.String.annotations({ description: "Image type (default: sysupgrade)" })),
    device: Schema.optional(
      Schema.String.annotations({ description: "Device id (default: the profile id)" }),
    ),
    registry: Schema.String.annotations({ description: "oci://host[:port]" }),
    prefix: Schema.optional(Schema.String.annotations({ description: "Repository prefix" })),
    mqtt: Schema.optional(
      Schema.Struct({
        url: Schema.String.annotations({ description: "mqtt[s]://host:port" }),
        topic: Schema.String,
        username: Schema.optional(Schema.String),
        password: Schema.optional(Schema.String),
        ca: Schema.optional(Schema.String),
        cert: Schema.optional(Schema.String),
        key: Schema.optional(Schema.String),
      }).annotations({ description: "Where the release notice goes (none: no notice)" }),
    ),
  }),
  result: Schema.Struct({
    profile: Schema.String,
    rev: Schema.Number,
    device: Schema.String,
    version: Schema.String,
    channel: Schema.String,
    image: Schema.String,
    sha256: Schema.String,
    size: Schema.Number,
    repository: Schema.String,
    manifestDigest: Schema.String,
    status: Schema.Literal("published", "present"),
    notice: Schema.Struct({
      status: Schema.Literal("sent", "off", "failed"),
      topic: Schema.NullOr(Schema.String),
      error: Schema.NullOr(Schema.String),
    }).annotations({
      description:
        "The MQTT notice (retained, QoS 1): sent, off (no broker configured) or failed (the release is published all the same)",
    }),
  }),
  run: (params) =>
    Effect.gen(function* () {
      const config = yield* AppConfig
      const version = parseSemVer(params.version)
      if (version === undefined)
        return yield* new UsageError({
          detail: `\`${params.version}\` is not a semantic version (1.4.0, 1.5.0-beta.1)`,
        })
      const channel = params.channel ?? "stable"
      if (!/^[a-z0-9][a-z0-9-]*$/.test(channel))
        return yield* new UsageError({
          detail: `\`${channel}\` is not a channel name (lower-case letters, digits, -)`,
        })
      if (version.prerelease.length > 0 && channel !== version.prerelease[0])
        return yield* new UsageError({
          detail: `${params.version} is a pre-release of channel \`${version.prerelease[0]}\`: publish it with --channel ${version.prerelease[0]}`,
        })
      const stored = yield* (yield* Realizer).storedResult(params.profile)
      const device = params.device ?? stored.profile
      if (!validDeviceId(device))
        return yield* new UsageError({
          detail: `\`${device}\` is not a device id (lower-case letters, digits, . _ -)`,
        })
      const manifest = yield* readManifest(stored.path)
      const image =
        params.image === undefined
          ? (defaultImageTypes
              .map((t) => manifest.images.find((i) => i.type === t))
              .find((i) => i !== undefined) ??
            (manifest.images.length === 1 ? manifest.images[0] : undefined))
          : manifest.images.find((i) => i.type === params.image)
      if (image === undefined)
        return yield* new NotFoundError({
          what: `image ${params.image ?? "sysupgrade"} of ${stored.profile}@${stored.rev}`,
          detail: `its images: ${manifest.images.map((i) => i.type).join(", ")} (choose one with --image)`,
        })
      const file = join(stored.path, "images", image.name)
      if (!existsSync(file))
        return yield* new NotFoundError({
          what: file,
          detail: "the store path lacks it: run `owrt store verify`",
        })
      const registry = yield* firmwareRegistry(config, params.registry, params.prefix ?? "")
      const published = yield* publishRelease({
        registry,
        device,
        version: params.version,
        channel,
        file,
        sha256: image.sha256,
        size: image.size,
        title: image.name,
        annotations: {
          [annotations.profile]: stored.profile,
          [annotations.revision]: manifest.revision,
          [annotations.key]: stored.key,
          [annotations.imageType]: image.type,
        },
      })
      yield* Effect.provide(
        OtaRecords.recordRelease({
          repository: published.repository,
          version: params.version,
          device,
          channel,
          manifest_digest: published.manifestDigest,
          sha256: image.sha256,
          size: image.size,
          image: image.name,
          profile: stored.profile,
          revision: manifest.revision,
          artifacts_key: stored.key,
          published_at: new Date().toISOString(),
        }),
        yield* databaseContext,
      )
      const mqtt = params.mqtt
      const notice =
        mqtt === undefined
          ? { status: "off" as const, topic: null, error: null }
          : yield* notifyRelease(mqtt, {
              device,
              version: params.version,
              size: image.size,
              sha256: image.sha256,
              channel,
            }).pipe(
              Effect.as({ status: "sent" as const, topic: noticeTopic(mqtt, device), error: null }),
              Effect.catchAll((error) =>
                Effect.succeed({
                  status: "failed" as const,
                  topic: noticeTopic(mqtt, device),
                  error: error.message,
                }),
              ),
            )
      return {
        notice,
        profile: stored.profile,
        rev: stored.rev,
        device,
        version: params.version,
        channel,
        image: image.name,
        sha256: image.sha256,
        size: image.size,
        repository: published.repository,
        manifestDigest: published.manifestDigest,
        status: published.status,
      }
    }),
})

/** What the OTA server answers from: the registry's releases, with their in-memory cache. */
export const openFirmwareSource = (options: {
  readonly registry: string
  readonly prefix: string
  readonly cacheBytes: number
  readonly tagTtlSeconds: number
}): Effect.Effect<FirmwareSource, OwrtError, AppConfig> =>
  Effect.gen(function* () {
    const config = yield* AppConfig
    const registry = yield* firmwareRegistry(config, options.registry, options.prefix)
    return makeFirmwareSource({
      registry,
      cacheBytes: options.cacheBytes,
      tagTtlMs: options.tagTtlSeconds * 1000,
    })
  })

/** Whether a device reporting `current` runs `latest` or newer (both semantic versions). */
export const isUpToDate = (current: string | undefined, latest: string): boolean => {
  if (current === undefined) return false
  const a = parseSemVer(current)
  const b = parseSemVer(latest)
  return a !== undefined && b !== undefined && compareSemVer(a, b) >= 0
}

export { type FirmwareSource, type MqttSettings, parseSemVer, validDeviceId }

/** A device's report (`current=` on a poll): recorded for `owrt ota devices`. */
export const recordDeviceReport = (report: {
  readonly device: string
  readonly version: string
  readonly channel: string
  readonly latest: string | null
  readonly address: string | null
}) =>
  Effect.flatMap(databaseContext, (database) =>
    OtaRecords.recordDevice({
      ...report,
      upToDate: report.latest !== null && isUpToDate(report.version, report.latest),
    }).pipe(Effect.provide(database)),
  )

const DeviceSchema = Schema.Struct({
  device: Schema.String,
  version: Schema.String.annotations({ description: "What the device last reported with current=" }),
  channel: Schema.String,
  latest: Schema.NullOr(Schema.String).annotations({ description: "The latest release it was offered then" }),
  upToDate: Schema.Boolean,
  address: Schema.NullOr(Schema.String),
  firstSeen: Schema.String,
  lastSeen: Schema.String,
})

export const otaDevices = defineOperation({
  name: "otaDevices",
  description:
    "The devices owrt ota serve heard from: the version each runs (current=), on which channel, when last seen",
  readOnly: true,
  params: NoParams,
  result: Schema.Struct({ devices: Schema.Array(DeviceSchema) }),
  run: () =>
    Effect.gen(function* () {
      const rows = yield* Effect.provide(OtaRecords.devices(), yield* databaseContext)
      return {
        devices: rows.map((r) => ({
          device: r.device,
          version: r.version,
          channel: r.channel,
          latest: r.latest,
          upToDate: r.up_to_date === 1,
          address: r.address,
          firstSeen: r.first_seen,
          lastSeen: r.last_seen,
        })),
      }
    }),
})

/**
 * After a registry push (the Harbor webhook): the device's latest release on the stable channel, announced
 * over MQTT as `owrt publish` announces it. Nothing to announce is not an error.
 */
export const announceLatest = (
  source: FirmwareSource,
  mqtt: MqttSettings,
  device: string,
): Effect.Effect<"sent" | "none", OwrtError> =>
  Effect.gen(function* () {
    source.forget(device)
    const release = yield* source.latest(device, "stable")
    if (release === undefined) return "none" as const
    yield* notifyRelease(mqtt, {
      device,
      version: release.version,
      size: release.layer.size,
      sha256: release.layer.digest.replace(/^sha256:/, ""),
      channel: release.annotations["org.owrt.channel"] ?? "stable",
    })
    return "sent" as const
  })
