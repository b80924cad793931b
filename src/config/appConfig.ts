import { existsSync } from "node:fs"
import { availableParallelism } from "node:os"
import { dirname, join, resolve } from "node:path"
import { Context, Effect, Layer } from "effect"
import { parseRegistryUrl } from "../cache/registryLocation.js"
import { ConfigInvalidError } from "../errors.js"
import { packageRoot } from "../packageRoot.js"
import { withoutPassword } from "../text/withoutPassword.js"
import { configFileName, envNamePattern, loadConfigFile } from "./configFile.js"
import type { OwrtConfig } from "./defineConfig.js"

export type ConfigSource = "flag" | "env" | "file" | "default"

/** The effective configuration every command runs with: absolute paths, all defaults applied. */
export interface ResolvedConfig {
  readonly projectRoot: string
  readonly configFile: string | null
  readonly store: string
  readonly upstream: string
  /** The Raspberry Pi OS list raspios profiles look their base image up in, unless they name one. */
  readonly osList: string
  readonly keyring: string
  readonly profiles: string
  readonly offline: boolean
  readonly jobs: number
  readonly downloads: number
  readonly timeouts: {
    readonly download: number
    readonly build: number
    readonly lock: number
    readonly stall: number
  }
  readonly secretsKey: string | null
  /** Environment variables passed to make: names, or prefixes ending in `*`. */
  readonly makeEnv: ReadonlyArray<string>
  readonly flash: { readonly allowDevices: ReadonlyArray<string> }
  readonly cache: CacheConfig
  /** Where nodes are built: here, or by the workers of a build farm queued in PostgreSQL (docs/farm.md). */
  readonly executor: ExecutorConfig
  /** Where the records are kept: the store's SQLite file, or a PostgreSQL shared by a team (docs/farm.md). */
  readonly database: DatabaseConfig
  readonly ota: OtaConfig
  /** Where each overridable setting came from, for `owrt config`. */
  readonly sources: {
    readonly store: ConfigSource
    readonly upstream: ConfigSource
    readonly osList: ConfigSource
    readonly keyring: ConfigSource
    readonly offline: ConfigSource
    readonly jobs: ConfigSource
    readonly makeEnv: ConfigSource
    readonly executor: ConfigSource
    readonly database: ConfigSource
  }
}

/** The shared cache's settings; secrets only by reference (`env:`/`file:`), so showing them shows no secret. */
export interface CacheConfig {
  /** `oci://host/repo` as normalised; the first one is where `push` goes. */
  readonly substituters: ReadonlyArray<string>
  readonly push: boolean
  readonly signingKey: string | null
  readonly trustedKeys: ReadonlyArray<string>
  readonly credentials: Readonly<Record<string, { readonly username: string; readonly password: string }>>
  /** Seconds a registry may stay silent before a call fails. */
  readonly timeout: number
  /** Where `substituters` and `push` came from (`env` or `file`), for `owrt config`. */
  readonly sources: { readonly substituters: ConfigSource; readonly push: ConfigSource }
}

/** OTA releases (docs/ota.md); secrets by reference only. */
export interface OtaConfig {
  /** `oci://host[:port]`, or null: releases are recorded in the local store only. */
  readonly registry: string | null
  readonly prefix: string
  /** Reference (`file:`/`env:`) to the PEM ECDSA P-256 key releases are signed with; null: unsigned. */
  readonly signingKey: string | null
  /** Absolute path of the PEM public key releases must be signed with to be served; null: no check. */
  readonly publicKey: string | null
  readonly mqtt: {
    readonly url: string
    readonly topic: string
    readonly username: string | null
    /** A reference, `env:NAME` or `file:PATH`. */
    readonly password: string | null
    readonly ca: string | null
    readonly cert: string | null
    readonly key: string | null
  } | null
}

export const noOta: OtaConfig = { registry: null, prefix: "", signingKey: null, publicKey: null, mqtt: null }

