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

/** A database URL as it may be shown: its password replaced by `***`. */
export const withoutPassword = (url: string): string => {
  try {
    const parsed = new URL(url)
    if (parsed.password === "") return url
    parsed.password = "***"
    return parsed.toString()
  } catch {
    return url.replace(/\/\/([^:/@]*):[^@]*@/, "//$1:***@")
  }
}

/**
 * Reads the configured secrets key (if any) only to say whether it is there; its value goes nowhere. The
 * executor's database URL is shown without its password.
 */
export const configReport: Effect.Effect<ConfigReport, never, AppConfig> = Effect.gen(function* () {
  const resolved = yield* AppConfig
  const config: ResolvedConfig =
    resolved.executor.kind === "postgres"
      ? { ...resolved, executor: { ...resolved.executor, url: withoutPassword(resolved.executor.url) } }
      : resolved
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
