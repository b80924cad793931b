import { existsSync, mkdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { SqlClient } from "@effect/sql"
import { Context, Effect, Either, Exit, Layer } from "effect"
import {
  type ArtifactsManifest,
  artifactsManifestName,
  collectArtifactsKey,
  runCollectArtifacts,
} from "../artifacts/collectArtifacts.js"
import { type Builder, BuilderStore } from "../builder/builderStore.js"
import { AppConfig } from "../config/appConfig.js"
import {
  finishBuild,
  type Requester,
  recordArtifacts,
  startBuild,
  updateBuildKeys,
} from "../db/buildRecords.js"
import { listStorePaths } from "../db/storePathRecords.js"
import {
  DeviceProfileUnknownError,
  InternalError,
  isOwrtError,
  type OwrtError,
  UsageError,
} from "../errors.js"
import { type BuilderInfo, canonicalDevice } from "../image/builderInfo.js"
import { builderInfo, cachedBuilderInfo } from "../image/builderInfoStore.js"
import { type MakeImageParams, makeImageKey, packageSelectionKey, runMakeImage } from "../image/makeImage.js"
import { secretsUsed, stageOverlay, stageOverlayKey } from "../overlay/stageOverlay.js"
import { type ProfileEntry, ProfileRepository } from "../profile/profileRepository.js"
import { readSecret, redactSecrets, secretFingerprint, storeSealingKey } from "../profile/secrets.js"
import { Progress } from "../progress/progress.js"
import { lookupNode, realizeNode, type StoredNode } from "../store/nodeStore.js"
import { closestMatch } from "../text/closestMatch.js"
import { type NodeKind, prepareNodeKeys } from "./nodeKey.js"

export interface RealizedArtifact {
  readonly name: string
  readonly type: string
  readonly sha256: string
  readonly size: number
  readonly path: string
}

export interface RealizeResult {
  readonly profile: string
  readonly rev: number
  readonly revision: string
  readonly key: string
  readonly cacheHit: boolean
  readonly storePath: string
  readonly buildId: number
  readonly artifacts: ReadonlyArray<RealizedArtifact>
  readonly manifest: ArtifactsManifest
}

export interface RealizeFailure {
  readonly profile: string
  readonly error: OwrtError
}

export interface Selection {
  readonly specs: ReadonlyArray<string>
  readonly all?: boolean | undefined
  readonly tag?: string | undefined
}

export interface RealizeOptions extends Selection {
  readonly rebuild?: boolean | undefined
  readonly keepGoing?: boolean | undefined
  readonly requestedBy: Requester
}

export interface PlannedNode {
  readonly kind: NodeKind
  readonly key: string | null
  readonly status: "cached" | "missing"
  readonly path: string | null
}

export interface PlannedProfile {
  readonly profile: string
  readonly rev: number
  readonly revision: string
  readonly status: "cached" | "missing"
  readonly nodes: ReadonlyArray<PlannedNode>
}

/** Everything a realization computes before building: keys, secrets, the builder. */
interface Compiled {
  readonly entry: ProfileEntry
  readonly secretValues: ReadonlyMap<string, string>
  readonly overlayKey: string
}

export class Realizer extends Context.Tag("owrt/Realizer")<
  Realizer,
  {
    /** Profiles a selection names: explicit specs, every concrete profile, or those with a tag. */
    readonly select: (selection: Selection) => Effect.Effect<ReadonlyArray<string | ProfileEntry>, OwrtError>
    readonly realize: (
      options: RealizeOptions,
    ) => Effect.Effect<
      { results: ReadonlyArray<RealizeResult>; failures: ReadonlyArray<RealizeFailure> },
      OwrtError
    >
    readonly plan: (selection: Selection) => Effect.Effect<ReadonlyArray<PlannedProfile>, OwrtError>
    /** Builds make-image and collect-artifacts of a realized profile again into `scratch`, for audits. */
    readonly rebuildInto: (
      spec: string,
      scratch: string,
    ) => Effect.Effect<{ stored: string; rebuilt: string; profile: string }, OwrtError>
  }
>() {}

const asOwrtError = (error: unknown): OwrtError =>
  isOwrtError(error) ? error : new InternalError({ cause: error })

export const realizerLayer = Layer.effect(
  Realizer,
  Effect.gen(function* () {
    const config = yield* AppConfig
    const profiles = yield* ProfileRepository
    const builders = yield* BuilderStore
    const progress = yield* Progress
    const sql = yield* SqlClient.SqlClient
    const jobs = yield* Effect.makeSemaphore(config.jobs)
    const downloads = yield* Effect.makeSemaphore(config.downloads)
    const withSql = <A, E>(effect: Effect.Effect<A, E, SqlClient.SqlClient>) =>
      Effect.provideService(effect, SqlClient.SqlClient, sql)

    const select = (selection: Selection) =>
      Effect.gen(function* () {
        if (selection.specs.length > 0) return selection.specs
        if (!selection.all && selection.tag === undefined) {
          return yield* new UsageError({ detail: "name profiles to build, or use --all or --tag <tag>" })
        }
        const entries = yield* profiles.all()
        // Resolved entries, not ids: what they name was just resolved and recorded, once.
        return entries
          .filter(({ revision }) => !revision.profile.abstract)
          .filter(
            ({ revision }) => selection.tag === undefined || revision.profile.tags.includes(selection.tag),
          )
      })

    const entryOf = (target: string | ProfileEntry) =>
      typeof target === "string" ? concreteEntry(target) : Effect.succeed(target)
    const nameOf = (target: string | ProfileEntry) =>
      typeof target === "string" ? target : target.revision.profile.id

    const sealingKey = Effect.gen(function* () {
      if (config.secretsKey === null) return yield* storeSealingKey(config.store)
      const value = yield* readSecret({
        profile: "graph.config.ts",
        name: "secretsKey",
        reference: config.secretsKey,
        baseDir: config.projectRoot,
        env: process.env,
      })
      return Buffer.from(value, "utf8")
    })

    /** Reads the secrets a profile uses and computes the stage-overlay key from their fingerprints. */
    const compile = (entry: ProfileEntry) =>
      Effect.gen(function* () {
        const { revision } = entry
        const values = new Map<string, string>()
        const fingerprints: Record<string, string> = {}
        const used = secretsUsed(revision)
        if (used.length > 0) {
          const key = yield* sealingKey
          for (const name of used) {
            const value = yield* readSecret({
              profile: revision.profile.id,
              name,
              reference: revision.profile.secrets[name] ?? "",
              baseDir: config.profiles,
              env: process.env,
            })
            values.set(name, value)
            fingerprints[name] = secretFingerprint(key, name, value)
          }
        }
        const overlayKey = yield* stageOverlayKey(revision, fingerprints)
        return { entry, secretValues: values, overlayKey } satisfies Compiled
      })

    const imageParams = (compiled: Compiled, builder: { key: string }, device: string): MakeImageParams => {
      const p = compiled.entry.revision.profile
      return {
        builderKey: builder.key,
        overlayKey: compiled.overlayKey,
        release: p.release ?? "",
        target: p.target ?? "",
        device,
        packages: p.packages,
        disabledServices: p.disabled_services,
        rootfsSize: p.rootfs_size,
        profile: p.id,
        revision: compiled.entry.revision.hash,
      }
    }

    const resolveDevice = (compiled: Compiled, builder: Builder) =>
      Effect.gen(function* () {
        const p = compiled.entry.revision.profile
        const info = yield* withSql(builderInfo(builder, config.store, config.timeouts.build))
        const device = canonicalDevice(info, p.device ?? "")
        if (device === undefined) {
          const ids = info.profiles.map((d) => d.id)
          return yield* new DeviceProfileUnknownError({
            profile: p.id,
            device: p.device ?? "",
            builder: `${builder.release} ${builder.target}`,
            suggestions: [closestMatch(p.device ?? "", ids)].filter((s): s is string => s !== undefined),
          })
        }
        return { device, ids: info.profiles.map((d) => d.id) }
      })

    const concreteEntry = (spec: string) =>
      Effect.gen(function* () {
        const entry = yield* profiles.resolve(spec)
        if (entry.revision.profile.abstract) {
          return yield* new UsageError({
            detail: `${entry.revision.profile.id} is abstract (a parent only) and is not built`,
          })
        }
        return entry
      })

    const realizeOne = (target: string | ProfileEntry, options: RealizeOptions) =>
      Effect.gen(function* () {
        const entry = yield* entryOf(target)
        const p = entry.revision.profile
        const started = Date.now()
        const buildId = yield* withSql(
          startBuild({
            profile: p.id,
            revisionSeq: entry.record.seq,
            revisionHash: entry.revision.hash,
            requestedBy: options.requestedBy,
          }),
        )
        const task = `${p.id}@${entry.record.seq}`
        const body = Effect.gen(function* () {
          const compiled = yield* compile(entry)
          progress.report({ kind: "step", task, message: "fetch-builder" })
          const wanted = { release: p.release ?? "", target: p.target ?? "" }
          // A stored builder needs no download slot: only fetches wait for one.
          const stored = yield* builders.find((yield* builders.resolve(wanted)).key)
          // Held until the build ends: prune and gc leave a builder in use alone.
          const builder = yield* stored
            ? builders.use(wanted)
            : downloads.withPermits(1)(builders.use(wanted))
          const { device, ids } = yield* resolveDevice(compiled, builder)
          progress.report({ kind: "step", task, message: "stage-overlay" })
          const overlay = yield* withSql(
            realizeNode({
              store: config.store,
              kind: "stage-overlay",
              key: compiled.overlayKey,
              name: "overlay",
              lockTimeoutSeconds: config.timeouts.lock,
              digestKey: yield* storeSealingKey(config.store),
              // A tree holding secret values, and every output built from it, is readable by its owner only.
              private: compiled.secretValues.size > 0,
              build: (output) => stageOverlay(entry.revision, compiled.secretValues, output),
            }),
          )
          const params = imageParams(compiled, builder, device)
          const imageKey = yield* makeImageKey(params)
          yield* withSql(
            updateBuildKeys(buildId, { builder: builder.key, overlay: overlay.key, image: imageKey }),
          )
          // A stored image needs no build slot: only builds wait for one.
          const imageStored =
            !options.rebuild && (yield* withSql(lookupNode(config.store, imageKey))) !== undefined
          const image = yield* (
            imageStored ? (effect: Effect.Effect<StoredNode, OwrtError>) => effect : jobs.withPermits(1)
          )(
            withSql(
              realizeNode({
                store: config.store,
                kind: "make-image",
                key: imageKey,
                name: `${p.id}-image`,
                lockTimeoutSeconds: config.timeouts.lock,
                private: compiled.secretValues.size > 0,
                rebuild: options.rebuild,
                build: (output, work) =>
                  Effect.gen(function* () {
                    progress.report({ kind: "step", task, message: "make-image" })
                    const checkKey = yield* packageSelectionKey(params)
                    const [checked] = yield* sql<{
                      key: string
                    }>`SELECT key FROM package_checks WHERE key = ${checkKey}`.pipe(
                      Effect.orElseSucceed(() => []),
                    )
                    yield* runMakeImage(
                      {
                        params,
                        key: imageKey,
                        manifestChecked: checked !== undefined,
                        onManifestPassed: (manifest) =>
                          sql`INSERT OR REPLACE INTO package_checks ${sql.insert({
                            key: checkKey,
                            manifest,
                            checked_at: new Date().toISOString(),
                          })}`.pipe(Effect.ignore),
                        builderPath: builder.path,
                        overlayPath: overlay.path,
                        timeoutSeconds: config.timeouts.build,
                        secrets: compiled.secretValues,
                        deviceIds: ids,
                        failureLog: join(config.store, "logs", `build-${buildId}.log`),
                        onOutput: (text) => {
                          const line = redactSecrets(text, compiled.secretValues).trimEnd().split("\n").pop()
                          if (line)
                            progress.report({
                              kind: "step",
                              task,
                              message: `make-image: ${line.slice(0, 120)}`,
                            })
                        },
                      },
                      output,
                      work,
                    )
                  }),
              }),
            ),
          )
          const artifactsKey = yield* collectArtifactsKey(imageKey)
          const artifacts = yield* withSql(
            realizeNode({
              store: config.store,
              kind: "collect-artifacts",
              key: artifactsKey,
              name: `${p.id}-artifacts`,
              lockTimeoutSeconds: config.timeouts.lock,
              private: compiled.secretValues.size > 0,
              rebuild: options.rebuild,
              build: (output) =>
                Effect.gen(function* () {
                  progress.report({ kind: "step", task, message: "collect-artifacts" })
                  const manifest = yield* runCollectArtifacts({
                    imagePath: image.path,
                    output,
                    manifest: {
                      owrt: 1,
                      profile: p.id,
                      revision: entry.revision.hash,
                      inputs: {
                        release: params.release,
                        target: params.target,
                        device,
                        packages: params.packages,
                        disabledServices: params.disabledServices,
                        rootfsSize: params.rootfsSize,
                      },
                      builder: {
                        key: builder.key,
                        archive: builder.archiveName,
                        archiveSha256: builder.archiveSha256,
                        signedBy: builder.signedBy,
                      },
                      keys: {
                        fetchBuilder: builder.key,
                        stageOverlay: overlay.key,
                        makeImage: imageKey,
                        collectArtifacts: artifactsKey,
                      },
                    },
                  })
                  yield* withSql(recordArtifacts(artifactsKey, manifest.images))
                }),
            }),
          )
          yield* withSql(updateBuildKeys(buildId, { artifacts: artifactsKey }))
          const manifest = yield* Effect.try({
            try: () =>
              JSON.parse(
                readFileSync(join(artifacts.path, artifactsManifestName), "utf8"),
              ) as ArtifactsManifest,
            catch: (cause) => new InternalError({ cause }),
          })
          const cacheHit = image.cacheHit && artifacts.cacheHit
          progress.report({
            kind: "done",
            task,
            message: cacheHit ? "cached" : `built in ${((Date.now() - started) / 1000).toFixed(1)}s`,
          })
          return {
            profile: p.id,
            rev: entry.record.seq,
            revision: entry.revision.hash,
            key: artifactsKey,
            cacheHit,
            storePath: artifacts.path,
            buildId,
            artifacts: manifest.images.map((i) => ({
              name: i.name,
              type: i.type,
              sha256: i.sha256,
              size: i.size,
              path: join(artifacts.path, "images", i.name),
            })),
            manifest,
          } satisfies RealizeResult
        })
        return yield* Effect.scoped(body).pipe(
          Effect.onExit((exit) =>
            withSql(
              Exit.isSuccess(exit)
                ? finishBuild(buildId, {
                    status: "succeeded",
                    cacheHit: exit.value.cacheHit,
                    startedMs: started,
                  })
                : Exit.isInterrupted(exit)
                  ? finishBuild(buildId, { status: "interrupted", cacheHit: false, startedMs: started })
                  : finishBuild(buildId, {
                      status: "failed",
                      cacheHit: false,
                      startedMs: started,
                      ...(() => {
                        const failure = exit.cause._tag === "Fail" ? asOwrtError(exit.cause.error) : undefined
                        return {
                          errorCode: failure?.code ?? "internal",
                          errorMessage: failure?.message ?? "internal error",
                        }
                      })(),
                    }),
            ).pipe(Effect.ignore),
          ),
        )
      })

    const realize = (options: RealizeOptions) =>
      Effect.gen(function* () {
        const specs = yield* select(options)
        if (options.keepGoing) {
          const outcomes = yield* Effect.forEach(specs, (spec) => Effect.either(realizeOne(spec, options)), {
            concurrency: "unbounded",
          })
          const results: Array<RealizeResult> = []
          const failures: Array<RealizeFailure> = []
          outcomes.forEach((outcome, i) => {
            if (Either.isRight(outcome)) results.push(outcome.right)
            else failures.push({ profile: nameOf(specs[i] ?? ""), error: asOwrtError(outcome.left) })
          })
          return { results, failures }
        }
        const results = yield* Effect.forEach(specs, (spec) => realizeOne(spec, options), {
          concurrency: "unbounded",
        })
        return { results, failures: [] }
      }).pipe(Effect.mapError(asOwrtError))

    /** Per plan: what many profiles share (a builder's resolution, presence and `make info`) is read once. */
    const planMemo = () => {
      const resolved = new Map<string, Effect.Effect<{ key: string }, OwrtError>>()
      const infos = new Map<string, Effect.Effect<BuilderInfo | undefined, OwrtError>>()
      const present = new Map<string, Effect.Effect<string | undefined, OwrtError>>()
      const memo = <A>(
        map: Map<string, Effect.Effect<A, OwrtError>>,
        key: string,
        make: () => Effect.Effect<A, OwrtError>,
      ) => {
        const found = map.get(key)
        if (found) return found
        const cached = Effect.runSync(Effect.cached(make()))
        map.set(key, cached)
        return cached
      }
      const storeRows = Effect.runSync(
        Effect.cached(
          withSql(listStorePaths()).pipe(
            Effect.map((rows) => new Map(rows.filter((r) => r.valid === 1).map((r) => [r.key, r] as const))),
            Effect.mapError(asOwrtError),
          ),
        ),
      )
      return {
        /** The valid stored output of a key (one query for the whole plan). */
        stored: (key: string) =>
          Effect.map(storeRows, (rows) => {
            const row = rows.get(key)
            return row && existsSync(join(config.store, `${key}-${row.name}`)) ? row : undefined
          }),
        resolve: (release: string, target: string) =>
          memo(resolved, `${release}\0${target}`, () =>
            builders.resolve({ release, target }).pipe(Effect.mapError(asOwrtError)),
          ),
        info: (key: string) =>
          memo(infos, key, () => withSql(cachedBuilderInfo(key)).pipe(Effect.mapError(asOwrtError))),
        builderPath: (key: string) =>
          memo(present, key, () => builders.find(key).pipe(Effect.mapError(asOwrtError))),
      }
    }

    const planOne = (target: string | ProfileEntry, shared: ReturnType<typeof planMemo>) =>
      Effect.gen(function* () {
        const entry = yield* entryOf(target)
        const p = entry.revision.profile
        const node = (kind: NodeKind, key: string | null) =>
          Effect.map(key === null ? Effect.succeed(undefined) : shared.stored(key), (row) => ({
            kind,
            key,
            status: row ? ("cached" as const) : ("missing" as const),
            path: row && key ? join(config.store, `${key}-${row.name}`) : null,
          }))
        const { key: builderKey } = yield* shared.resolve(p.release ?? "", p.target ?? "")
        const builderPath = yield* shared.builderPath(builderKey)
        const builderNode: PlannedNode = {
          kind: "fetch-builder",
          key: builderKey,
          status: builderPath ? "cached" : "missing",
          path: builderPath ?? null,
        }
        const compiled = yield* Effect.either(compile(entry))
        const overlayKey = Either.isRight(compiled) ? compiled.right.overlayKey : null
        const info = yield* shared.info(builderKey)
        const device = info ? canonicalDevice(info, p.device ?? "") : undefined
        const imageKey =
          Either.isRight(compiled) && device !== undefined
            ? yield* makeImageKey(imageParams(compiled.right, { key: builderKey }, device))
            : null
        const artifactsKey = imageKey === null ? null : yield* collectArtifactsKey(imageKey)
        const nodes: Array<PlannedNode> = [
          builderNode,
          yield* node("stage-overlay", overlayKey),
          yield* node("make-image", imageKey),
          yield* node("collect-artifacts", artifactsKey),
        ]
        return {
          profile: p.id,
          rev: entry.record.seq,
          revision: entry.revision.hash,
          status: nodes.every((n) => n.status === "cached") ? "cached" : "missing",
          nodes,
        } satisfies PlannedProfile
      })

    const plan = (selection: Selection) =>
      Effect.gen(function* () {
        // Loaded here, not with the layer: commands that compute no keys should not pay for it.
        yield* prepareNodeKeys
        const specs = yield* select(selection)
        const shared = planMemo()
        return yield* Effect.forEach(specs, (spec) => planOne(spec, shared))
      }).pipe(Effect.mapError(asOwrtError))

    const rebuildInto = (spec: string, scratch: string) =>
      Effect.gen(function* () {
        const entry = yield* concreteEntry(spec)
        const p = entry.revision.profile
        const compiled = yield* compile(entry)
        const builder = yield* builders.use({ release: p.release ?? "", target: p.target ?? "" })
        const { device, ids } = yield* resolveDevice(compiled, builder)
        const params = imageParams(compiled, builder, device)
        const imageKey = yield* makeImageKey(params)
        const artifactsKey = yield* collectArtifactsKey(imageKey)
        const stored = yield* withSql(lookupNode(config.store, artifactsKey))
        const overlayRow = yield* withSql(lookupNode(config.store, compiled.overlayKey))
        if (!stored || !overlayRow) {
          return yield* new UsageError({
            detail: `${p.id}@${entry.record.seq} has not been realized in this store; realize it first`,
          })
        }
        const imageOut = join(scratch, "image")
        const imageWork = join(scratch, "image-work")
        const artifactsOut = join(scratch, "artifacts")
        yield* Effect.try({
          try: () => {
            for (const dir of [imageOut, imageWork, artifactsOut]) mkdirSync(dir, { recursive: true })
          },
          catch: (cause) => new InternalError({ cause }),
        })
        yield* Effect.scoped(
          runMakeImage(
            {
              params,
              key: imageKey,
              builderPath: builder.path,
              overlayPath: join(config.store, `${compiled.overlayKey}-${overlayRow.name}`),
              timeoutSeconds: config.timeouts.build,
              secrets: compiled.secretValues,
              deviceIds: ids,
            },
            imageOut,
            imageWork,
          ),
        )
        const storedManifest = JSON.parse(
          readFileSync(join(config.store, `${artifactsKey}-${stored.name}`, artifactsManifestName), "utf8"),
        ) as ArtifactsManifest
        yield* runCollectArtifacts({
          imagePath: imageOut,
          output: artifactsOut,
          manifest: {
            owrt: 1,
            profile: storedManifest.profile,
            revision: storedManifest.revision,
            inputs: storedManifest.inputs,
            builder: storedManifest.builder,
            keys: storedManifest.keys,
          },
        })
        return {
          stored: join(config.store, `${artifactsKey}-${stored.name}`),
          rebuilt: artifactsOut,
          profile: p.id,
        }
      }).pipe(Effect.scoped, Effect.mapError(asOwrtError))

    return {
      select: (selection: Selection) => select(selection).pipe(Effect.mapError(asOwrtError)),
      realize,
      plan,
      rebuildInto,
    }
  }),
)
