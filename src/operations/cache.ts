import { mkdirSync } from "node:fs"
import { join } from "node:path"
import { Effect, Schema } from "effect"
import { cacheClients, checkTree, fetchEntry, pushEntry } from "../cache/ociSubstituter.js"
import type { RegistryClient } from "../cache/registryClient.js"
import { generateKeyPair } from "../cache/signing.js"
import { AppConfig, type ResolvedConfig } from "../config/appConfig.js"
import { databaseContext } from "../db/records.js"
import { StorePathRecords, type StorePathRow } from "../db/storePathRecords.js"
import { isOwrtError, type OwrtError, UsageError } from "../errors.js"
import { builtinNodeKinds } from "../graph/kinds/builtin.js"
import { readManifest } from "../graph/kinds/collectArtifactsNode.js"
import { Realizer } from "../graph/realizer.js"
import { Progress } from "../progress/progress.js"
import { isPrivateStorePath, storePathName } from "../store/nodeStore.js"
import { useStorePaths } from "../store/storeLock.js"
import { makeWorkDirectory } from "../store/workDirectory.js"
import { CanonicalSchema } from "../text/canonicalJson.js"
import { writeKeyFiles } from "./keyFiles.js"
import { defineOperation } from "./operation.js"
import { runBatch } from "./realizeBatch.js"
import { ProfileSpecSchema } from "./revision.js"
import { Integer, NoParams } from "./schemaTypes.js"

/*
 * The `owrt cache` operations (docs/cache.md): keygen, push and pull of realized profiles (or the whole
 * store), and ls / verify of what the registries hold. Pull is a realize that must substitute every node
 * (`requireSubstitutes`), so it records builds and rows exactly as a realize does.
 */

const digestOf = (kind: string) => builtinNodeKinds.find((k) => k.kind === kind)?.digest ?? "content"
const decodeKeyInputs = Schema.decodeUnknownOption(Schema.parseJson(CanonicalSchema))

const needCache = (config: ResolvedConfig) =>
  config.cache.substituters.length === 0
    ? Effect.fail(
        new UsageError({
          detail:
            "no shared cache is configured: set cache.substituters in graph.config.ts (or OWRT_SUBSTITUTERS)",
        }),
      )
    : Effect.void

const SelectionParams = Schema.Struct({
  profiles: Schema.optional(
    Schema.Array(ProfileSpecSchema).annotations({ description: "Profiles: id or id@rev" }),
  ),
  all: Schema.optional(
    Schema.Boolean.annotations({ description: "Every profile (pull) or store path (push)" }),
  ),
})

const requireSelection = (params: typeof SelectionParams.Type) =>
  (params.profiles ?? []).length === 0 && params.all !== true
    ? Effect.fail(new UsageError({ detail: "name profiles (id or id@rev), or pass --all" }))
    : Effect.void

const KeygenParams = Schema.Struct({
  name: Schema.String.annotations({ description: "Key name, e.g. ci-1 (letters, digits, . _ -)" }),
  directory: Schema.optional(Schema.String.annotations({ description: "Where to write (default: here)" })),
})

/**
 * Writes a new key pair. It needs neither the store nor the database, so the CLI runs it without opening
 * them (a `keygen` in an empty directory leaves only the two key files).
 */
export const writeKeyPair = (params: typeof KeygenParams.Type) =>
  Effect.map(
    writeKeyFiles(params, ".sec", () => {
      const pair = generateKeyPair(params.name)
      return { secret: `${pair.secret}\n`, public: `${pair.public}\n` }
    }),
    (made) => ({
      name: params.name,
      secretKeyFile: made.secretFile,
      publicKeyFile: made.publicFile,
      publicKey: made.public.trim(),
    }),
  )

export const cacheKeygen = defineOperation({
  name: "cacheKeygen",
  description:
    "Make an Ed25519 signing key pair for the shared cache: NAME.sec (secret, mode 0600) and NAME.pub, in Nix's name:base64 form",
  readOnly: false,
  idempotent: false,
  params: KeygenParams,
  result: Schema.Struct({
    name: Schema.String,
    secretKeyFile: Schema.String,
    publicKeyFile: Schema.String,
    publicKey: Schema.String,
  }),
  run: writeKeyPair,
})

const PushedSchema = Schema.Struct({
  key: Schema.String,
  kind: Schema.String,
  status: Schema.Literal("pushed", "present", "skipped").annotations({
    description: "pushed now; present: the registry had it; skipped: holds secrets, never shared",
  }),
})

