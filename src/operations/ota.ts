import { existsSync, readFileSync } from "node:fs"
import { readFile } from "node:fs/promises"
import { join } from "node:path"
import { type Context, Effect, Schema } from "effect"
import { makeRegistryClient } from "../cache/registryClient.js"
import { AppConfig, type ResolvedConfig } from "../config/appConfig.js"
import { OtaRecords } from "../db/otaRecords.js"
import type { Database } from "../db/records.js"
import { databaseContext } from "../db/records.js"
import {
  InternalError,
  NotFoundError,
  OtaSignatureError,
  OtaVersionTakenError,
  type OwrtError,
  UsageError,
} from "../errors.js"
import { readManifest } from "../graph/kinds/collectArtifactsNode.js"
import { Realizer } from "../graph/realizer.js"
import { generateCosignKeyPair, parsePrivateKey, parsePublicKey, signRelease } from "../ota/cosign.js"
import {
  deviceLocation,
  type FirmwareSource,
  isRefused,
  makeFirmwareSource,
  type Release,
  type ReleaseBackend,
  registryReleases,
  validDeviceId,
} from "../ota/firmwareSource.js"
import { type MqttSettings, noticeTopic, notifyRelease } from "../ota/notify.js"
import { firmwareRegistry } from "../ota/otaRegistry.js"
import { annotations, firmwareLayerMediaType, publishRelease } from "../ota/publishRelease.js"
import { compareSemVer, parseSemVer } from "../ota/semver.js"
import { readSecret } from "../profile/secrets.js"
import { lookupNode, storePathName } from "../store/nodeStore.js"
import { sha256Hex } from "../text/digest.js"
import { writeKeyFiles } from "./keyFiles.js"
import { defineOperation } from "./operation.js"
import { ProfileSpecSchema } from "./revision.js"
import { NoParams } from "./schemaTypes.js"

/*
 * OTA releases (docs/ota.md): `otaPublish` pushes a realized profile's image to the OTA registry as
 * OtaFlux lays it out. Serving them is `owrt ota serve` (src/web/ota).
 */

/** The image a device installs by default: OpenWrt's sysupgrade image, else the only one, else `sdcard`. */
const defaultImageTypes = ["sysupgrade", "sdcard", "combined"]

const KeygenParams = Schema.Struct({
  name: Schema.String.annotations({ description: "Key name, e.g. releases (letters, digits, . _ -)" }),
  directory: Schema.optional(Schema.String.annotations({ description: "Where to write (default: here)" })),
})

/** Writes a new release signing key pair; needs neither the store nor the database. */
export const writeOtaKeyPair = (params: typeof KeygenParams.Type) =>
  Effect.map(
    writeKeyFiles(params, ".key", () => {
      const pair = generateCosignKeyPair()
      return { secret: pair.privateKey, public: pair.publicKey }
    }),
    (made) => ({
      name: params.name,
      privateKeyFile: made.secretFile,
      publicKeyFile: made.publicFile,
      publicKey: made.public,
    }),
  )

export const otaKeygen = defineOperation({
  name: "otaKeygen",
  description:
    "Make an ECDSA P-256 key pair for signing OTA releases cosign-style: NAME.key (PKCS#8 PEM, mode 0600) and NAME.pub",
  readOnly: false,
  idempotent: false,
  params: KeygenParams,
  result: Schema.Struct({
    name: Schema.String,
    privateKeyFile: Schema.String,
    publicKeyFile: Schema.String,
    publicKey: Schema.String,
  }),
  run: writeOtaKeyPair,
})

/** The repository name under which releases kept in the local store are recorded. */
export const localRepository = (device: string) => `local/${device}`

/**
 * A release without a registry: recorded for `owrt ota serve` to serve from this store. A version is kept once
 * per device, as in a registry.
 */
const keepLocalRelease = (device: string, version: string, sha256: string) =>
  Effect.gen(function* () {
    const repository = localRepository(device)
    const existing = (yield* OtaRecords.releasesOf(repository)).find((r) => r.version === version)
    if (existing !== undefined && existing.sha256 !== sha256)
      return yield* new OtaVersionTakenError({
        repository,
        version,
        published: `sha256:${existing.sha256}`,
        offered: `sha256:${sha256}`,
      })
    return {
      status: existing === undefined ? ("published" as const) : ("present" as const),
      repository,
      manifestDigest: null,
      signature: { status: "off" as const, tag: null },
    }
  })

/** The signing key named by `reference` (`file:` or `env:`), a PEM ECDSA P-256 private key. */
const readOtaSigningKey = (config: ResolvedConfig, reference: string) =>
  Effect.gen(function* () {
    const text = yield* readSecret({
      profile: "graph.config.ts",
      name: "ota.signingKey",
      field: "ota.signingKey",
      reference,
      baseDir: config.projectRoot,
      env: process.env,
    })
    return yield* parsePrivateKey(text, reference)
  })