/** `local`: this machine builds; `postgres`: nodes are queued for `owrt worker`s through the database at `url`. */
export type ExecutorConfig =
  | { readonly kind: "local" }
  | {
      readonly kind: "postgres"
      readonly url: string
      /** The queue jobs go to (`owrt worker --queue`). */
      readonly queue: string
      /** Seconds after a worker's last heartbeat before its jobs are given to another worker. */
      readonly lockTimeout: number
    }

export const localExecutor: ExecutorConfig = { kind: "local" }

/** `sqlite`: the records live in the store's `owrt.db`; `postgres`: in the PostgreSQL database at `url`. */
export type DatabaseConfig = { readonly kind: "sqlite" } | { readonly kind: "postgres"; readonly url: string }

export const sqliteDatabase: DatabaseConfig = { kind: "sqlite" }

export const noCache: CacheConfig = {
  substituters: [],
  push: false,
  signingKey: null,
  trustedKeys: [],
  credentials: {},
  timeout: 30,
  sources: { substituters: "default", push: "default" },
}

export class AppConfig extends Context.Tag("owrt/AppConfig")<AppConfig, ResolvedConfig>() {}

/** Settings given on the command line; `undefined` means "not given". */
export interface ConfigFlags {
  readonly store?: string | undefined
  readonly upstream?: string | undefined
  readonly keyring?: string | undefined
  readonly offline?: boolean | undefined
  readonly jobs?: number | undefined
  /** `--executor postgres://…` or `local`. */
  readonly executor?: string | undefined
  /** `--database postgres://…` or `sqlite`. */
  readonly database?: string | undefined
}

export const defaultUpstream = "https://downloads.openwrt.org"

export const defaultOsList = "https://downloads.raspberrypi.com/os_list_imagingutility_v4.json"

/** The nearest directory at or above `start` holding `graph.config.ts`. */
export const findProjectRoot = (start: string): string | null => {
  let dir = resolve(start)
  for (;;) {
    if (existsSync(join(dir, configFileName))) return dir
    const parent = dirname(dir)
    if (parent === dir) return null
    dir = parent
  }
}

const parseBoolean = (name: string, value: string): Effect.Effect<boolean, ConfigInvalidError> => {
  const normalised = value.trim().toLowerCase()
  if (["1", "true", "yes", "on"].includes(normalised)) return Effect.succeed(true)
  if (["", "0", "false", "no", "off"].includes(normalised)) return Effect.succeed(false)
  return Effect.fail(
    new ConfigInvalidError({ source: name, detail: `expected 1/0, true/false or yes/no, got \`${value}\`` }),
  )
}

const parsePositiveInt = (name: string, value: string): Effect.Effect<number, ConfigInvalidError> => {
  const parsed = Number(value.trim())
  return Number.isInteger(parsed) && parsed > 0
    ? Effect.succeed(parsed)
    : Effect.fail(
        new ConfigInvalidError({ source: name, detail: `expected a positive integer, got \`${value}\`` }),
      )
}

const checkUrl = (source: string, value: string): Effect.Effect<string, ConfigInvalidError> => {
  try {
    const url = new URL(value)
    if (url.protocol === "http:" || url.protocol === "https:" || url.protocol === "file:") {
      return Effect.succeed(value.replace(/\/+$/, ""))
    }
  } catch {
    // reported below
  }
  return Effect.fail(new ConfigInvalidError({ source, detail: `not an http(s) or file URL: \`${value}\`` }))
}

/** `OWRT_MAKE_ENV`: names (or prefixes ending in `*`) separated by commas or white space. */
const parseEnvNames = (
  name: string,
  value: string,
): Effect.Effect<ReadonlyArray<string>, ConfigInvalidError> => {
  const names = value.split(/[\s,]+/).filter((n) => n !== "")
  const bad = names.find((n) => !envNamePattern.test(n))
  return bad === undefined
    ? Effect.succeed(names)
    : Effect.fail(
        new ConfigInvalidError({
          source: name,
          detail: `\`${bad}\` is not an environment variable name, nor a prefix ending in *`,
        }),
      )
}

