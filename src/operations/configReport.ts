import { Effect } from "effect"
import { AppConfig, type ResolvedConfig } from "../config/appConfig.js"
import { readSecret } from "../profile/secrets.js"

/** The effective configuration as `owrt config` shows it: every setting, and whether the secrets key is set. */
export interface ConfigReport extends ResolvedConfig {
  /** A `secretsKey` is configured and its value can be read (the value itself is never shown). */
  readonly secretsKeySet: boolean
  /** Why a configured `secretsKey` cannot be read; null when it can, or none is configured. */
  readonly secretsKeyProblem: string | null
}

/** Reads the configured secrets key (if any) only to say whether it is there; its value goes nowhere. */
export const configReport: Effect.Effect<ConfigReport, never, AppConfig> = Effect.gen(function* () {
  const config = yield* AppConfig
  if (config.secretsKey === null) return { ...config, secretsKeySet: false, secretsKeyProblem: null }
  const read = yield* Effect.either(
    readSecret({
      profile: "graph.config.ts",
      name: "secretsKey",
      field: "secretsKey",
      reference: config.secretsKey,
      baseDir: config.projectRoot,
      env: process.env,
    }),
  )
  return read._tag === "Right"
    ? { ...config, secretsKeySet: true, secretsKeyProblem: null }
    : { ...config, secretsKeySet: false, secretsKeyProblem: read.left.reason }
})