/** `ota.mqtt` of the configuration, its password read from its reference; undefined when none. */
const configuredMqtt = (config: ResolvedConfig): Effect.Effect<MqttSettings | undefined, OwrtError> =>
  Effect.gen(function* () {
    const mqtt = config.ota.mqtt
    if (mqtt === null) return undefined
    const password =
      mqtt.password === null
        ? undefined
        : yield* readSecret({
            profile: "graph.config.ts",
            name: "ota.mqtt.password",
            field: "ota.mqtt.password",
            reference: mqtt.password,
            baseDir: config.projectRoot,
            env: process.env,
          })
    return {
      url: mqtt.url,
      topic: mqtt.topic,
      username: mqtt.username ?? undefined,
      password,
      ca: mqtt.ca ?? undefined,
      cert: mqtt.cert ?? undefined,
      key: mqtt.key ?? undefined,
    }
  })

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
    registry: Schema.optional(
      Schema.String.annotations({
        description:
          "oci://host[:port] (default: ota.registry; none: the release is kept in the local store)",
      }),
    ),
    prefix: Schema.optional(
      Schema.String.annotations({ description: "Repository prefix (default: ota.prefix)" }),
    ),
    signingKey: Schema.optional(
      Schema.String.annotations({
        description: "PEM ECDSA P-256 key by reference, file:PATH or env:NAME (default: ota.signingKey)",
      }),
    ),
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
    manifestDigest: Schema.NullOr(Schema.String).annotations({
      description:
        "The release manifest's digest in the registry; null for a release kept in the local store",
    }),
    status: Schema.Literal("published", "present"),
    signature: Schema.Struct({
      status: Schema.Literal("signed", "present", "off"),
      tag: Schema.NullOr(Schema.String),
    }).annotations({
      description:
        "The cosign signature (tag sha256-<digest>.sig): signed now, present already, or off (no signing key, or a local release)",
    }),
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
      // The broker's settings (and its password) are read before anything is published.
      const mqtt = params.mqtt ?? (yield* configuredMqtt(config))
      const registryUrl = params.registry ?? config.ota.registry
      const releaseAnnotations = {
        [annotations.profile]: stored.profile,
        [annotations.revision]: manifest.revision,
        [annotations.key]: stored.key,
        [annotations.imageType]: image.type,
      }
      const database = yield* databaseContext
      const published =
        registryUrl === null
          ? yield* keepLocalRelease(device, params.version, image.sha256).pipe(Effect.provide(database))
          : yield* Effect.gen(function* () {
              const registry = yield* firmwareRegistry(
                config,
                registryUrl,
                params.prefix ?? config.ota.prefix,
              )
              const reference = params.signingKey ?? config.ota.signingKey
              // The key is read before anything is pushed: a bad key publishes nothing.
              const key = reference === null ? undefined : yield* readOtaSigningKey(config, reference)
              const pushed = yield* publishRelease({
                registry,
                device,
                version: params.version,
                channel,
                file,
                sha256: image.sha256,
                size: image.size,
                title: image.name,
                annotations: releaseAnnotations,
              })
              const signature =
                key === undefined
                  ? { status: "off" as const, tag: null }
                  : yield* signRelease(
                      makeRegistryClient({
                        location: deviceLocation(registry, device),
                        credentials: registry.credentials,
                        timeoutSeconds: registry.timeoutSeconds,
                      }),
                      key,
                      pushed.manifestDigest,
                    )
              return { ...pushed, signature }
            })
      yield* Effect.provide(
        OtaRecords.recordRelease({
          repository: published.repository,
          version: params.version,
          device,
          channel,
          manifest_digest: published.manifestDigest ?? "",
          sha256: image.sha256,
          size: image.size,
          image: image.name,
          profile: stored.profile,
          revision: manifest.revision,
          artifacts_key: stored.key,
          published_at: new Date().toISOString(),
        }),
        database,
      )
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
        signature: published.signature,
      }
    }),
})

/**
 * Releases `owrt publish` kept in the local store (no registry): the rows recorded for `local/<device>`, their
 * image read from the artifact set's store path and checked against the recorded SH-256 and size.
 */