interface Layered<A> {
  readonly value: A
  readonly source: ConfigSource
}

/** Picks the first layer that has a value: flag > environment > file > default. */
const pick = <A>(flag: A | undefined, env: A | undefined, file: A | undefined, fallback: A): Layered<A> =>
  flag !== undefined
    ? { value: flag, source: "flag" }
    : env !== undefined
      ? { value: env, source: "env" }
      : file !== undefined
        ? { value: file, source: "file" }
        : { value: fallback, source: "default" }

/**
 * Resolves the configuration. Paths from `graph.config.ts` are relative to its directory; paths from
 * flags and environment variables are relative to the working directory, as a shell user expects.
 */
export const resolveConfig = (options: {
  readonly cwd: string
  readonly env: Readonly<Record<string, string | undefined>>
  readonly flags: ConfigFlags
}): Effect.Effect<ResolvedConfig, ConfigInvalidError> =>
  Effect.gen(function* () {
    const { cwd, env, flags } = options
    const foundRoot = findProjectRoot(cwd)
    const projectRoot = foundRoot ?? resolve(cwd)
    const configFile = foundRoot ? join(foundRoot, configFileName) : null
    const file: OwrtConfig = configFile ? yield* loadConfigFile(configFile) : {}

    const envOf = (name: string): string | undefined => {
      const value = env[name]
      return value === undefined || value === "" ? undefined : value
    }
    const fromCwd = (p: string | undefined) => (p === undefined ? undefined : resolve(cwd, p))
    const fromRoot = (p: string | undefined) => (p === undefined ? undefined : resolve(projectRoot, p))

    const envOffline = envOf("OWRT_OFFLINE")
    const envJobs = envOf("OWRT_JOBS")
    const store = pick(
      fromCwd(flags.store),
      fromCwd(envOf("OWRT_STORE")),
      fromRoot(file.store),
      join(projectRoot, "store"),
    )
    // Where a setting came from, as an error names it: the flag, the variable, or the file's key.
    const named = (source: ConfigSource, name: string) =>
      source === "flag" ? `--${name}` : source === "env" ? `OWRT_${name.toUpperCase()}` : name
    const upstreamRaw = pick(flags.upstream, envOf("OWRT_UPSTREAM"), file.upstream, defaultUpstream)
    const upstream = {
      value: yield* checkUrl(named(upstreamRaw.source, "upstream"), upstreamRaw.value),
      source: upstreamRaw.source,
    }
    const osListRaw = pick(undefined, envOf("OWRT_OS_LIST"), file.osList, defaultOsList)
    if (!/^https?:\/\/\S+$/.test(osListRaw.value)) {
      return yield* new ConfigInvalidError({
        source: osListRaw.source === "env" ? "OWRT_OS_LIST" : "osList",
        detail: `not an http(s) URL: \`${osListRaw.value}\``,
      })
    }
    const keyring = pick(
      fromCwd(flags.keyring),
      fromCwd(envOf("OWRT_KEYRING")),
      fromRoot(file.keyring),
      join(packageRoot, "keyring"),
    )
    const offline = pick(
      flags.offline === true ? true : undefined,
      envOffline === undefined ? undefined : yield* parseBoolean("OWRT_OFFLINE", envOffline),
      file.offline,
      false,
    )
    const jobs = pick(
      flags.jobs,
      envJobs === undefined ? undefined : yield* parsePositiveInt("OWRT_JOBS", envJobs),
      file.jobs,
      availableParallelism(),
    )
    const envMakeEnv = envOf("OWRT_MAKE_ENV")
    const makeEnv = pick(
      undefined,
      envMakeEnv === undefined ? undefined : yield* parseEnvNames("OWRT_MAKE_ENV", envMakeEnv),
      file.makeEnv,
      [],
    )
    const executorRaw = pick(flags.executor, envOf("OWRT_EXECUTOR"), file.executor, "local")
    const executor = yield* parseExecutor(named(executorRaw.source, "executor"), executorRaw.value)
    const databaseRaw = pick(flags.database, envOf("OWRT_DATABASE"), file.database, "sqlite")
    const database = yield* parseDatabase(named(databaseRaw.source, "database"), databaseRaw.value)
    const envSubstituters = envOf("OWRT_SUBSTITUTERS")
    const substitutersRaw = pick(
      undefined,
      envSubstituters?.split(/[\s,]+/).filter((u) => u !== ""),
      file.cache?.substituters,
      [],
    )
    const substituters: Array<string> = []
    for (const url of substitutersRaw.value) {
      const where = substitutersRaw.source === "env" ? "OWRT_SUBSTITUTERS" : "cache.substituters"
      substituters.push((yield* parseRegistryUrl(url, where)).url)
    }
    const envPush = envOf("OWRT_CACHE_PUSH")
    const push = pick(
      undefined,
      envPush === undefined ? undefined : yield* parseBoolean("OWRT_CACHE_PUSH", envPush),
      file.cache?.push,
      false,
    )
    const signingKey = envOf("OWRT_SIGNING_KEY") ?? file.cache?.signingKey ?? null
    if (signingKey !== null && !/^(env:|file:)/.test(signingKey)) {
      return yield* new ConfigInvalidError({
        source: "OWRT_SIGNING_KEY",
        detail: "expected a reference, env:NAME or file:PATH (never the key itself)",
      })
    }
    if (push.value && signingKey === null) {
      return yield* new ConfigInvalidError({
        source: "cache.push",
        detail: "pushing needs cache.signingKey (make one with `owrt cache keygen NAME`)",
      })
    }
    if (push.value && substituters.length === 0) {
      return yield* new ConfigInvalidError({
        source: "cache.push",
        detail: "pushing needs a registry in cache.substituters",
      })
    }
    const otaSigningKey = envOf("OWRT_OTA_SIGNING_KEY") ?? file.ota?.signingKey ?? null
    if (otaSigningKey !== null && !/^(env:|file:)/.test(otaSigningKey)) {
      return yield* new ConfigInvalidError({
        source: "OWRT_OTA_SIGNING_KEY",
        detail: "expected a reference, env:NAME or file:PATH (never the key itself)",
      })
    }
    const otaMqtt = file.ota?.mqtt
    const ota: OtaConfig = {
      registry: envOf("OWRT_OTA_REGISTRY") ?? file.ota?.registry ?? null,
      prefix: envOf("OWRT_OTA_PREFIX") ?? file.ota?.prefix ?? "",
      signingKey:
        otaSigningKey?.startsWith("file:") === true
          ? `file:${resolve(envOf("OWRT_OTA_SIGNING_KEY") !== undefined ? cwd : projectRoot, otaSigningKey.slice(5))}`
          : otaSigningKey,
      publicKey:
        fromCwd(envOf("OWRT_OTA_PUBLIC_KEY") ?? envOf("COSIGN_PUB_KEY_PATH")) ??
        fromRoot(file.ota?.publicKey) ??
        null,
      mqtt:
        otaMqtt === undefined
          ? null
          : {
              url: otaMqtt.url,
              topic: otaMqtt.topic ?? "firmware",
              username: otaMqtt.username ?? null,
              password:
                otaMqtt.password?.startsWith("file:") === true
                  ? `file:${resolve(projectRoot, otaMqtt.password.slice(5))}`
                  : (otaMqtt.password ?? null),
              ca: fromRoot(otaMqtt.ca) ?? null,
              cert: fromRoot(otaMqtt.cert) ?? null,
              key: fromRoot(otaMqtt.key) ?? null,
            },
    }
    if (flags.jobs !== undefined && !(Number.isInteger(flags.jobs) && flags.jobs > 0)) {
      return yield* new ConfigInvalidError({
        source: "--jobs",
        detail: `expected a positive integer, got ${flags.jobs}`,
      })
    }
    return {
      projectRoot,
      configFile,
      store: store.value,
      upstream: upstream.value,
      osList: osListRaw.value,
      keyring: keyring.value,
      profiles: fromRoot(file.profiles) ?? join(projectRoot, "profiles"),
      offline: offline.value,
      jobs: jobs.value,
      downloads: file.downloads ?? 4,
      timeouts: {
        download: file.timeouts?.download ?? 1800,
        build: file.timeouts?.build ?? 1800,
        lock: file.timeouts?.lock ?? 3600,
        stall: file.timeouts?.stall ?? 60,
      },
      secretsKey: file.secretsKey ?? null,
      makeEnv: makeEnv.value,
      flash: { allowDevices: file.flash?.allowDevices ?? [] },
      cache: {
        substituters,
        push: push.value,
        // A `file:` key from graph.config.ts is relative to its directory; from the environment, to the cwd.
        signingKey:
          signingKey?.startsWith("file:") === true
            ? `file:${resolve(envOf("OWRT_SIGNING_KEY") !== undefined ? cwd : projectRoot, signingKey.slice(5))}`
            : signingKey,
        trustedKeys:
          envOf("OWRT_TRUSTED_KEYS")
            ?.split(/[\s,]+/)
            .filter((k) => k !== "") ??
          file.cache?.trustedKeys ??
          [],
        credentials: file.cache?.credentials ?? {},
        timeout: file.cache?.timeout ?? 30,
        sources: { substituters: substitutersRaw.source, push: push.source },
      },
      executor,
      database,
      ota,
      sources: {
        store: store.source,
        upstream: upstream.source,
        osList: osListRaw.source,
        keyring: keyring.source,
        offline: offline.source,
        jobs: jobs.source,
        makeEnv: makeEnv.source,
        executor: executorRaw.source,
        database: databaseRaw.source,
      },
    }
  })

