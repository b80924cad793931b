import { crc32 } from "node:zlib"
import { Effect, Schema } from "effect"
import { Descriptor } from "../cache/manifest.js"
import { type Credentials, makeRegistryClient, type RegistryClient } from "../cache/registryClient.js"
import type { RegistryLocation } from "../cache/registryLocation.js"
import { InternalError } from "../errors.js"
import { sha256Hex } from "../text/digest.js"
import { latestVersion, type SemVer, versionText } from "./semver.js"

/*
 * Releases as OtaFlux lays them out in an OCI registry (ota.md §2): repository `<prefix><device id>`, a tag
 * per version, the firmware the first layer of the tag's manifest, raw bytes. Tag lists are kept for a few
 * seconds (a poll does not list tags every time); blobs are kept in memory by digest under a byte bound
 * (least recently used first out), and many requests for a blob not yet here fetch it once.
 */

export interface Release {
  readonly device: string
  readonly version: string
  readonly tag: string
  /** `sha256:…` of the manifest (what a cosign signature binds). */
  readonly manifestDigest: string
  readonly layer: Descriptor
  readonly annotations: Readonly<Record<string, string>>
}

export interface Firmware {
  readonly bytes: Buffer
  /** CRC-32 (IEEE) of the bytes, unsigned: what `/version` reports, as OtaFlux does. */
  readonly crc32: number
  /** Hex SHA-256 of the bytes (the layer digest): the ETag. */
  readonly sha256: string
}

const FirmwareManifest = Schema.Struct({
  schemaVersion: Schema.Literal(2),
  layers: Schema.NonEmptyArray(Descriptor),
  annotations: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String })),
})
const decodeManifest = Schema.decodeUnknownOption(Schema.parseJson(FirmwareManifest))

/** Where releases live: a registry and the prefix before each device id. */
export interface FirmwareRegistry {
  /** `http://host:port` or `https://host:port`. */
  readonly base: string
  readonly host: string
  readonly prefix: string
  readonly credentials?: Credentials | undefined
  readonly timeoutSeconds: number
}

/** OCI repository names: lower-case path components. */
export const validDeviceId = (device: string): boolean => /^[a-z0-9]+(?:[._-][a-z0-9]+)*$/.test(device)

export const deviceLocation = (registry: FirmwareRegistry, device: string): RegistryLocation => ({
  url: `oci://${registry.host}/${registry.prefix}${device}`,
  base: registry.base,
  host: registry.host,
  repository: `${registry.prefix}${device}`,
})

export interface FirmwareSourceOptions {
  readonly registry: FirmwareRegistry
  /** Bytes of firmware kept in memory. */
  readonly cacheBytes: number
  /** How long a device's tag list is reused. */
  readonly tagTtlMs: number
}

export const makeFirmwareSource = (options: FirmwareSourceOptions) => {
  const clients = new Map<string, RegistryClient>()
  const clientOf = (device: string) => {
    let client = clients.get(device)
    if (client === undefined) {
      client = makeRegistryClient({
        location: deviceLocation(options.registry, device),
        credentials: options.registry.credentials,
        timeoutSeconds: options.registry.timeoutSeconds,
      })
      clients.set(device, client)
    }
    return client
  }

  const tagLists = new Map<string, { readonly at: number; readonly tags: ReadonlyArray<string> }>()
  const tags = (device: string) =>
    Effect.gen(function* () {
      const kept = tagLists.get(device)
      if (kept !== undefined && Date.now() - kept.at < options.tagTtlMs) return kept.tags
      const listed = yield* clientOf(device).listTags
      tagLists.set(device, { at: Date.now(), tags: listed })
      return listed
    })

  // A release's manifest, read at most once per tag-list period (a re-push under the same tag is seen then).
  const releases = new Map<string, { readonly at: number; readonly release: Release | undefined }>()

  /** The latest release of `device` on `channel`, or undefined when there is none. */
  const latest = (device: string, channel: string) =>
    Effect.gen(function* () {
      const kept = releases.get(`${device}\0${channel}`)
      if (kept !== undefined && Date.now() - kept.at < options.tagTtlMs) return kept.release
      const release = yield* readLatest(device, channel)
      releases.set(`${device}\0${channel}`, { at: Date.now(), release })
      return release
    })

  const readLatest = (device: string, channel: string) =>
    Effect.gen(function* () {
      const version: SemVer | undefined = latestVersion(yield* tags(device), channel)
      if (version === undefined) return undefined
      const bytes = yield* clientOf(device).getManifest(version.text)
      if (bytes === undefined) return undefined
      const manifest = decodeManifest(Buffer.from(bytes).toString("utf8"))
      if (manifest._tag === "None") return undefined
      const release: Release = {
        device,
        version: versionText(version),
        tag: version.text,
        manifestDigest: `sha256:${sha256Hex(bytes)}`,
        layer: manifest.value.layers[0],
        annotations: manifest.value.annotations ?? {},
      }
      return release
    })

  // Blobs by digest, least recently used first (a Map keeps insertion order; a hit moves to the end).
  const blobs = new Map<string, Firmware>()
  let held = 0
  const inFlight = new Map<string, Effect.Effect<Firmware, unknown>>()
  let fetches = 0

  const keep = (digest: string, firmware: Firmware) => {
    if (firmware.bytes.length > options.cacheBytes) return
    blobs.set(digest, firmware)
    held += firmware.bytes.length
    for (const [oldest, value] of blobs) {
      if (held <= options.cacheBytes) break
      blobs.delete(oldest)
      held -= value.bytes.length
    }
  }

  /** The release's firmware, from memory or fetched once however many ask at the same time. */
  const firmware = (release: Release) =>
    Effect.gen(function* () {
      const digest = release.layer.digest
      const hit = blobs.get(digest)
      if (hit !== undefined) {
        blobs.delete(digest)
        blobs.set(digest, hit)
        return { firmware: hit, cached: true }
      }
      let pending = inFlight.get(digest)
      if (pending === undefined) {
        const fetch = Effect.gen(function* () {
          fetches += 1
          // Streamed and checked against the layer's digest and size as it arrives (any size).
          const bytes = yield* clientOf(release.device).streamBlob(release.layer, (input) =>
            Effect.tryPromise({
              try: async () => {
                const chunks: Array<Buffer> = []
                for await (const chunk of input) chunks.push(chunk as Buffer)
                return Buffer.concat(chunks)
              },
              catch: (cause) => new InternalError({ cause }),
            }),
          )
          const got: Firmware = { bytes, crc32: crc32(bytes) >>> 0, sha256: digest.slice("sha256:".length) }
          keep(digest, got)
          return got
        }).pipe(Effect.ensuring(Effect.sync(() => inFlight.delete(digest))))
        pending = yield* Effect.cached(fetch)
        inFlight.set(digest, pending)
      }
      return { firmware: (yield* pending) as Firmware, cached: false }
    })

  return {
    latest,
    firmware,
    /** Forgets a device's tag list (a registry webhook says it changed). */
    forget: (device: string) => {
      tagLists.delete(device)
      for (const key of releases.keys()) if (key.startsWith(`${device}\0`)) releases.delete(key)
    },
    /** Firmware blobs held in memory. */
    entries: () => blobs.size,
    /** Registry blob downloads so far. */
    fetches: () => fetches,
  }
}

export type FirmwareSource = ReturnType<typeof makeFirmwareSource>
