import { createServer } from "node:http"
import { HttpRouter, HttpServerResponse } from "@effect/platform"
import { makeHandler } from "@effect/platform-node/NodeHttpServer"
import { Console, Effect } from "effect"
import { UsageError } from "../../errors.js"
import {
  announceLatest,
  type MqttSettings,
  openFirmwareSource,
  otaNotices,
  publishedReleases,
} from "../../operations/ota.js"
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

const listen = (port: number, host: string, handler: Parameters<typeof createServer>[1]) =>
  Effect.acquireRelease(
    Effect.async<ReturnType<typeof createServer>, UsageError>((resume) => {
      const s = createServer({ keepAliveTimeout: 5_000 }, handler)
      s.once("error", (error) =>
        resume(Effect.fail(new UsageError({ detail: `cannot listen on ${host}:${port}: ${error.message}` }))),
      )
      s.listen(port, host, () => resume(Effect.succeed(s)))
    }),
    (s) =>
      Effect.async<void>((resume) => {
        s.closeAllConnections()
        s.close(() => resume(Effect.void))
      }),
  )

const urlOf = (server: ReturnType<typeof createServer>, host: string) => {
  const address = server.address()
  const port = typeof address === "object" && address !== null ? address.port : 0
  return `http://${host.includes(":") ? `[${host}]` : host}:${port}`
}

/** `owrt ota serve`: the device protocol on its own port, until interrupted. */
export const serveOta = (options: OtaServeOptions) =>
  Effect.gen(function* () {
    if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65535)
      return yield* new UsageError({ detail: `--port ${options.port} is not a port (0 to 65535)` })
    let entries = () => 0
    const metrics = options.metricsPort === undefined ? undefined : makeOtaMetrics(() => entries())
    const opened = yield* openFirmwareSource({
      ...options,
      // Each failed check once (a refused release is re-checked when its tag list is read again).
      onSignatureFailure: (release, error) => {
        metrics?.signatureFailure(release.device, error.code)
        console.error(`ota: ${release.device} ${release.version} refused: ${error.message}`)
      },
    })
    const source = opened.source
    entries = source.entries
    const mqtt = options.mqtt ?? (yield* otaNotices)
    const handler = yield* makeHandler(
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
      const registry = metrics.registry
      // Each scrape reads the count of published releases from the database, then renders the registry.
      const scrape = Effect.gen(function* () {
        yield* publishedReleases.pipe(
          Effect.flatMap((n) => Effect.sync(() => metrics.published(n))),
          Effect.catchAll((error) => Console.error(`ota: ${error.message}`)),
        )
        const body = yield* Effect.promise(() => registry.metrics())
        return HttpServerResponse.text(body, { contentType: registry.contentType })
      })
      const metricsHandler = yield* makeHandler(HttpRouter.empty.pipe(HttpRouter.get("/metrics", scrape)))
      const metricsServer = yield* listen(options.metricsPort, options.host, metricsHandler)
      yield* Console.log(`metrics: ${urlOf(metricsServer, options.host)}/metrics`)
    }
    return yield* Effect.never
  }).pipe(Effect.scoped)
