import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { Effect, Option } from "effect"
import { cliCaller } from "../cliCaller.js"
import { configOptions, jsonOption } from "../commonOptions.js"
import { emit, table } from "../output.js"
import { runWithApp } from "../runWithApp.js"

// Loaded when an OTA command runs: the registry client and the server stay out of every other command.
const otaModule = Effect.promise(() => import("../../operations/ota.js"))

const registry = Options.text("registry").pipe(
  Options.optional,
  Options.withDescription(
    "The OTA registry, oci://host[:port] (env OWRT_OTA_REGISTRY, ota.registry; none: the local store)",
  ),
)
const prefix = Options.text("prefix").pipe(
  Options.optional,
  Options.withDescription(
    "Repository prefix before the device id, e.g. fw/ (env OWRT_OTA_PREFIX, ota.prefix; default none)",
  ),
)
const mqttUrl = Options.text("mqtt-url").pipe(
  Options.optional,
  Options.withDescription(
    "MQTT broker for release notices, mqtt[s]://host:port (env OWRT_MQTT_URL; OWRT_MQTT_USERNAME, OWRT_MQTT_PASSWORD)",
  ),
)
const mqttTopic = Options.text("mqtt-topic").pipe(
  Options.withDefault("firmware"),
  Options.withDescription("Topic prefix: notices go to <topic>/<device id> (default firmware)"),
)
const mqttCa = Options.text("mqtt-ca").pipe(
  Options.optional,
  Options.withDescription("PEM file of the broker's CA"),
)
const mqttCert = Options.text("mqtt-cert").pipe(
  Options.optional,
  Options.withDescription("PEM client certificate (mTLS, with --mqtt-key)"),
)
const mqttKey = Options.text("mqtt-key").pipe(
  Options.optional,
  Options.withDescription("PEM client key (mTLS)"),
)
const mqttOptions = { mqttUrl, mqttTopic, mqttCa, mqttCert, mqttKey }

/** The broker settings from the flags and the environment (credentials only from the environment). */
const mqttOf = (o: {
  readonly mqttUrl: Option.Option<string>
  readonly mqttTopic: string
  readonly mqttCa: Option.Option<string>
  readonly mqttCert: Option.Option<string>
  readonly mqttKey: Option.Option<string>
}) => {
  const url = Option.getOrUndefined(o.mqttUrl) ?? process.env.OWRT_MQTT_URL
  if (url === undefined || url === "") return undefined
  return {
    url,
    topic: o.mqttTopic,
    username: process.env.OWRT_MQTT_USERNAME || undefined,
    password: process.env.OWRT_MQTT_PASSWORD || undefined,
    ca: Option.getOrUndefined(o.mqttCa),
    cert: Option.getOrUndefined(o.mqttCert),
    key: Option.getOrUndefined(o.mqttKey),
  }
}

export const publishCommand = Command.make(
  "publish",
  {
    profile: Args.text({ name: "profile" }).pipe(Args.withDescription("A realized profile: id or id@rev")),
    // Given as --version: main.ts hands it on under this name (@effect/cli keeps --version for itself).
    version: Options.text("release-version").pipe(
      Options.withDescription("Semantic version of the release, e.g. 1.4.0 (also --version)"),
    ),
    channel: Options.text("channel").pipe(
      Options.withDefault("stable"),
      Options.withDescription(
        "Channel (default stable; a pre-release 1.5.0-beta.1 goes to its channel, beta)",
      ),
    ),
    image: Options.text("image").pipe(
      Options.optional,
      Options.withDescription("Image type to publish (default: sysupgrade, or the only image)"),
    ),
    device: Options.text("device").pipe(
      Options.optional,
      Options.withDescription("Device id (default: the profile id)"),
    ),
    registry,
    prefix,
    signingKey: Options.text("signing-key").pipe(
      Options.optional,
      Options.withDescription(
        "Sign the release cosign-style with this PEM ECDSA P-256 key: file:PATH or env:NAME (env OWRT_OTA_SIGNING_KEY, ota.signingKey)",
      ),
    ),
    ...mqttOptions,
    json: jsonOption,
    ...configOptions,
  },
  (options) =>
    runWithApp(options, () =>
      Effect.gen(function* () {
        const { otaPublish } = yield* otaModule
        const mqtt = mqttOf(options)
        const published = yield* otaPublish.run(
          {
            profile: options.profile,
            version: options.version,
            channel: options.channel,
            image: Option.getOrUndefined(options.image),
            device: Option.getOrUndefined(options.device),
            registry: Option.getOrUndefined(options.registry),
            prefix: Option.getOrUndefined(options.prefix),
            signingKey: Option.getOrUndefined(options.signingKey),
            ...(mqtt === undefined ? {} : { mqtt }),
          },
          cliCaller,
        )
        if (
          published.signature.status === "off" &&
          published.manifestDigest === null &&
          Option.isSome(options.signingKey)
        )
          process.stderr.write(
            "owrt: warning: the release is kept in the local store (no registry): it is not signed\n",
          )
        if (published.notice.status === "failed")
          process.stderr.write(`owrt: warning: ${published.notice.error} (the release is published)\n`)
        yield* emit(options.json, published, (p) => [
          `${p.device} ${p.version} (${p.channel}) ${p.status}: ${p.image} ${p.sha256.slice(0, 16)} → ${p.repository}:${p.version}`,
          ...(p.signature.status === "off" ? [] : [`signature ${p.signature.status}: ${p.signature.tag}`]),
        ])
      }),
    ),
).pipe(
  Command.withDescription("Publish a realized profile's image as an OTA release (OtaFlux's registry layout)"),
)

