import { join } from "node:path"
import { Cause, Context, Effect, Either, Exit, Option, Schema } from "effect"
import type { ArtifactsManifest } from "../artifacts/collectArtifacts.js"
import { type Builder, BuilderStore, type EnsureOptions, recordBuilder } from "../builder/builderStore.js"
import type { BuilderArchive } from "../builder/upstream.js"
import { AppConfig } from "../config/appConfig.js"
import { BuildRecords, type Requester } from "../db/buildRecords.js"
import { type Database, databaseContext } from "../db/records.js"
import { StorePathRecords } from "../db/storePathRecords.js"
import { InternalError, isOwrtError, NotFoundError, type OwrtError, UsageError } from "../errors.js"
import type { BuilderInfo } from "../image/builderInfo.js"
import { builderInfo, cachedBuilderInfo } from "../image/builderInfoStore.js"
import {
  type BrokenProfile,
  ProfileRepository,
  type ProfileView,
  revisionLabel,
} from "../profile/profileRepository.js"
import { Progress } from "../progress/progress.js"

const silent = { report: () => undefined }

import { prepareNodeKeys } from "../store/nodeKey.js"
import type { StoredNode } from "../store/nodeStore.js"
import { storeSealingKey } from "../store/sealingKey.js"
import { type Canonical, CanonicalSchema, canonicalJson } from "../text/canonicalJson.js"
import { type CompiledProfile, type CompileFacts, compileGraph } from "./compileGraph.js"
import { Executor } from "./executor.js"
import { diffKeyInputs } from "./explain.js"
import { type Graph, isPending, type NodeSpec } from "./graph.js"
import { readManifest } from "./kinds/collectArtifactsNode.js"
import { fetchBuilderNode } from "./kinds/fetchBuilderNode.js"
import { failureLogPath } from "./kinds/makeImageNode.js"

export interface RealizedArtifact {
  readonly name: string
  readonly type: string
  /** squashfs, ext4, … where a target makes an image per root file system (x86's combined images). */
  readonly filesystem: string | null
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
  /** The shared cache make-image and collect-artifacts came from, when neither was built here. */
  readonly substitutedFrom: string | null
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
  /** Profile specs (`id`, `id@rev`), or entries already resolved (an ASU request compiled to a profile). */
  readonly specs: ReadonlyArray<string | ProfileView>
  readonly all?: boolean | undefined
  readonly tag?: string | undefined
}

export interface RealizeOptions extends Selection {
  readonly rebuild?: boolean | undefined
  /**
   * A profile whose result is stored is answered from the store and the database alone (a cache hit
   * recorded as a build), asking no upstream: flashing a realized profile works offline.
   */
  readonly preferStored?: boolean | undefined
  readonly keepGoing?: boolean | undefined
  readonly requestedBy: Requester
}

export interface PlannedNode {
  readonly kind: string
  readonly key: string | null
  /** cached: in this store; remote: in a shared cache (substituted instead of built); missing: to build. */
  readonly status: "cached" | "remote" | "missing"
  readonly path: string | null
  /** With `explain`, for a node that is not cached: what differs from the nearest stored node. */
  readonly explain?: NodeExplanation | undefined
}

export interface NodeExplanation {
  /** The key of the stored node of the same profile and kind compared with; null when there is none. */
  readonly comparedWith: string | null
  readonly changes: ReadonlyArray<string>
}

/**
 * `f`, asked once per key and its outcome kept (a failure too), for a plan's profiles compiled one after the
 * other: a map look-up, where `Effect.cachedFunction` takes a semaphore and a deferred for every call.
 * (Callers running at once would each ask for a key not yet kept.)
 */
const memoByKey = <A, E>(f: (key: string) => Effect.Effect<A, E>) => {
  const kept = new Map<string, Exit.Exit<A, E>>()
  return (key: string): Effect.Effect<A, E> =>
    Effect.suspend(
      () =>
        kept.get(key) ??
        Effect.flatten(Effect.tap(Effect.exit(f(key)), (exit) => Effect.sync(() => kept.set(key, exit)))),
    )
}

