import * as Command from "@effect/cli/Command"
import { Effect } from "effect"
import { AppConfig, appConfigLayer } from "../../config/appConfig.js"
import { configOptions, jsonOption, toConfigFlags } from "../commonOptions.js"
import { emit, table } from "../output.js"

export const configCommand = Command.make("config", { json: jsonOption, ...configOptions }, (options) =>
  Effect.gen(function* () {
    const config = yield* AppConfig
    yield* emit(options.json, config, (c) => [
      ...table([
        ["SETTING", "VALUE", "FROM"],
        ["store", c.store, c.sources.store],
        ["upstream", c.upstream, c.sources.upstream],
        ["keyring", c.keyring, c.sources.keyring],
        ["offline", String(c.offline), c.sources.offline],
        ["jobs", String(c.jobs), c.sources.jobs],
        ["profiles", c.profiles, c.configFile ? "file" : "default"],
        ["downloads", String(c.downloads), ""],
        [
          "timeouts",
          `download ${c.timeouts.download}s, build ${c.timeouts.build}s, lock ${c.timeouts.lock}s`,
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