export const cachePush = defineOperation({
  name: "cachePush",
  description:
    "Push realized profiles' nodes (or every store path with all) to the first shared cache, signed with cache.signingKey",
  readOnly: false,
  idempotent: true,
  params: SelectionParams,
  result: Schema.Struct({
    registry: Schema.String,
    nodes: Schema.Array(PushedSchema),
    totals: Schema.Struct({ pushed: Integer, present: Integer, skipped: Integer }),
  }),
  run: (params) =>
    Effect.gen(function* () {
      const config = yield* AppConfig
      yield* needCache(config)
      yield* requireSelection(params)
      const database = yield* databaseContext
      const rows: Array<StorePathRow> = []
      const all = (yield* Effect.provide(StorePathRecords.list(), database)).filter((r) => r.valid === 1)
      if (params.all === true) rows.push(...all)
      else {
        const realizer = yield* Realizer
        for (const spec of params.profiles ?? []) {
          const stored = yield* realizer.storedResult(spec)
          const manifest = yield* readManifest(stored.path)
          for (const key of Object.values(manifest.keys)) {
            const row = all.find((r) => r.key === key)
            if (row && !rows.includes(row)) rows.push(row)
          }
        }
      }
      const clients = yield* cacheClients(config)
      const [client] = clients.clients as ReadonlyArray<RegistryClient>
      if (client === undefined) return yield* new UsageError({ detail: "no shared cache is configured" })
      yield* Effect.provide(useStorePaths(rows.map((r) => `node:${r.key}`)), database)
      const progress = yield* Progress
      const nodes = yield* Effect.forEach(
        rows,
        (row) =>
          Effect.gen(function* () {
            const path = join(config.store, storePathName(row.key, row.name))
            if (isPrivateStorePath(path)) return { key: row.key, kind: row.kind, status: "skipped" as const }
            const keyInputs = row.key_inputs === null ? undefined : decodeKeyInputs(row.key_inputs)
            const status = yield* pushEntry({
              client,
              config,
              key: row.key,
              kind: row.kind,
              keyInputs: keyInputs?._tag === "Some" ? keyInputs.value : null,
              listingOnly: digestOf(row.kind) !== "content",
              path,
              onBytes: (bytes, total) =>
                progress.report({ kind: "bytes", task: `push ${row.kind} ${row.key}`, bytes, total }),
            }).pipe(Effect.scoped)
            progress.report({ kind: "done", task: `push ${row.kind} ${row.key}`, message: status })
            return { key: row.key, kind: row.kind, status }
          }),
        { concurrency: 2 },
      )
      return {
        registry: client.location.url,
        nodes,
        totals: {
          pushed: nodes.filter((n) => n.status === "pushed").length,
          present: nodes.filter((n) => n.status === "present").length,
          skipped: nodes.filter((n) => n.status === "skipped").length,
        },
      }
    }).pipe(Effect.scoped),
})

export const cachePull = defineOperation({
  name: "cachePull",
  description:
    "Fetch profiles (or all) from the shared cache into the store, verified, building nothing: a realize with requireSubstitutes",
  readOnly: false,
  idempotent: true,
  params: SelectionParams,
  result: Schema.Struct({
    pulled: Schema.Array(
      Schema.Struct({ profile: Schema.String, rev: Integer, key: Schema.String, cached: Schema.Boolean }),
    ),
    failures: Schema.Array(
      Schema.Struct({
        profile: Schema.String,
        error: Schema.Struct({ code: Schema.String, message: Schema.String, exitCode: Integer }),
      }),
    ),
  }),
  run: (params, context) =>
    Effect.gen(function* () {
      yield* needCache(yield* AppConfig)
      yield* requireSelection(params)
      const { report } = yield* runBatch(
        { profiles: params.profiles, all: params.all, mode: "best-effort", requireSubstitutes: true },
        context,
      )
      return {
        pulled: report.results.map((r) => ({
          profile: r.profile,
          rev: r.rev,
          key: r.key,
          cached: r.cacheHit,
        })),
        failures: report.failures,
      }
    }),
})

const EntrySchema = Schema.Struct({
  key: Schema.String,
  kind: Schema.String,
  size: Integer.annotations({ description: "Bytes of its layers" }),
  signedBy: Schema.NullOr(Schema.String).annotations({ description: "The signing key's name" }),
  local: Schema.Boolean.annotations({ description: "Also in this store" }),
})

