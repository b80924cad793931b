import { Console, Effect } from "effect"
import { UsageError } from "../../errors.js"
import {
  announceLatest,
  type MqttSettings,
  openFirmwareSource,
  otaNotices,
  publishedReleases,
} from "../../operations/ota.js"
import { listen, serveMetrics, urlOf } from "../metricsServer.js"
import { nodeHandler } from "../nodeHandler.js"
import { makeOtaHttpApp } from "./otaHttpApp.js"
import { makeOtaMetrics } from "./otaMetrics.js"

export interface OtaServeOptions {
  readonly host: string
  readonly port: number
  /** `oci://host[:port]`; undefined: the configuration's `ota.registry`, else the local store's releases. */
  readonly registry?: string | undefined
  readonly prefix?: string | undefined
  /** PEM public key registry releases must be signed with (undefined: `ota.publicKey`, else none). */
  readonly publicKey?: string | undefined
  /** Bytes of firmware kept in memory. */
  readonly cacheBytes: number
  /** Seconds a device's tag list is reused. */
  readonly tagTtlSeconds: number
  /** The MQTT broker registry pushes are announced to (the Harbor webhook); none: no notices. */
  readonly mqtt?: MqttSettings | undefined
  /** Port of the Prometheus endpoint (`/metrics`) on the same host; undefined: none. */
  readonly metricsPort?: number | undefined
}

/** `owrt ota serve`: the device protocol on its own port, until interrupted. */
export const serveOta = (options: OtaServeOptions) =>
  Effect.gen(function* () {
    if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65535)
      return yield* new UsageError({ detail: `--port ${options.port} is not a port (0 to 65535)` })
    const opened = yield* openFirmwareSource({
      ...options,
      // Each failed check once (a refused release is re-checked when its tag list is read again). Called
      // while requests are answered, when `metrics` below exists.
      onSignatureFailure: (release, error) => {
        metrics?.signatureFailure(release.device, error.code)
        console.error(`ota: ${release.device} ${release.version} refused: ${error.message}`)
      },
    })
    const source = opened.source
    const metrics = options.metricsPort === undefined ? undefined : makeOtaMetrics(source.entries)
    const mqtt = options.mqtt ?? (yield* otaNotices)
    const handler = yield* nodeHandler(
      makeOtaHttpApp(source, {
        observe: metrics?.observer,
        onPush:
          mqtt === undefined
            ? undefined
            : (device) =>
                announceLatest(source, mqtt, device).pipe(
                  Effect.tap((result) => Effect.sync(() => metrics?.notice(result))),
                  Effect.tapError(() => Effect.sync(() => metrics?.notice("failed"))),
                  Effect.asVoid,
                ),
      }),
    )
    const server = yield* listen(options.port, options.host, handler)
    yield* Console.log(`listening: ${urlOf(server, options.host)}`)
    yield* Console.log(`releases from ${opened.from}${opened.verified ? " (cosign signatures checked)" : ""}`)
    if (metrics !== undefined && options.metricsPort !== undefined) {
      // Each scrape reads the count of published releases from the database, then renders the registry.
      const url = yield* serveMetrics({
        host: options.host,
        port: options.metricsPort,
        registry: metrics.registry,
        refresh: publishedReleases.pipe(
          Effect.flatMap((n) => Effect.sync(() => metrics.published(n))),
          Effect.catchAll((error) => Effect.sync(() => process.stderr.write(`ota: ${error.message}\n`))),
        ),
      })
      yield* Console.log(`metrics: ${url}`)
    }
    return yield* Effect.never
  }).pipe(Effect.scoped)