const localReleases = (store: string, database: Context.Context<Database>): ReleaseBackend => {
  const rows = (device: string) => Effect.provide(OtaRecords.releasesOf(localRepository(device)), database)
  return {
    versions: (device) => Effect.map(rows(device), (found) => found.map((r) => r.version)),
    release: (device, tag) =>
      Effect.map(rows(device), (found): Release | undefined => {
        const row = found.find((r) => r.version === tag)
        if (row === undefined) return undefined
        return {
          device,
          version: row.version,
          tag: row.version,
          manifestDigest: "",
          layer: { mediaType: firmwareLayerMediaType, digest: `sha256:${row.sha256}`, size: row.size },
          annotations: {
            [annotations.channel]: row.channel,
            [annotations.profile]: row.profile,
            [annotations.revision]: row.revision,
            [annotations.key]: row.artifacts_key,
            [annotations.title]: row.image,
          },
        }
      }),
    bytes: (release) =>
      Effect.gen(function* () {
        const key = release.annotations[annotations.key] ?? ""
        const image = release.annotations[annotations.title] ?? ""
        const found = yield* Effect.provide(lookupNode(store, key), database)
        const what = `the image of ${release.device} ${release.version} (${image})`
        if (found === undefined)
          return yield* new NotFoundError({
            what,
            detail: `its artifact set ${key} is no longer in the store (realize the profile again)`,
          })
        const file = join(store, storePathName(key, found.name), "images", image)
        // Read off the event loop: a poll for another device is answered meanwhile.
        const bytes = yield* Effect.tryPromise({
          try: () => readFile(file),
          catch: (cause) => new InternalError({ cause }),
        })
        if (bytes.length !== release.layer.size || `sha256:${sha256Hex(bytes)}` !== release.layer.digest)
          return yield* new NotFoundError({
            what,
            detail: `${file} is not the published image any more (run \`owrt store verify\`)`,
          })
        return bytes
      }),
  }
}

/** The public key served registry releases must be signed with (a PEM file). */
const readPublicKey = (file: string) =>
  Effect.flatMap(
    Effect.try({
      try: () => readFileSync(file, "utf8"),
      catch: (cause) =>
        new OtaSignatureError({
          kind: "key_invalid",
          subject: file,
          detail: `cannot be read (${(cause as Error).message})`,
        }),
    }),
    (pem) => parsePublicKey(pem, file),
  )

/**
 * What the OTA server answers from: the registry's releases (checked against the public key when one is
 * configured), or, without a registry, the releases kept in the local store; with the in-memory cache.
 */
export const openFirmwareSource = (options: {
  readonly registry?: string | undefined
  readonly prefix?: string | undefined
  /** PEM file of the public key registry releases must be signed with. */
  readonly publicKey?: string | undefined
  readonly cacheBytes: number
  readonly tagTtlSeconds: number
  readonly onSignatureFailure?: ((release: Release, error: OwrtError) => void) | undefined
}) =>
  Effect.gen(function* () {
    const config = yield* AppConfig
    const url = options.registry ?? config.ota.registry
    const publicKeyFile = options.publicKey ?? config.ota.publicKey
    const backend =
      url === null
        ? localReleases(config.store, yield* databaseContext)
        : registryReleases(
            yield* firmwareRegistry(config, url, options.prefix ?? config.ota.prefix),
            publicKeyFile === null ? undefined : yield* readPublicKey(publicKeyFile),
          )
    const source = makeFirmwareSource({
      backend,
      cacheBytes: options.cacheBytes,
      tagTtlMs: options.tagTtlSeconds * 1000,
      onSignatureFailure: options.onSignatureFailure,
    })
    return {
      source,
      from: url === null ? `the local store ${config.store}` : url,
      verified: url !== null && publicKeyFile !== null,
    }
  })

/** The MQTT broker of the configuration (`ota.mqtt`), its password read; undefined when none. */
export const otaNotices = Effect.flatMap(AppConfig, configuredMqtt)

/** How many releases this database records as published. */
export const publishedReleases = Effect.flatMap(databaseContext, (database) =>
  Effect.map(Effect.provide(OtaRecords.releases(), database), (rows) => rows.length),
)

/** Whether a device reporting `current` runs `latest` or newer (both semantic versions). */
export const isUpToDate = (current: string | undefined, latest: string): boolean => {
  if (current === undefined) return false
  const a = parseSemVer(current)
  const b = parseSemVer(latest)
  return a !== undefined && b !== undefined && compareSemVer(a, b) >= 0
}

export { type FirmwareSource, isRefused, type MqttSettings, parseSemVer, validDeviceId }

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
    // A release that may not be served is not announced either.
    if (isRefused(release)) return yield* Effect.fail(release.error)
    yield* notifyRelease(mqtt, {
      device,
      version: release.version,
      size: release.layer.size,
      sha256: release.layer.digest.replace(/^sha256:/, ""),
      channel: release.annotations["org.owrt.channel"] ?? "stable",
    })
    return "sent" as const
  })
