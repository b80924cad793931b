import { Effect } from "effect"
import { AppConfig, type ResolvedConfig } from "../config/appConfig.js"
import { readSecret } from "../profile/secrets.js"
import { withoutPassword } from "../text/withoutPassword.js"

/** The effective configuration as `owrt config` shows it: every setting, and whether the secrets key is set. */
export interface ConfigReport extends ResolvedConfig {
  /** A `secretsKey` is configured and its value can be read (the value itself is never shown). */
  readonly secretsKeySet: boolean
  /** Why a configured `secretsKey` cannot be read; null when it can, or none is configured. */
  readonly secretsKeyProblem: string | null
}

/**
 * Reads the configured secrets key (if any) only to say whether it is there; its value goes nowhere. The
 * executor's and the records' database URLs are shown without their passwords.
 */
export const configReport: Effect.Effect<ConfigReport, never, AppConfig> = Effect.gen(function* () {
  const resolved = yield* AppConfig
  const config: ResolvedConfig = {
    ...resolved,
    executor:
      resolved.executor.kind === "postgres"
        ? { ...resolved.executor, url: withoutPassword(resolved.executor.url) }
        : resolved.executor,
    database:
      resolved.database.kind === "postgres"
        ? { ...resolved.database, url: withoutPassword(resolved.database.url) }
        : resolved.database,
  }
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