const serve = Command.make(
  "serve",
  {
    host: Options.text("host").pipe(
      Options.withDefault("127.0.0.1"),
      Options.withDescription("Address to listen on"),
    ),
    port: Options.integer("port").pipe(
      Options.withDefault(8080),
      Options.withDescription("Port (default 8080; 0 picks a free one, the `listening:` line says which)"),
    ),
    registry,
    prefix,
    cosignKey: Options.text("cosign-key").pipe(
      Options.optional,
      Options.withDescription(
        "Serve only registry releases signed with this PEM public key, cosign.pub (env COSIGN_PUB_KEY_PATH, ota.publicKey)",
      ),
    ),
    cacheMb: Options.integer("cache-mb").pipe(
      Options.withDefault(256),
      Options.withDescription("Firmware kept in memory, in MiB (default 256)"),
    ),
    tagTtl: Options.integer("tag-ttl").pipe(
      Options.withDefault(5),
      Options.withDescription("Seconds a device's tag list is reused (default 5)"),
    ),
    metricsPort: Options.integer("metrics-port").pipe(
      Options.optional,
      Options.withDescription(
        "Serve Prometheus metrics on this port at /metrics (default: none; 0 picks one)",
      ),
    ),
    ...mqttOptions,
    ...configOptions,
  },
  (options) =>
    runWithApp(options, () =>
      Effect.flatMap(
        Effect.promise(() => import("../../web/ota/otaServer.js")),
        ({ serveOta }) =>
          serveOta({
            host: options.host,
            port: options.port,
            registry: Option.getOrUndefined(options.registry),
            prefix: Option.getOrUndefined(options.prefix),
            publicKey: Option.getOrUndefined(options.cosignKey),
            cacheBytes: Math.max(0, options.cacheMb) * 1024 * 1024,
            tagTtlSeconds: Math.max(0, options.tagTtl),
            mqtt: mqttOf(options),
            metricsPort: Option.getOrUndefined(options.metricsPort),
          }),
      ),
    ),
).pipe(
  Command.withDescription("Serve OTA releases to devices (OtaFlux's /version, /firmware protocol and more)"),
)

const devices = Command.make("devices", { json: jsonOption, ...configOptions }, (options) =>
  runWithApp(options, () =>
    Effect.gen(function* () {
      const { otaDevices } = yield* otaModule
      const listed = yield* otaDevices.run({}, cliCaller)
      yield* emit(options.json, listed, (r) =>
        r.devices.length === 0
          ? ["no device has reported its version yet (devices poll with &current=<version>)"]
          : table([
              ["DEVICE", "RUNS", "CHANNEL", "LATEST", "UP TO DATE", "LAST SEEN", "ADDRESS"],
              ...r.devices.map((d) => [
                d.device,
                d.version,
                d.channel,
                d.latest ?? "-",
                d.upToDate ? "yes" : "no",
                d.lastSeen,
                d.address ?? "-",
              ]),
            ]),
      )
    }),
  ),
).pipe(
  Command.withDescription(
    "Devices that reported their version to owrt ota serve, and whether they are up to date",
  ),
)

const keygen = Command.make(
  "keygen",
  {
    name: Args.text({ name: "name" }).pipe(Args.withDescription("Key name, e.g. releases")),
    directory: Options.text("dir").pipe(
      Options.optional,
      Options.withDescription("Where to write NAME.key and NAME.pub (default: here)"),
    ),
    json: jsonOption,
  },
  // Needs neither the store nor the database: it does not open them.
  (options) =>
    Effect.gen(function* () {
      const { writeOtaKeyPair } = yield* otaModule
      const made = yield* writeOtaKeyPair({
        name: options.name,
        directory: Option.getOrUndefined(options.directory),
      })
      yield* emit(options.json, made, (k) => [
        `private key: ${k.privateKeyFile} (keep it private; ota.signingKey: "file:${k.privateKeyFile}")`,
        `public key: ${k.publicKeyFile} (ota.publicKey, or OtaFlux's COSIGN_PUB_KEY_PATH)`,
      ])
    }),
).pipe(
  Command.withDescription(
    "Make a release signing key pair: ECDSA P-256 PEM, NAME.key (0600) and NAME.pub (cosign.pub's form)",
  ),
)

export const otaCommand = Command.make("ota").pipe(
  Command.withDescription("Over-the-air updates: serve releases to devices, list who runs what, make keys"),
  Command.withSubcommands([serve, devices, keygen]),
)
