import { createServer } from "node:http"
import { makeHandler } from "@effect/platform-node/NodeHttpServer"
import { Console, Effect } from "effect"
import { UsageError } from "../../errors.js"
import { announceLatest, type MqttSettings, openFirmwareSource } from "../../operations/ota.js"
import { makeOtaHttpApp } from "./otaHttpApp.js"

export interface OtaServeOptions {
  readonly host: string
  readonly port: number
  readonly registry: string
  readonly prefix: string
  /** Bytes of firmware kept in memory. */
  readonly cacheBytes: number
  /** Seconds a device's tag list is reused. */
  readonly tagTtlSeconds: number
  /** The MQTT broker registry pushes are announced to (the Harbor webhook); none: no notices. */
  readonly mqtt?: MqttSettings | undefined
}

/** `owrt ota serve`: the device protocol on its own port, until interrupted. */
export const serveOta = (options: OtaServeOptions) =>
  Effect.gen(function* () {
    if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65535)
      return yield* new UsageError({ detail: `--port ${options.port} is not a port (0 to 65535)` })
    const source = yield* openFirmwareSource(options)
    const mqtt = options.mqtt
    const handler = yield* makeHandler(
      makeOtaHttpApp(source, {
        onPush:
          mqtt === undefined ? undefined : (device) => Effect.asVoid(announceLatest(source, mqtt, device)),
      }),
    )
    const server = yield* Effect.acquireRelease(
      Effect.async<ReturnType<typeof createServer>, UsageError>((resume) => {
        const s = createServer({ keepAliveTimeout: 5_000 }, handler)
        s.once("error", (error) =>
          resume(Effect.fail(new UsageError({ detail: `cannot listen: ${error.message}` }))),
        )
        s.listen(options.port, options.host, () => resume(Effect.succeed(s)))
      }),
      (s) =>
        Effect.async<void>((resume) => {
          s.closeAllConnections()
          s.close(() => resume(Effect.void))
        }),
    )
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : options.port
    yield* Console.log(
      `listening: http://${options.host.includes(":") ? `[${options.host}]` : options.host}:${port}`,
    )
    return yield* Effect.never
  }).pipe(Effect.scoped)
