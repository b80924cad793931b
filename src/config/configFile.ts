import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { homedir } from "node:os"
import { join } from "node:path"
import { Effect, ParseResult, Schema } from "effect"
import { ConfigInvalidError } from "../errors.js"
import { closestMatch } from "../text/closestMatch.js"
import { sha256Hex } from "../text/digest.js"
import type { OwrtConfig } from "./defineConfig.js"

export const configFileName = "graph.config.ts"

const PositiveInt = Schema.Int.pipe(Schema.positive())
const Seconds = Schema.Number.pipe(Schema.positive())

/** An environment variable's name, or a prefix of names ending in `*`. */
export const envNamePattern = /^[A-Za-z_][A-Za-z0-9_]*\*?$/
const EnvName = Schema.String.pipe(
  Schema.pattern(envNamePattern, {
    message: () => "expected an environment variable name, or a prefix ending in * (OWRT_FAKE_IB_*)",
  }),
)

/** A secret by reference: `env:NAME` or `file:PATH`, never the value itself. */
const SecretReference = Schema.String.pipe(
  Schema.pattern(/^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$/, {
    message: () => "expected a reference, env:NAME or file:PATH (never the secret itself)",
  }),
)

/** The shape `graph.config.ts` must export; checked because the file is user code. */
export const ConfigFileSchema = Schema.Struct({
  store: Schema.optional(Schema.String),
  upstream: Schema.optional(Schema.String),
  osList: Schema.optional(Schema.String),
  keyring: Schema.optional(Schema.String),
  profiles: Schema.optional(Schema.String),
  offline: Schema.optional(Schema.Boolean),
  jobs: Schema.optional(PositiveInt),
  downloads: Schema.optional(PositiveInt),
  timeouts: Schema.optional(
    Schema.Struct({
      download: Schema.optional(Seconds),
      build: Schema.optional(Seconds),
      lock: Schema.optional(Seconds),
      stall: Schema.optional(Seconds),
    }),
  ),
  secretsKey: Schema.optional(Schema.String),
  makeEnv: Schema.optional(Schema.Array(EnvName)),
  flash: Schema.optional(Schema.Struct({ allowDevices: Schema.optional(Schema.Array(Schema.String)) })),
  database: Schema.optional(Schema.String),
  executor: Schema.optional(
    Schema.Union(
      Schema.Literal("local"),
      Schema.String,
      Schema.Struct({
        kind: Schema.Literal("local", "postgres"),
        url: Schema.optional(Schema.String),
        queue: Schema.optional(Schema.String),
        lockTimeout: Schema.optional(Seconds),
      }),
    ),
  ),
  cache: Schema.optional(
    Schema.Struct({
      substituters: Schema.optional(Schema.Array(Schema.String)),
      push: Schema.optional(Schema.Boolean),
      signingKey: Schema.optional(SecretReference),
      trustedKeys: Schema.optional(Schema.Array(Schema.String)),
      credentials: Schema.optional(
        Schema.Record({
          key: Schema.String,
          value: Schema.Struct({ username: Schema.String, password: SecretReference }),
        }),
      ),
      timeout: Schema.optional(Seconds),
    }),
  ),
  ota: Schema.optional(
    Schema.Struct({
      registry: Schema.optional(Schema.String),
      prefix: Schema.optional(Schema.String),
      signingKey: Schema.optional(SecretReference),
      publicKey: Schema.optional(Schema.String),
      mqtt: Schema.optional(
        Schema.Struct({
          url: Schema.String,
          topic: Schema.optional(Schema.String),
          username: Schema.optional(Schema.String),
          password: Schema.optional(SecretReference),
          ca: Schema.optional(Schema.String),
          cert: Schema.optional(Schema.String),
          key: Schema.optional(Schema.String),
        }),
      ),
    }),
  ),
})

const topLevelKeys = Object.keys(ConfigFileSchema.fields)

