import * as Command from "@effect/cli/Command"
import { Effect } from "effect"
import { appConfigLayer } from "../../config/appConfig.js"
import { configReport } from "../../operations/configReport.js"
import { configOptions, jsonOption, toConfigFlags } from "../commonOptions.js"
import { emit, table } from "../output.js"

export const configCommand = Command.make("config", { json: jsonOption, ...configOptions }, (options) =>
  Effect.gen(function* () {
    const report = yield* configReport
    yield* emit(options.json, report, (c) => [
      ...table([
        ["SETTING", "VALUE", "FROM"],
        ["store", c.store, c.sources.store],
        ["upstream", c.upstream, c.sources.upstream],
        ["osList", c.osList, c.sources.osList],
        ["keyring", c.keyring, c.sources.keyring],
        ["offline", String(c.offline), c.sources.offline],
        ["jobs", String(c.jobs), c.sources.jobs],
        ["profiles", c.profiles, c.configFile ? "file" : "default"],
        ["downloads", String(c.downloads), ""],
        [
          "timeouts",
          `download ${c.timeouts.download}s, build ${c.timeouts.build}s, lock ${c.timeouts.lock}s, stall ${c.timeouts.stall}s`,
          "",
        ],
        [
          "secretsKey",
          c.secretsKey === null
            ? "none: the store's own secrets.key seals secrets"
            : `${c.secretsKey} (${c.secretsKeySet ? "set" : `not set: ${c.secretsKeyProblem}`})`,
          c.secretsKey === null ? "default" : "file",
        ],
        ["makeEnv", c.makeEnv.length > 0 ? c.makeEnv.join(", ") : "none", c.sources.makeEnv],
        [
          "executor",
          c.executor.kind === "local"
            ? "local: nodes are built here"
            : `postgres ${c.executor.url} (queue ${c.executor.queue}, lock timeout ${c.executor.lockTimeout}s)`,
          c.sources.executor,
        ],
        [
          "database",
          c.database.kind === "sqlite"
            ? "sqlite: the records are in the store's owrt.db"
            : `postgres ${c.database.url} (the store's own index stays in its owrt.db)`,
          c.sources.database,
        ],
        [
          "flash.allowDevices",
          c.flash.allowDevices.length > 0
            ? c.flash.allowDevices.join(", ")
            : "none: MCP and web clients may flash no device",
          c.flash.allowDevices.length > 0 ? "file" : "default",
        ],
        [
          "cache.substituters",
          c.cache.substituters.length > 0
            ? c.cache.substituters.join(", ")
            : "none: everything is built here",
          c.cache.sources.substituters,
        ],
        ["cache.push", String(c.cache.push), c.cache.sources.push],
        ["cache.signingKey", c.cache.signingKey ?? "none", c.cache.signingKey === null ? "default" : "file"],
        [
          "cache.trustedKeys",
          c.cache.trustedKeys.length > 0
            ? c.cache.trustedKeys.map((k) => k.slice(0, k.indexOf(":") + 1) || k).join(", ")
            : "none: nothing is substituted",
          c.cache.trustedKeys.length > 0 ? "file" : "default",
        ],
        [
          "cache.credentials",
          Object.entries(c.cache.credentials)
            .map(([host, cred]) => `${host}: ${cred.username} (password ${cred.password})`)
            .join(", ") || "none",
          Object.keys(c.cache.credentials).length > 0 ? "file" : "default",
        ],
        ["ota.registry", c.ota.registry ?? "none: releases are recorded in the local store only", ""],
        ["ota.prefix", c.ota.prefix || "none", ""],
        ["ota.signingKey", c.ota.signingKey ?? "none: releases are not signed", ""],
        ["ota.publicKey", c.ota.publicKey ?? "none: served releases are not checked", ""],
        [
          "ota.mqtt",
          c.ota.mqtt === null
            ? "none: no release notices"
            : `${c.ota.mqtt.url} topic ${c.ota.mqtt.topic}${c.ota.mqtt.password === null ? "" : ` (password ${c.ota.mqtt.password})`}`,
          "",
        ],
      ]),
      "",
      c.configFile
        ? `config file: ${c.configFile}`
        : `no ${"graph.config.ts"} found; defaults apply (project root ${c.projectRoot})`,
    ])
  }).pipe(Effect.provide(appConfigLayer(toConfigFlags(options)))),
).pipe(
  Command.withDescription(
    "Print the effective configuration (flags > OWRT_* variables > graph.config.ts > defaults)",
  ),
)