const decodeManifest = (bytes: Uint8Array) =>
  Schema.decodeUnknownOption(
    Schema.parseJson(
      Schema.Struct({
        layers: Schema.Array(Schema.Struct({ size: Schema.Number })),
        annotations: Schema.Record({ key: Schema.String, value: Schema.String }),
      }),
    ),
  )(Buffer.from(bytes).toString("utf8"))

const nodeTag = /^[0-9a-f]{16,64}$/

export const cacheList = defineOperation({
  name: "cacheList",
  description:
    "List the nodes the shared caches hold: key, kind, size, signer, and whether this store has them",
  readOnly: true,
  params: NoParams,
  result: Schema.Struct({
    registries: Schema.Array(Schema.Struct({ registry: Schema.String, entries: Schema.Array(EntrySchema) })),
  }),
  run: () =>
    Effect.gen(function* () {
      const config = yield* AppConfig
      yield* needCache(config)
      const database = yield* databaseContext
      const local = new Set(
        (yield* Effect.provide(StorePathRecords.list(), database))
          .filter((r) => r.valid === 1)
          .map((r) => r.key),
      )
      const { clients } = yield* cacheClients(config)
      const registries = yield* Effect.forEach(clients, (client) =>
        Effect.gen(function* () {
          const tags = (yield* client.listTags).filter((t) => nodeTag.test(t))
          const entries = yield* Effect.forEach(
            tags,
            (tag) =>
              Effect.map(client.getManifest(tag), (bytes) => {
                const manifest = bytes === undefined ? undefined : decodeManifest(bytes)
                const m = manifest?._tag === "Some" ? manifest.value : undefined
                const signature = m?.annotations["org.owrt.node.signature"]
                return {
                  key: tag,
                  kind: m?.annotations["org.owrt.node.kind"] ?? "unknown",
                  size: m?.layers.reduce((sum, l) => sum + l.size, 0) ?? 0,
                  signedBy: signature?.includes(":") ? signature.slice(0, signature.indexOf(":")) : null,
                  local: local.has(tag),
                }
              }),
            { concurrency: 8 },
          )
          return { registry: client.location.url, entries }
        }),
      )
      return { registries }
    }),
})

export const cacheVerify = defineOperation({
  name: "cacheVerify",
  description:
    "Re-check everything the shared caches hold: signature by a trusted key, blob digests and sizes, metadata, and the unpacked tree's digest",
  readOnly: true,
  params: NoParams,
  result: Schema.Struct({
    checked: Integer,
    problems: Schema.Array(
      Schema.Struct({
        registry: Schema.String,
        key: Schema.String,
        code: Schema.String,
        message: Schema.String,
      }),
    ),
  }),
  run: () =>
    Effect.gen(function* () {
      const config = yield* AppConfig
      yield* needCache(config)
      const { clients, trusted } = yield* cacheClients(config)
      const keys = yield* trusted
      const problems: Array<{ registry: string; key: string; code: string; message: string }> = []
      let checked = 0
      for (const client of clients) {
        const tags = (yield* client.listTags).filter((t) => nodeTag.test(t))
        yield* Effect.forEach(
          tags,
          (tag) =>
            Effect.gen(function* () {
              const scratch = yield* makeWorkDirectory(config.store, `verify-${tag}`)
              const output = join(scratch, "out")
              mkdirSync(output)
              const bytes = yield* client.getManifest(tag)
              const kind =
                bytes === undefined
                  ? "unknown"
                  : (() => {
                      const m = decodeManifest(bytes)
                      return m._tag === "Some"
                        ? (m.value.annotations["org.owrt.node.kind"] ?? "unknown")
                        : "unknown"
                    })()
              const listingOnly = digestOf(kind) !== "content"
              const fetched = yield* fetchEntry({
                client,
                key: tag,
                kind,
                listingOnly,
                trusted: keys,
                output,
              })
              yield* checkTree(output, listingOnly, fetched.check)
            }).pipe(
              Effect.scoped,
              Effect.catchAll((error: OwrtError) =>
                Effect.sync(() =>
                  problems.push({
                    registry: client.location.url,
                    key: tag,
                    code: isOwrtError(error) ? error.code : "internal",
                    message: error.message,
                  }),
                ),
              ),
              Effect.tap(() => Effect.sync(() => (checked += 1))),
            ),
          { concurrency: 2, discard: true },
        )
      }
      return { checked, problems }
    }),
})
