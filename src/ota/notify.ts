import { readFileSync } from "node:fs"
import { Effect } from "effect"
// Loaded with this module only (operations/ota.ts is imported on demand); external to the bundle.
import { connectAsync } from "mqtt"
import { OtaNotifyError } from "../errors.js"

/*
 * Release notices over MQTT (ota.md §4): `{"version","size","sha256","channel"}` to `<topic>/<device id>`,
 * QoS 1 and retained, so a device that subscribes later still gets the last one. The broker URL is
 * `mqtt[s]://host:port`; username and password, a CA and a client certificate and key as ota.md §6 lists.
 * The `mqtt` package loads with this module, which only the OTA commands load.
 */

export interface MqttSettings {
  readonly url: string
  readonly topic: string
  readonly username?: string | undefined
  readonly password?: string | undefined
  /** PEM files: the broker's CA; the client's certificate and key (mTLS: both). */
  readonly ca?: string | undefined
  readonly cert?: string | undefined
  readonly key?: string | undefined
}

export interface ReleaseNotice {
  readonly device: string
  readonly version: string
  readonly size: number
  readonly sha256: string
  readonly channel: string
}

export const noticeTopic = (settings: MqttSettings, device: string) =>
  `${settings.topic.replace(/\/+$/, "")}/${device}`

/** Publishes one notice and waits for the broker's acknowledgement (QoS 1). */
export const notifyRelease = (
  settings: MqttSettings,
  notice: ReleaseNotice,
): Effect.Effect<void, OtaNotifyError> => {
  const failed = (detail: string) => new OtaNotifyError({ broker: settings.url, detail })
  // MQTT 3.1.1 sends a password only with a user name; MQTT.js would neither connect nor fail.
  if (settings.password !== undefined && settings.username === undefined)
    return Effect.fail(failed("a password is configured without a user name (MQTT needs both)"))
  return Effect.tryPromise({
    try: async () => {
      const client = await connectAsync(settings.url, {
        username: settings.username,
        password: settings.password,
        ca: settings.ca === undefined ? undefined : readFileSync(settings.ca),
        cert: settings.cert === undefined ? undefined : readFileSync(settings.cert),
        key: settings.key === undefined ? undefined : readFileSync(settings.key),
        connectTimeout: 10_000,
        reconnectPeriod: 0,
      })
      try {
        await client.publishAsync(
          noticeTopic(settings, notice.device),
          JSON.stringify({
            version: notice.version,
            size: notice.size,
            sha256: notice.sha256,
            channel: notice.channel,
          }),
          { qos: 1, retain: true },
        )
      } finally {
        await client.endAsync()
      }
    },
    catch: (cause) => failed(cause instanceof Error ? cause.message : String(cause)),
  }).pipe(
    // A client that neither connects nor fails must not leave the publish waiting on nothing (the process would
    // end with nothing to wait for): the notice fails after the connect timeout and a grace period.
    Effect.timeoutFail({
      duration: "20 seconds",
      onTimeout: () => failed("no answer from the broker in 20 s"),
    }),
  )
}