const cacheDirectory = (): string =>
  join(process.env["XDG_CACHE_HOME"] || join(homedir(), ".cache"), "owrt", "config")

/**
 * Compiles `graph.config.ts` with esbuild (bundling `owrt/config` as a virtual module, so the file needs
 * no installed owrt) and caches the result by content hash: the compile runs once per edit, every later
 * start only `require`s the cached output.
 */
const compile = (file: string, source: string): Effect.Effect<string, ConfigInvalidError> =>
  Effect.gen(function* () {
    const cached = join(cacheDirectory(), `${sha256Hex(`v1\0${file}\0${source}`)}.cjs`)
    const hit = yield* Effect.sync(() => {
      try {
        readFileSync(cached, { flag: "r" })
        return true
      } catch {
        return false
      }
    })
    if (hit) return cached
    // `require`, not `import()`: the bundled CLI runs as a script without an ESM loader callback.
    const esbuild = createRequire(import.meta.url)("esbuild") as typeof import("esbuild")
    const output = yield* Effect.tryPromise({
      try: () =>
        esbuild.build({
          entryPoints: [file],
          bundle: true,
          write: false,
          format: "cjs",
          platform: "node",
          target: "node20",
          logLevel: "silent",
          plugins: [
            {
              name: "owrt-config",
              setup(build) {
                build.onResolve({ filter: /^owrt\/config$/ }, () => ({
                  path: "owrt-config",
                  namespace: "owrt",
                }))
                build.onLoad({ filter: /.*/, namespace: "owrt" }, () => ({
                  contents: "export const defineConfig = (config) => config",
                  loader: "js",
                }))
              },
            },
          ],
        }),
      catch: (error) => {
        const first = (
          error as { errors?: Array<{ text: string; location?: { line: number; column: number } }> }
        ).errors?.[0]
        const where = first?.location ? `:${first.location.line}:${first.location.column + 1}` : ""
        return new ConfigInvalidError({
          source: `${file}${where}`,
          detail: first?.text ?? String(error),
        })
      },
    })
    const code = output.outputFiles?.[0]?.text ?? ""
    yield* Effect.sync(() => {
      mkdirSync(cacheDirectory(), { recursive: true })
      const temporary = `${cached}.${process.pid}.tmp`
      writeFileSync(temporary, code)
      renameSync(temporary, cached)
    })
    return cached
  })

/** Loads, runs and validates a `graph.config.ts`. */
export const loadConfigFile = (file: string): Effect.Effect<OwrtConfig, ConfigInvalidError> =>
  Effect.gen(function* () {
    const source = yield* Effect.try({
      try: () => readFileSync(file, "utf8"),
      catch: (error) => new ConfigInvalidError({ source: file, detail: `cannot read: ${String(error)}` }),
    })
    const compiled = yield* compile(file, source)
    const exported = yield* Effect.try({
      try: () => {
        const loaded = createRequire(import.meta.url)(compiled) as { default?: unknown }
        return loaded.default ?? loaded
      },
      catch: (error) =>
        new ConfigInvalidError({ source: file, detail: `evaluating it threw: ${(error as Error).message}` }),
    })
    return yield* Schema.decodeUnknown(ConfigFileSchema, { errors: "all", onExcessProperty: "error" })(
      exported,
    ).pipe(
      Effect.mapError((error) => {
        const issues = ParseResult.ArrayFormatter.formatErrorSync(error)
        const detail = issues
          .map((issue) => {
            const path = issue.path.join(".")
            if (issue._tag === "Unexpected") {
              const key = String(issue.path[issue.path.length - 1])
              const guess = issue.path.length === 1 ? closestMatch(key, topLevelKeys) : undefined
              return `unknown key \`${path}\`${guess ? ` — did you mean \`${guess}\`?` : ""}`
            }
            return `${path}: ${issue.message}`
          })
          .join("; ")
        return new ConfigInvalidError({ source: file, detail })
      }),
    )
  })