/** A plan, and the profiles it could not plan because they do not resolve (see `planReporting`). */
export interface PlanReport {
  readonly profiles: ReadonlyArray<PlannedProfile>
  readonly broken: ReadonlyArray<BrokenProfile>
}

export interface PlannedProfile {
  readonly profile: string
  /** null while the revision is not recorded (planning records nothing). */
  readonly rev: number | null
  readonly revision: string
  readonly status: "cached" | "remote" | "missing"
  readonly nodes: ReadonlyArray<PlannedNode>
}

export class Realizer extends Context.Tag("owrt/Realizer")<
  Realizer,
  {
    /**
     * Profiles a selection names: explicit specs, every concrete profile, or those with a tag. With `all`
     * or `tag`, a profile that does not resolve is included by id (after the others), so that realizing
     * it reports its error; whether it has the tag cannot be known.
     */
    readonly select: (selection: Selection) => Effect.Effect<ReadonlyArray<string | ProfileView>, OwrtError>
    /** `select`, with the profiles an `all`/`tag` selection finds broken kept apart, with their errors. */
    readonly selectReporting: (selection: Selection) => Effect.Effect<
      {
        readonly targets: ReadonlyArray<string | ProfileView>
        readonly broken: ReadonlyArray<BrokenProfile>
      },
      OwrtError
    >
    readonly realize: (
      options: RealizeOptions,
    ) => Effect.Effect<
      { results: ReadonlyArray<RealizeResult>; failures: ReadonlyArray<RealizeFailure> },
      OwrtError,
      Progress
    >
    readonly plan: (
      selection: Selection,
      options?: { readonly explain?: boolean | undefined },
    ) => Effect.Effect<ReadonlyArray<PlannedProfile>, OwrtError>
    /**
     * `plan`, except that profiles that do not resolve are reported in `broken` instead of failing the
     * plan: those an `all`/`tag` selection finds, and with `reportInvalid` also those named.
     */
    readonly planReporting: (
      selection: Selection,
      options?: { readonly explain?: boolean | undefined; readonly reportInvalid?: boolean | undefined },
    ) => Effect.Effect<PlanReport, OwrtError>
    /** The Image Builder of a release/target, fetched and verified unless stored (one fetch-builder node). */
    readonly ensureBuilder: (options: EnsureOptions) => Effect.Effect<Builder, OwrtError, Progress>
    /** `ensureBuilder`, and the builder's `make info` (run once per builder, then kept in the database). */
    readonly describeBuilder: (
      options: EnsureOptions,
    ) => Effect.Effect<{ readonly builder: Builder; readonly info: BuilderInfo }, OwrtError, Progress>
    /**
     * The stored result (collect-artifacts) of a profile, from the store and the database alone: no
     * upstream is asked and nothing is recorded. not_found when that revision is not realized here.
     */
    readonly storedResult: (
      spec: string,
    ) => Effect.Effect<
      { readonly profile: string; readonly rev: number; readonly key: string; readonly path: string },
      OwrtError
    >
    /**
     * Builds the audited nodes of a realized profile again into `scratch`, for audits (recording the
     * revision). The stored result is found as `storedResult` finds it; not_found when there is none.
     */
    readonly rebuildInto: (
      spec: string,
      scratch: string,
    ) => Effect.Effect<{ stored: string; rebuilt: string; profile: string }, OwrtError, Progress>
  }
>() {}

const asOwrtError = (error: unknown): OwrtError =>
  isOwrtError(error) ? error : new InternalError({ cause: error })

/*
 * Profiles in, images out: a profile revision is compiled into its graph (compileGraph) and the executor
 * walks it. This service adds what is about profiles: selections, the build records, and the result and
 * plan shapes the frontends show.
 */
const decodeKeyInputs = Schema.decodeUnknownOption(Schema.parseJson(CanonicalSchema))

