import * as Options from "@effect/cli/Options"
import { Option } from "effect"
import type { ConfigFlags } from "../config/appConfig.js"

/*
 * Options every command accepts, wherever they stand on the command line (`owrt profiles list --json`
 * as well as `owrt --json ...` would be a parse error in @effect/cli, so each leaf command carries them).
 */

export const jsonOption = Options.boolean("json").pipe(
  Options.withDescription("Print one JSON document on stdout and nothing else there (logs go to stderr)"),
)

export const configOptions = {
  store: Options.text("store").pipe(
    Options.optional,
    Options.withDescription("Store directory (OWRT_STORE)"),
  ),
  upstream: Options.text("upstream").pipe(
    Options.optional,
    Options.withDescription("Upstream mirror URL (OWRT_UPSTREAM)"),
  ),
  keyring: Options.text("keyring").pipe(
    Options.optional,
    Options.withDescription("Directory of trusted usign public keys (OWRT_KEYRING)"),
  ),
  offline: Options.boolean("offline").pipe(
    Options.withDescription("Use only what is cached; never contact the upstream (OWRT_OFFLINE)"),
  ),
  jobs: Options.integer("jobs").pipe(
    Options.withAlias("j"),
    Options.optional,
    Options.withDescription("Builds to run at once (OWRT_JOBS)"),
  ),
  executor: Options.text("executor").pipe(
    Options.optional,
    Options.withDescription(
      "Where nodes are built: local, or postgres://… for a build farm's workers (OWRT_EXECUTOR)",
    ),
  ),
  database: Options.text("database").pipe(
    Options.optional,
    Options.withDescription(
      "Where the records are kept: sqlite (the store's), or postgres://… shared by a team (OWRT_DATABASE)",
    ),
  ),
}

export interface ConfigOptionValues {
  readonly store: Option.Option<string>
  readonly upstream: Option.Option<string>
  readonly keyring: Option.Option<string>
  readonly offline: boolean
  readonly jobs: Option.Option<number>
  readonly executor: Option.Option<string>
  readonly database: Option.Option<string>
}

export const toConfigFlags = (values: ConfigOptionValues): ConfigFlags => ({
  store: Option.getOrUndefined(values.store),
  upstream: Option.getOrUndefined(values.upstream),
  keyring: Option.getOrUndefined(values.keyring),
  offline: values.offline ? true : undefined,
  jobs: Option.getOrUndefined(values.jobs),
  executor: Option.getOrUndefined(values.executor),
  database: Option.getOrUndefined(values.database),
})

export const dryRunOption = Options.boolean("dry-run").pipe(
  Options.withDescription("Say what would be removed, remove nothing"),
)