/** `sqlite`, or a `postgres://` (`postgresql://`) URL. */
const parseDatabase = (where: string, value: string): Effect.Effect<DatabaseConfig, ConfigInvalidError> =>
  value === "sqlite"
    ? Effect.succeed(sqliteDatabase)
    : /^postgres(ql)?:\/\/\S+$/.test(value)
      ? Effect.succeed({ kind: "postgres", url: value })
      : Effect.fail(
          new ConfigInvalidError({
            source: where,
            detail: `not \`sqlite\` nor a postgres:// URL: \`${withoutPassword(value)}\``,
          }),
        )

/** `local`, `postgres://…`, or the configuration file's `{ kind, url, queue, lockTimeout }`. */
const parseExecutor = (
  where: string,
  value:
    | string
    | {
        readonly kind: "local" | "postgres"
        readonly url?: string | undefined
        readonly queue?: string | undefined
        readonly lockTimeout?: number | undefined
      },
): Effect.Effect<ExecutorConfig, ConfigInvalidError> => {
  const spec =
    typeof value === "string"
      ? value === "local"
        ? { kind: "local" as const }
        : { kind: "postgres" as const, url: value }
      : value
  if (spec.kind === "local") return Effect.succeed(localExecutor)
  const url = spec.url ?? ""
  if (!/^postgres(ql)?:\/\/\S+$/.test(url))
    return Effect.fail(
      new ConfigInvalidError({ source: where, detail: `not \`local\` nor a postgres:// URL: \`${url}\`` }),
    )
  const queue = spec.queue ?? "default"
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(queue))
    return Effect.fail(
      new ConfigInvalidError({
        source: where,
        detail: `queue names are letters, digits, _ and -: \`${queue}\``,
      }),
    )
  return Effect.succeed({ kind: "postgres", url, queue, lockTimeout: spec.lockTimeout ?? 60 })
}

export const appConfigLayer = (flags: ConfigFlags): Layer.Layer<AppConfig, ConfigInvalidError> =>
  Layer.effect(AppConfig, resolveConfig({ cwd: process.cwd(), env: process.env, flags }))