/** What `Realizer` is made of: the core (app/appLayer.ts) makes it in its scope. */
export const makeRealizer = Effect.gen(function* () {
  const config = yield* AppConfig
  const profiles = yield* ProfileRepository
  const builders = yield* BuilderStore
  const executor = yield* Executor
  const database = yield* databaseContext
  const withSql = <A, E>(effect: Effect.Effect<A, E, Database>) => Effect.provide(effect, database)
  const services = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    effect.pipe(Effect.provideService(AppConfig, config), Effect.provideService(BuilderStore, builders))
  /** The device list of the builder stored at `path` (`make info`, run once per builder, then kept). */
  const storedBuilderInfo = (
    key: string,
    path: string,
    on: { readonly release: string; readonly target: string },
  ) =>
    withSql(
      builderInfo({ key, path, release: on.release, target: on.target }, config.store, config.timeouts.build),
    )

  /** The profiles a selection names, and (with `all`/`tag`) the working-tree ones that do not resolve. */
  const selectReporting = (selection: Selection) =>
    Effect.gen(function* () {
      if (selection.specs.length > 0) {
        return { targets: selection.specs, broken: [] as ReadonlyArray<BrokenProfile> }
      }
      if (!selection.all && selection.tag === undefined) {
        return yield* new UsageError({ detail: "name profiles to build, or use --all or --tag <tag>" })
      }
      const { entries, broken } = yield* profiles.all()
      // Resolved profiles, not ids: what they name was just resolved, once (and is recorded if realized).
      const targets: ReadonlyArray<string | ProfileView> = entries
        .filter(({ revision }) => !revision.profile.abstract)
        .filter(
          ({ revision }) => selection.tag === undefined || revision.profile.tags.includes(selection.tag),
        )
      return { targets, broken }
    })

  const select = (selection: Selection) =>
    Effect.map(selectReporting(selection), ({ targets, broken }) => [
      ...targets,
      ...broken.map((b) => b.profile),
    ])

  /** The profile a target names, recorded: for what realizes, audits or flashes it. */
  const entryOf = (target: string | ProfileView) =>
    Effect.flatMap(typeof target === "string" ? concreteView(target) : Effect.succeed(target), (view) =>
      profiles.record(view),
    )
  /** The profile a target names, recording nothing: for what only looks. */
  const viewOf = (target: string | ProfileView) =>
    typeof target === "string" ? concreteView(target) : Effect.succeed(target)
  const nameOf = (target: string | ProfileView) =>
    typeof target === "string" ? target : target.revision.profile.id

  const concreteView = (spec: string) =>
    Effect.gen(function* () {
      const view = yield* profiles.inspect(spec)
      if (view.revision.profile.abstract) {
        return yield* new UsageError({
          detail: `${view.revision.profile.id} is abstract (a parent only) and is not built`,
        })
      }
      return view
    })

  /**
   * Compile facts for building: the builder's device list (`make info`, cached in the database). When the
   * whole graph is realized next (`realized` given) and the list was read before, the builder is not
   * realized first: its key is the signed archive's digest, so the list is the same, and the executor
   * realizes it with the rest of the graph. Otherwise the builder is realized first (through the executor,
   * like any node) and its list read once.
   */
  const buildFacts = (label: string, buildId?: number, realized?: Map<string, StoredNode>): CompileFacts => ({
    lenient: false,
    failureLog: buildId === undefined ? undefined : failureLogPath(config.store, buildId),
    buildId,
    resolveArchive: (release, target) => builders.resolve({ release, target }),
    builderInfo: (archive: BuilderArchive, node: NodeSpec) =>
      Effect.gen(function* () {
        if (buildId !== undefined) yield* withSql(BuildRecords.updateKeys(buildId, { builder: node.key }))
        // Only when the whole graph is realized next (`realized` given); an audit needs the builder now.
        if (realized !== undefined) {
          const known = yield* withSql(cachedBuilderInfo(node.key))
          if (known) return known
        }
        const builderRealized = yield* executor.realize({ label, nodes: [node], root: node.key })
        const stored = builderRealized.get(node.key)
        if (!stored) return yield* new InternalError({ cause: `${label}: the builder was not realized` })
        realized?.set(node.key, stored)
        return yield* storedBuilderInfo(node.key, stored.path, archive)
      }).pipe(Effect.mapError(asOwrtError)),
  })

  const realizeOne = (target: string | ProfileView, options: RealizeOptions) =>
    Effect.gen(function* () {
      const progress = yield* Progress
      const entry = yield* entryOf(target)
      const p = entry.revision.profile
      const started = Date.now()
      const buildId = yield* withSql(
        BuildRecords.start({
          profile: p.id,
          revisionSeq: entry.record.seq,
          revisionHash: entry.revision.hash,
          requestedBy: options.requestedBy,
        }),
      )
      const task = `${p.id}@${entry.record.seq}`
      const body = Effect.gen(function* () {
        const known = new Map<string, StoredNode>()
        const stored =
          options.preferStored === true && options.rebuild !== true ? yield* findStored(entry) : undefined
        const compiled =
          stored?.compiled ?? (yield* services(compileGraph(entry, buildFacts(task, buildId, known))))
        const { keys } = compiled
        yield* withSql(
          BuildRecords.updateKeys(buildId, {
            builder: keys.builder,
            ...(keys.overlay ? { overlay: keys.overlay } : {}),
            ...(keys.image ? { image: keys.image } : {}),
            ...(keys.artifacts ? { artifacts: keys.artifacts } : {}),
          }),
        )
        const realized = yield* executor.realize(compiled.graph, {
          rebuild: options.rebuild,
          realized: known,
        })
        const root = compiled.graph.root === null ? undefined : realized.get(compiled.graph.root)
        if (!root) return yield* new InternalError({ cause: `${task}: the graph has no result` })
        const manifest: ArtifactsManifest = yield* readManifest(root.path)
        const results = [...realized.values()].filter((node) =>
          ["make-image", "customise-image", "collect-artifacts"].includes(node.kind),
        )
        const cacheHit = results.every((node) => node.cacheHit)
        const substitutedFrom = results.every((node) => node.cacheHit || node.substituted !== undefined)
          ? (results.find((node) => node.substituted !== undefined)?.substituted ?? null)
          : null
        progress.report({
          kind: "done",
          task,
          message: cacheHit
            ? "cached"
            : substitutedFrom !== null
              ? `substituted from ${substitutedFrom}`
              : `built in ${((Date.now() - started) / 1000).toFixed(1)}s`,
        })
        return {
          profile: p.id,
          rev: entry.record.seq,
          revision: entry.revision.hash,
          key: root.key,
          cacheHit,
          substitutedFrom,
          storePath: root.path,
          buildId,
          artifacts: manifest.images.map((i) => ({
            name: i.name,
            type: i.type,
            filesystem: i.filesystem,
            sha256: i.sha256,
            size: i.size,
            path: join(root.path, "images", i.name),
          })),
          manifest,
        } satisfies RealizeResult
      })
      return yield* Effect.scoped(body).pipe(
        Effect.onExit((exit) =>
          withSql(
            Exit.isSuccess(exit)
              ? BuildRecords.finish(buildId, {
                  status: "succeeded",
                  cacheHit: exit.value.cacheHit,
                  substitutedFrom: exit.value.substitutedFrom,
                  startedMs: started,
                })
              : Cause.isInterruptedOnly(exit.cause)
                ? BuildRecords.finish(buildId, {
                    status: "interrupted",
                    cacheHit: false,
                    startedMs: started,
                  })
                : BuildRecords.finish(buildId, {
                    status: "failed",
                    cacheHit: false,
                    startedMs: started,
                    // Nodes run in parallel: a failure interrupts its siblings, so the cause holds both.
                    ...Option.match(Cause.failureOption(exit.cause), {
                      onNone: () => ({ errorCode: "internal", errorMessage: "internal error" }),
                      onSome: (error) => ({
                        errorCode: asOwrtError(error).code,
                        errorMessage: asOwrtError(error).message,
                      }),
                    }),
                  }),
          ).pipe(Effect.ignore),
        ),
      )
    })

  const realize = (options: RealizeOptions) =>
    Effect.gen(function* () {
      // Profiles of `--all`/`--tag` that do not resolve are failures of their own: they stop no build.
      const { targets: specs, broken } = yield* selectReporting(options)
      const brokenFailures: ReadonlyArray<RealizeFailure> = broken.map((b) => ({
        profile: b.profile,
        error: b.error,
      }))
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
        return { results, failures: [...brokenFailures, ...failures] }
      }
      const results = yield* Effect.forEach(specs, (spec) => realizeOne(spec, options), {
        concurrency: "unbounded",
      })
      return { results, failures: brokenFailures }
    }).pipe(Effect.mapError(asOwrtError))

  /**
   * Compile facts for planning: nothing is fetched or run. What many profiles share (an archive's
   * resolution, a builder's cached device list, the store's sealing key) is read once per plan.
   */
  const planFacts = Effect.gen(function* () {
    const resolve = memoByKey((releaseTarget: string) => {
      const [release = "", target = ""] = releaseTarget.split("\0")
      return builders.resolve({ release, target }).pipe(Effect.mapError(asOwrtError))
    })
    const info = memoByKey((key: string) =>
      withSql(cachedBuilderInfo(key)).pipe(Effect.mapError(asOwrtError)),
    )
    const sealingKey = yield* Effect.cached(storeSealingKey(config.store))
    return {
      lenient: true,
      sealingKey,
      resolveArchive: (release, target) => resolve(`${release}\0${target}`),
      builderInfo: (_archive, node) => info(node.key),
    } satisfies CompileFacts
  })

  const planReporting = (
    selection: Selection,
    options: { readonly explain?: boolean | undefined; readonly reportInvalid?: boolean | undefined } = {},
  ) =>
    Effect.gen(function* () {
      // Loaded here, not with the layer: commands that compute no keys should not pay for it.
      yield* prepareNodeKeys
      const { targets: specs, broken: found } = yield* selectReporting(selection)
      const broken: Array<BrokenProfile> = [...found]
      const entries: Array<ProfileView> = []
      for (const spec of specs) {
        // Planning records no revision: one not recorded yet is planned without a number.
        const entry = yield* viewOf(spec).pipe(
          Effect.map((e): ProfileView | undefined => e),
          Effect.catchTag("ProfileInvalidError", (error) =>
            options.reportInvalid === true
              ? Effect.sync(() => {
                  broken.push({ profile: nameOf(spec), error })
                  return undefined
                })
              : Effect.fail(error),
          ),
        )
        if (entry) entries.push(entry)
      }
      const facts = yield* planFacts
      // Planning fetches and runs nothing, so it has no progress to report. (Provided once for all.)
      const compiled: Array<CompiledProfile> = yield* Effect.forEach(entries, (entry) =>
        compileGraph(entry, facts),
      ).pipe(services, Effect.provideService(Progress, silent), Effect.scoped)
      const statuses = yield* executor.lookup(
        compiled.map((c) => c.graph),
        { remote: true },
      )
      const planned = yield* Effect.forEach(compiled, ({ entry, graph }) =>
        Effect.gen(function* () {
          const explained = new Map<string, NodeExplanation>()
          const nodes: Array<PlannedNode> = []
          for (const node of graph.nodes) {
            const status = isPending(node) ? undefined : statuses.get(node.key)
            const planned: PlannedNode = {
              kind: node.kind.kind,
              key: node.key,
              status: status?.stored ? "cached" : status?.remote ? "remote" : "missing",
              path: status?.path ?? null,
            }
            if (!options.explain || status?.stored) {
              nodes.push(planned)
              continue
            }
            const explanation: NodeExplanation = isPending(node)
              ? { comparedWith: null, changes: [node.reason] }
              : yield* explainMiss(entry.revision.profile.id, node, graph, explained)
            if (!isPending(node)) explained.set(node.key, explanation)
            nodes.push({ ...planned, explain: explanation })
          }
          return {
            profile: entry.revision.profile.id,
            rev: entry.record?.seq ?? null,
            revision: entry.revision.hash,
            status: nodes.every((n) => n.status === "cached")
              ? "cached"
              : nodes.every((n) => n.status !== "missing")
                ? "remote"
                : "missing",
            nodes,
          } satisfies PlannedProfile
        }),
      )
      return { profiles: planned, broken } satisfies PlanReport
    }).pipe(Effect.mapError(asOwrtError))

  /** A plan of profiles that all resolve: the first one that does not is the plan's error. */
  const plan = (selection: Selection, options: { readonly explain?: boolean | undefined } = {}) =>
    Effect.flatMap(planReporting(selection, options), ({ profiles: planned, broken: [first] }) =>
      first === undefined ? Effect.succeed(planned) : Effect.fail(first.error),
    )

  /** Which column of a build records the key of a node kind. */
  const buildColumn = {
    "fetch-builder": "builder_key",
    "fetch-base-image": "builder_key",
    "customise-image": "image_key",
    "stage-overlay": "overlay_key",
    "make-image": "image_key",
    "collect-artifacts": "artifacts_key",
  } as const

  /**
   * Why a node is not stored: its key inputs against those of the nearest stored node of the same kind
   * that a build of the same profile used. A changed dependency key says why that dependency changed.
   */
  const explainMiss = (
    profile: string,
    node: NodeSpec,
    graph: Graph,
    explained: ReadonlyMap<string, NodeExplanation>,
  ) =>
    Effect.gen(function* () {
      const column = buildColumn[node.kind.kind as keyof typeof buildColumn]
      const keys = column === undefined ? [] : yield* withSql(BuildRecords.recentKeys(profile, column))
      for (const key of keys) {
        if (key === node.key) continue
        const row = yield* withSql(StorePathRecords.find(key))
        if (row?.valid !== 1 || row.key_inputs === null) continue
        // Inputs that do not decode (a damaged row) explain nothing: that key is skipped.
        const before = Option.getOrUndefined(decodeKeyInputs(row.key_inputs))
        if (before === undefined) continue
        const after = JSON.parse(canonicalJson(node.keyInputs)) as Canonical
        const changes = diffKeyInputs(before, after).map((change) => {
          // `overlayKey changed`: say what changed in the overlay, when this plan explained it.
          const field = /^(\S+) changed$/.exec(change)?.[1]
          const value = field === undefined ? undefined : node.keyInputs[field]
          const dep = typeof value === "string" ? explained.get(value) : undefined
          const depKind = graph.nodes.find((n) => n.key === value)?.kind.kind
          return dep && dep.changes.length > 0 ? `${change} (${depKind}: ${dep.changes.join("; ")})` : change
        })
        return { comparedWith: key, changes } satisfies NodeExplanation
      }
      return {
        comparedWith: null,
        changes: [`no stored ${node.kind.kind} of ${profile} to compare with (never built here, or removed)`],
      } satisfies NodeExplanation
    })

  /**
   * Compile facts for looking up what is stored: the archives a release/target was resolved to before
   * (`resolved`), and the builder's device list as the database keeps it (or read from the stored
   * builder). Nothing is fetched and no upstream is asked.
   */
  const storedFacts = (archive: BuilderArchive | undefined, label: string): CompileFacts => ({
    lenient: false,
    storedOnly: true,
    resolveArchive: () => (archive === undefined ? Effect.fail(notRealized(label)) : Effect.succeed(archive)),
    builderInfo: (archive, node) =>
      Effect.gen(function* () {
        const cached = yield* withSql(cachedBuilderInfo(node.key))
        if (cached !== undefined) return cached
        const status = (yield* executor.lookup([{ label, nodes: [node], root: node.key }])).get(node.key)
        if (!status?.path) return undefined
        return yield* storedBuilderInfo(node.key, status.path, archive)
      }).pipe(Effect.mapError(asOwrtError)),
  })

  const notRealized = (label: string) =>
    new NotFoundError({ what: label, detail: "not realized in this store (owrt realize it first)" })

  /**
   * The stored result of a profile revision, from the store and the database alone: its graph compiled
   * with each archive its release/target was resolved to before (the configured upstream's first) until
   * one's result is stored. Secrets are read (the keys need them): one that is missing fails.
   */
  const findStored = (view: ProfileView) =>
    Effect.gen(function* () {
      const p = view.revision.profile
      const label = revisionLabel(view)
      const archives = yield* builders.resolved(p.release ?? "", p.target ?? "")
      // Never resolved: nothing of it is stored. Compiled all the same, so that a secret that cannot
      // be read says so first, as it does wherever keys are computed.
      const candidates = archives.length > 0 ? archives : [undefined]
      for (const archive of candidates) {
        const compiled = yield* services(compileGraph(view, storedFacts(archive, label))).pipe(
          Effect.provideService(Progress, silent),
          Effect.scoped,
          Effect.map((c): CompiledProfile | undefined => c),
          Effect.catchIf(
            (e) => archive === undefined && e._tag === "NotFoundError",
            () => Effect.succeed(undefined),
          ),
        )
        const root = compiled?.graph.root
        if (!compiled || root === null || root === undefined) continue
        const path = (yield* executor.lookup([compiled.graph])).get(root)?.path
        if (path) return { compiled, key: root, path }
      }
      return undefined
    }).pipe(Effect.mapError(asOwrtError))

  const storedResult = (spec: string) =>
    Effect.gen(function* () {
      const view = yield* concreteView(spec)
      const found = yield* findStored(view)
      // A stored result's revision was recorded by the realize that stored it.
      if (!found || view.record === undefined) return yield* notRealized(spec)
      return { profile: view.revision.profile.id, rev: view.record.seq, key: found.key, path: found.path }
    }).pipe(Effect.mapError(asOwrtError))

  const rebuildInto = (spec: string, scratch: string) =>
    Effect.gen(function* () {
      const view = yield* concreteView(spec)
      const found = yield* findStored(view)
      if (!found) return yield* notRealized(spec)
      // An audit uses this revision: it is recorded (realizing it recorded it already, as a rule).
      yield* profiles.record(view)
      const { graph } = found.compiled
      // The builder is an input of the rebuild: fetched again if it was pruned since.
      const builder = graph.nodes.find((node) => node.kind.kind === "fetch-builder")
      if (builder && !isPending(builder)) {
        yield* executor.realize({ label: graph.label, nodes: [builder], root: builder.key })
      }
      const { stored, rebuilt } = yield* executor.audit(graph, scratch)
      return { stored, rebuilt, profile: view.revision.profile.id }
    }).pipe(Effect.scoped, Effect.mapError(asOwrtError))

  const ensureBuilder = (options: EnsureOptions) =>
    Effect.gen(function* () {
      const archive = yield* builders.resolve(options)
      const node = yield* fetchBuilderNode(archive, { stallSeconds: config.timeouts.stall })
      const realized = yield* executor.realize({
        label: `${archive.release} ${archive.target}`,
        nodes: [node],
        root: node.key,
      })
      const stored = realized.get(node.key)
      if (!stored) return yield* new InternalError({ cause: `${archive.name} was not realized` })
      return yield* withSql(recordBuilder({ archive, key: node.key, storePath: stored.path }))
    }).pipe(Effect.scoped, Effect.mapError(asOwrtError))

  const describeBuilder = (options: EnsureOptions) =>
    Effect.gen(function* () {
      const builder = yield* ensureBuilder(options)
      const info = yield* storedBuilderInfo(builder.key, builder.path, builder)
      return { builder, info }
    }).pipe(Effect.mapError(asOwrtError))

  return Realizer.of({
    select: (selection: Selection) => select(selection).pipe(Effect.mapError(asOwrtError)),
    selectReporting: (selection: Selection) => selectReporting(selection).pipe(Effect.mapError(asOwrtError)),
    ensureBuilder,
    describeBuilder,
    realize,
    plan,
    planReporting,
    storedResult,
    rebuildInto,
  })
})
