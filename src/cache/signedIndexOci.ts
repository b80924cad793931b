import { Effect, Layer, Option, Schema } from "effect"
import { noSignedIndexCacheService, SignedIndexCache } from "../builder/signedIndexCache.js"
import type { SignedSums } from "../builder/upstream.js"
import { AppConfig } from "../config/appConfig.js"
import { WarningCode } from "../errors.js"
import { SubstituteRun } from "../graph/substituter.js"
import { sha256Hex } from "../text/digest.js"
import {
  Descriptor,
  emptyConfig,
  emptyConfigDigest,
  emptyConfigMediaType,
  manifestMediaType,
} from "./manifest.js"
import { cacheClients } from "./ociSubstituter.js"

/*
 * A target's signed index (sha256sums + sha256sums.sig) in the shared cache, so that a machine with a warm
 * cache resolves a release's Image Builder without the download server (docs/cache.md). One manifest per
 * release and target, tagged `openwrt-sums-<release>-<target>` (`/` → `_`), with the two files as layers.
 * It needs no owrt signature: the files carry OpenWrt's own, which the reader checks against its keyring.
 */

export const indexArtifactType = "application/vnd.owrt.openwrt-sums.v1"
const sumsMediaType = "application/vnd.owrt.openwrt-sums.v1.sha256sums"
const sigMediaType = "application/vnd.owrt.openwrt-sums.v1.signature"

const IndexManifest = Schema.Struct({
  schemaVersion: Schema.Literal(2),
  mediaType: Schema.Literal(manifestMediaType),
  artifactType: Schema.Literal(indexArtifactType),
  config: Descriptor,
  layers: Schema.Tuple(
    Schema.extend(Descriptor, Schema.Struct({ mediaType: Schema.Literal(sumsMediaType) })),
    Schema.extend(Descriptor, Schema.Struct({ mediaType: Schema.Literal(sigMediaType) })),
  ),
})
const decodeIndexManifest = Schema.decodeUnknownOption(Schema.parseJson(IndexManifest))

/** The tag of a release's target index: OCI tags allow `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`. */
export const indexTag = (release: string, target: string): string =>
  `openwrt-sums-${release}-${target}`.replace(/[^A-Za-z0-9._-]/g, "_").slice(0, 128)

const descriptorOf = (mediaType: string, bytes: Uint8Array) => ({
  mediaType,
  digest: `sha256:${sha256Hex(bytes)}`,
  size: bytes.length,
})

export const signedIndexOciLayer = Layer.effect(
  SignedIndexCache,
  Effect.gen(function* () {
    const config = yield* AppConfig
    if (config.cache.substituters.length === 0) return noSignedIndexCacheService
    const clients = yield* Effect.cached(cacheClients(config))

    // Each cache in order; the first that holds a well-formed entry answers. The bytes are checked against
    // the manifest's digests by the client; their signature by the caller.
    const get = (release: string, target: string) =>
      Effect.gen(function* () {
        const tag = indexTag(release, target)
        for (const client of (yield* clients).clients) {
          const found = yield* Effect.gen(function* () {
            const bytes = yield* client.getManifest(tag)
            if (bytes === undefined) return undefined
            const manifest = Option.getOrUndefined(decodeIndexManifest(new TextDecoder().decode(bytes)))
            if (manifest === undefined) return undefined
            const [sums, sig] = manifest.layers
            return { sums: yield* client.getBlob(sums), sig: yield* client.getBlob(sig) } satisfies SignedSums
          }).pipe(Effect.orElseSucceed(() => undefined))
          if (found) return found
        }
        return undefined
      }).pipe(Effect.orElseSucceed(() => undefined))

    const put = (release: string, target: string, signed: SignedSums) =>
      config.cache.push
        ? Effect.gen(function* () {
            const [client] = (yield* clients).clients
            if (client === undefined) return
            const sums = descriptorOf(sumsMediaType, signed.sums)
            const sig = descriptorOf(sigMediaType, signed.sig)
            const manifest = {
              schemaVersion: 2,
              mediaType: manifestMediaType,
              artifactType: indexArtifactType,
              config: {
                mediaType: emptyConfigMediaType,
                digest: emptyConfigDigest,
                size: emptyConfig.length,
              },
              layers: [sums, sig],
              annotations: { "org.owrt.openwrt.release": release, "org.owrt.openwrt.target": target },
            }
            yield* client.ensureEmptyConfig
            yield* client.uploadBlob(sums.digest, sums.size, signed.sums)
            yield* client.uploadBlob(sig.digest, sig.size, signed.sig)
            yield* client.putManifest(
              indexTag(release, target),
              new TextEncoder().encode(JSON.stringify(manifest)),
            )
          }).pipe(
            // Not fatal: the run goes on, with the push warning the request reports once.
            Effect.catchAll((error) =>
              Effect.serviceOption(SubstituteRun).pipe(
                Effect.map(
                  Option.map((run) =>
                    run.warn({
                      code: WarningCode.cachePushFailed,
                      message: `could not push the signed index of ${release} ${target}: ${error.message}`,
                      cause: error.code,
                    }),
                  ),
                ),
              ),
            ),
          )
        : Effect.void

    return { get, put }
  }),
)
