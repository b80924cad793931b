import type { KeyObject } from "node:crypto"
import { crc32 } from "node:zlib"
import { Effect, Schema } from "effect"
import { Descriptor } from "../cache/manifest.js"
import { type Credentials, makeRegistryClient, type RegistryClient } from "../cache/registryClient.js"
import type { RegistryLocation } from "../cache/registryLocation.js"
import { InternalError, OtaSignatureError, type OwrtError } from "../errors.js"
import { sha256Hex } from "../text/digest.js"
import { verifyRelease } from "./cosign.js"
import { latestVersion, parseSemVer, type SemVer, versionText } from "./semver.js"

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

/**
 * Where releases are read from: an OCI registry (`registryReleases`) or the releases `owrt publish` recorded
 * for the local store (operations/ota.ts). A backend lists a device's versions, reads one release, and reads
 * its firmware bytes (checked against the release's digest).
 */
export interface ReleaseBackend {
  readonly versions: (device: string) => Effect.Effect<ReadonlyArray<string>, OwrtError>
  readonly release: (device: string, tag: string) => Effect.Effect<Release | undefined, OwrtError>
  readonly bytes: (release: Release) => Effect.Effect<Buffer, OwrtError>
  /** Fails unless `release` carries a valid signature (cosign, registry releases with a public key). */
  readonly verify?: ((release: Release) => Effect.Effect<void, OwrtError>) | undefined
}

/** Releases in an OCI registry, as OtaFlux lays them out; verified with `publicKey` when one is given. */
export const registryReleases = (registry: FirmwareRegistry, publicKey?: KeyObject): ReleaseBackend => {
  const clients = new Map<string, RegistryClient>()
  const clientOf = (device: string) => {
    let client = clients.get(device)
    if (client === undefined) {
      client = makeRegistryClient({
        location: deviceLocation(registry, device),
        credentials: registry.credentials,
        timeoutSeconds: registry.timeoutSeconds,
      })
      clients.set(device, client)
    }
    return client
  }
  return {
    versions: (device) => clientOf(device).listTags,
    release: (device, tag) =>
      Effect.gen(function* () {
        const bytes = yield* clientOf(device).getManifest(tag)
        if (bytes === undefined) return undefined
        const manifest = decodeManifest(Buffer.from(bytes).toString("utf8"))
        if (manifest._tag === "None") return undefined
        const version = parseSemVer(tag)
        const release: Release = {
          device,
          version: version === undefined ? tag : versionText(version),
          tag,
          manifestDigest: `sha256:${sha256Hex(bytes)}`,
          layer: manifest.value.layers[0],
          annotations: manifest.value.annotations ?? {},
        }
        return release
      }),
    // Streamed and checked against the layer's digest and size as it arrives (any size).
    bytes: (release) =>
      clientOf(release.device).streamBlob(release.layer, (input) =>
        Effect.tryPromise({
          try: async () => {
            const chunks: Array<Buffer> = []
            for await (const chunk of input) chunks.push(chunk as Buffer)
            return Buffer.concat(chunks)
          },
          catch: (cause) => new InternalError({ cause }),
        }),
      ),
    verify:
      publicKey === undefined
        ? undefined
        : (release) =>
            verifyRelease(
              clientOf(release.device),
              publicKey,
              `${deviceLocation(registry, release.device).url}:${release.tag}`,
              release.manifestDigest,
            ),
  }
}

export interface FirmwareSourceOptions {
  readonly backend: ReleaseBackend
  /** Bytes of firmware kept in memory. */
  readonly cacheBytes: number
  /** How long a device's tag list is reused. */
  readonly tagTtlMs: number
  /** Told of every release whose signature check failed (once per check, not per poll). */
  readonly onSignatureFailure?: ((release: Release, error: OwrtError) => void) | undefined
}

/** A release that may not be served: its signature check failed. */
export interface RefusedRelease {
  readonly _tag: "refused"
  readonly release: Release
  readonly error: OwrtError
}

export const isRefused = (latest: Release | RefusedRelease | undefined): latest is RefusedRelease =>
  latest !== undefined && "error" in latest

export const makeFirmwareSource = (options: FirmwareSourceOptions) => {
  const backend = options.backend
  const tagLists = new Map<string, { readonly at: number; readonly tags: ReadonlyArray<string> }>()
  const tags = (device: string) =>
    Effect.gen(function* () {
      const kept = tagLists.get(device)
      if (kept !== undefined && Date.now() - kept.at < options.tagTtlMs) return kept.tags
      const listed = yield* backend.versions(device)
      tagLists.set(device, { at: Date.now(), tags: listed })
      return listed
    })

  // A release's manifest (and its signature check), read at most once per tag-list period (a re-push under
  // the same tag is seen then).
  type Latest = Release | RefusedRelease | undefined
  const releases = new Map<string, { readonly at: number; readonly release: Latest }>()

  /**
   * The latest release of `device` on `channel`: undefined when there is none, `refused` when its signature
   * check failed (it is not served, and nothing older is offered in its place).
   */
  const latest = (device: string, channel: string): Effect.Effect<Latest, OwrtError> =>
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
      const release = yield* backend.release(device, version.text)
      if (release === undefined || backend.verify === undefined) return release
      const checked = yield* Effect.either(backend.verify(release))
      if (checked._tag === "Right") return release
      // Registry failures while checking are not a verdict on the release: they fail the request.
      if (!(checked.left instanceof OtaSignatureError)) return yield* Effect.fail(checked.left)
      options.onSignatureFailure?.(release, checked.left)
      return { _tag: "refused", release, error: checked.left } satisfies RefusedRelease
    })

  // Blobs by digest, least recently used first (a Map keeps insertion order; a hit moves to the end).
  const blobs = new Map<string, Firmware>()
  let held = 0
  const inFlight = new Map<string, Effect.Effect<Firmware, OwrtError>>()
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
          const bytes = yield* backend.bytes(release)
          const got: Firmware = { bytes, crc32: crc32(bytes) >>> 0, sha256: digest.slice("sha256:".length) }
          keep(digest, got)
          return got
        }).pipe(Effect.ensuring(Effect.sync(() => inFlight.delete(digest))))
        pending = yield* Effect.cached(fetch)
        inFlight.set(digest, pending)
      }
      return { firmware: yield* pending, cached: false }
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
