import { mkdirSync, readdirSync, statSync } from "node:fs"
import { join } from "node:path"
import { Context, Effect, Fiber, Layer, Option, Scope } from "effect"
import { AppConfig } from "../config/appConfig.js"
import { type Database, databaseContext } from "../db/records.js"
import { StorePathRecords } from "../db/storePathRecords.js"
import {
  InternalError,
  isOwrtError,
  NotFoundError,
  type OwrtError,
  SubstituteMissingError,
  UsageError,
  WarningCode,
} from "../errors.js"
import { type NodeState, Progress } from "../progress/progress.js"
import type { NodeKindDefinition } from "../store/nodeKind.js"
import {
  lookupNode,
  type OutputCheck,
  realizeNode,
  type StoredNode,
  storedNode,
  storePathName,
} from "../store/nodeStore.js"
import { useStorePaths } from "../store/storeLock.js"
import { type Graph, isPending, type NodeBuildContext, type NodeReport, type NodeSpec } from "./graph.js"
import { NodeKinds } from "./nodeKinds.js"
import { Runner } from "./runner.js"
import { type SubstituteLookup, SubstituteRun, Substituter } from "./substituter.js"

/*
 * The one executor. It walks a graph in dependency order for:
 * - realize: each node is found in the store, or substituted from a cache, or built by the runner — under
 *   the node's store lock, into a private directory, digested, renamed and made valid by a row (nodeStore);
 *   independent nodes run in parallel, builds wait for a build slot and downloads for a download slot;
 * - lookup (plan): which nodes are stored, one query for many graphs;
 * - audit: the audited nodes are built again into a scratch directory from the stored inputs, for comparing.
 * It reports typed progress events to the `Progress` of the request that called it.
 */

export interface RealizeGraphOptions {
  /** Build the rebuildable nodes again even when stored (`realize --rebuild`). */
  readonly rebuild?: boolean | undefined
  /** Nodes this request has realized already (and holds in use), by key: not looked up again. */
  readonly realized?: ReadonlyMap<string, StoredNode> | undefined
}

/** A realized graph: every node's stored output, by key. */
export type RealizedGraph = ReadonlyMap<string, StoredNode>

/** What plan shows of one node: stored (with its path) or missing. */
export interface NodeStatus {
  readonly key: string
  readonly stored: boolean
  readonly path: string | null
  /** With `remote`, for a node not stored here: the shared cache that holds it; null when none does. */
  readonly remote?: string | null | undefined
}

export interface AuditedGraph {
  /** The graph root's stored output and its rebuild in the scratch directory. */
  readonly stored: string
  readonly rebuilt: string
}

export interface ExecutorService {
  /**
   * Realizes every node. Each node is held in use (`builders prune` and `store gc` leave it alone) from
   * before it is looked up until the caller's scope closes: a request that realizes a builder and then
   * builds with it keeps it for the whole request.
   */
  readonly realize: (
    graph: Graph,
    options?: RealizeGraphOptions,
  ) => Effect.Effect<RealizedGraph, OwrtError, Progress | Scope.Scope>
  /** The store status of every computable node of these graphs (one query however many graphs). */
  readonly lookup: (
    graphs: ReadonlyArray<Graph>,
    options?: { readonly remote?: boolean | undefined },
  ) => Effect.Effect<ReadonlyMap<string, NodeStatus>, OwrtError>
  /** Rebuilds the audited nodes into `scratch` from stored inputs; the root must be stored. */
  readonly audit: (
    graph: Graph,
    scratch: string,
  ) => Effect.Effect<AuditedGraph, OwrtError, Progress | Scope.Scope>
}

export class Executor extends Context.Tag("owrt/Executor")<Executor, ExecutorService>() {}

/** Reports a node's state (and bytes or a log line) to the request's progress, labelled with its graph. */
const nodeEmitter =
  (progress: Context.Tag.Service<Progress>, graph: Graph) =>
  (spec: NodeSpec, state: NodeState, report: NodeReport = {}) =>
    progress.report({
      kind: "node",
      task: graph.label,
      node: spec.kind.kind,
      key: spec.key,
      state,
      ...report,
    })

const asOwrtError = (error: unknown): OwrtError =>
  isOwrtError(error) ? error : new InternalError({ cause: error })

/** What `Executor` is made of: the core (app/appLayer.ts) makes it in its scope; `executorLayer` for tests. */
export const makeExecutor = Effect.gen(function* () {
  const config = yield* AppConfig
  const database = yield* databaseContext
  const kinds = yield* NodeKinds
  const substituter = yield* Substituter
  const runner = yield* Runner
  // The limits every request shares: make runs at once, downloads at once.
  const slots = {
    build: yield* Effect.makeSemaphore(config.jobs),
    download: yield* Effect.makeSemaphore(config.downloads),
  }
  const withSql = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.provide(effect, database)

  const registered = (kind: NodeKindDefinition) =>
    kinds.get(kind.kind) === kind
      ? Effect.void
      : Effect.dieMessage(`node kind ${kind.kind} is not in the executor's table (graph/nodeKinds.ts)`)

  const inSlot = (kind: NodeKindDefinition) =>
    kind.slot === "none"
      ? <A, E, R>(effect: Effect.Effect<A, E, R>) => effect
      : slots[kind.slot].withPermits(1)

  const complete = (graph: Graph) =>
    Effect.gen(function* () {
      const specs: Array<NodeSpec> = []
      for (const node of graph.nodes) {
        if (isPending(node)) {
          return yield* new InternalError({
            cause: `${graph.label}: ${node.kind.kind} has no key yet (${node.reason})`,
          })
        }
        yield* registered(node.kind)
        specs.push(node)
      }
      return specs
    })

  const realize = (graph: Graph, options: RealizeGraphOptions = {}) =>
    Effect.gen(function* () {
      const progress = yield* Progress
      // The caller's scope: the uses of the nodes last as long as the request that realizes them.
      const scope = yield* Effect.scope
      const specs = yield* complete(graph)
      const emit = nodeEmitter(progress, graph)

      /** Publishes `spec` through the store's one path, filled by `fill`. */
      const publish = (
        spec: NodeSpec,
        inputs: ReadonlyMap<string, StoredNode>,
        rebuild: boolean,
        state: NodeState,
        fill: (
          context: NodeBuildContext,
          // biome-ignore lint/suspicious/noConfusingVoidType: a build returns nothing; a substitute may return its check
        ) => Effect.Effect<void | OutputCheck<OwrtError>, OwrtError, Database>,
      ) =>
        withSql(
          realizeNode({
            store: config.store,
            kind: spec.kind.kind,
            key: spec.key,
            name: spec.name,
            lockTimeoutSeconds: config.timeouts.lock,
            rebuild,
            private: spec.private,
            digestKey: spec.digestKey,
            contentDigest: spec.kind.digest === "content",
            keyInputs: spec.keyInputs,
            build: (output, work) =>
              Effect.suspend(() => {
                emit(spec, state)
                return fill({
                  key: spec.key,
                  graph: graph.label,
                  revision: graph.revision,
                  output,
                  work,
                  inputs,
                  report: (report) => emit(spec, state, report),
                })
              }),
          }),
        )

      const run = Option.getOrUndefined(yield* Effect.serviceOption(SubstituteRun))
      const require = run?.require === true
      const warnAbout = (error: OwrtError) =>
        run?.warn({
          code:
            error._tag === "CacheRegistryError"
              ? WarningCode.cacheUnavailable
              : WarningCode.substituteRefused,
          message: `${error.message}; building here instead`,
          cause: error.code,
        })
      // Pushes run beside the builds that follow and are awaited before realize returns.
      const pushes: Array<Fiber.RuntimeFiber<void>> = []
      const push = (spec: NodeSpec, path: string) =>
        Effect.fork(
          substituter.offer(spec, path).pipe(
            Effect.catchAll((error) =>
              Effect.sync(() =>
                run?.warn({
                  code: WarningCode.cachePushFailed,
                  message: `pushing ${spec.kind.kind} ${spec.key} failed: ${error.message}`,
                  cause: error.code,
                }),
              ),
            ),
          ),
        ).pipe(Effect.tap((fiber) => Effect.sync(() => pushes.push(fiber))))

      /** What the caches say of each node this graph may need, asked once for all (concurrently). */
      let lookups: ReadonlyMap<string, SubstituteLookup> = new Map()

      /*
       * `inputs` are awaited only to build: a node found here or substituted needs nothing of its
       * dependencies, so the nodes a cache has are downloaded at once, side by side (each in a download
       * slot), instead of one after the other along the graph.
       */
      const realizeSpec = (
        spec: NodeSpec,
        awaitInputs: Effect.Effect<ReadonlyMap<string, StoredNode>, OwrtError>,
      ) =>
        Effect.gen(function* () {
          emit(spec, "checking")
          const rebuild = options.rebuild === true && spec.kind.rebuildable
          if (!rebuild) {
            const row = yield* withSql(lookupNode(config.store, spec.key))
            if (row) {
              const stored = yield* storedNode(
                { store: config.store, kind: spec.kind.kind, key: spec.key, private: spec.private },
                row,
              )
              return { stored, substituted: undefined }
            }
            const lookup: SubstituteLookup = spec.private
              ? { _tag: "miss" }
              : (lookups.get(spec.key) ?? { _tag: "miss" })
            if (lookup._tag === "hit") {
              const substituted = yield* Effect.either(
                slots.download.withPermits(1)(
                  publish(spec, new Map(), false, "substituting", (context) =>
                    Effect.scoped(substituter.fetch(spec, lookup.source, context.output, context.report)),
                  ),
                ),
              )
              // Another process may have published it while this one waited for the lock: a plain hit.
              if (substituted._tag === "Right")
                return {
                  stored: substituted.right,
                  substituted: substituted.right.cacheHit ? undefined : lookup.source,
                }
              if (require) return yield* Effect.fail(substituted.left)
              warnAbout(substituted.left)
              emit(spec, "building", {
                line: `substitute refused (${substituted.left.code}); building it here`,
              })
            } else if (require && !spec.private) {
              return yield* Effect.fail(
                lookup._tag === "error"
                  ? lookup.error
                  : new SubstituteMissingError({
                      node: `${graph.label}: ${spec.kind.kind} ${spec.key}`,
                      substituters: substituter.sources,
                    }),
              )
            } else if (lookup._tag === "error") warnAbout(lookup.error)
          }
          const inputs = yield* awaitInputs
          const stored = yield* inSlot(spec.kind)(
            publish(spec, inputs, rebuild, "building", (context) =>
              runner.run(spec, context).pipe(Effect.scoped),
            ),
          )
          if (!stored.cacheHit && !spec.private) yield* push(spec, stored.path)
          return { stored, substituted: undefined }
        }).pipe(
          Effect.tap(({ stored }) => (spec.stored ? withSql(spec.stored(stored)) : Effect.void)),
          Effect.tap(({ stored, substituted }) =>
            Effect.sync(() => emit(spec, stored.cacheHit && substituted === undefined ? "cached" : "done")),
          ),
          Effect.map(
            ({ stored, substituted }): StoredNode =>
              substituted === undefined ? stored : { ...stored, cacheHit: false, substituted },
          ),
          Effect.tapErrorCause(() => Effect.sync(() => emit(spec, "failed"))),
          Effect.mapError(asOwrtError),
        )

      // Every node is in use from before it is looked up (whoever removes it either sees this use or
      // removed it before it was found) until the caller's request ends. One statement for all of them.
      const fresh = specs.filter((spec) => !options.realized?.has(spec.key))
      yield* withSql(useStorePaths(fresh.map((spec) => `node:${spec.key}`))).pipe(Scope.extend(scope))

      // Everything stored, the usual case of a realize done before: found in one pass, without the
      // machinery that builds missing nodes in parallel (a node to rebuild is never found).
      const found = yield* findAllStored(fresh, options.rebuild === true)
      if (found) {
        for (const spec of fresh) emit(spec, "queued")
        const realized = new Map<string, StoredNode>()
        for (const spec of specs) {
          const known = options.realized?.get(spec.key)
          const row = found.get(spec.key)
          if (known) realized.set(spec.key, known)
          else if (row) {
            emit(spec, "checking")
            const stored = yield* storedNode(
              { store: config.store, kind: spec.kind.kind, key: spec.key, private: spec.private },
              row,
            ).pipe(
              Effect.tap((stored) => (spec.stored ? withSql(spec.stored(stored)) : Effect.void)),
              Effect.tapErrorCause(() => Effect.sync(() => emit(spec, "failed"))),
              Effect.mapError(asOwrtError),
            )
            emit(spec, "cached")
            realized.set(spec.key, stored)
          }
        }
        return realized as RealizedGraph
      }

      // One round of questions to the caches for every node not stored here (none when there is no cache).
      if (substituter.sources.length > 0) {
        const valid = new Set((yield* withSql(StorePathRecords.listValid())).map((r) => r.key))
        const wanted = fresh.filter(
          (spec) =>
            !spec.private && (!valid.has(spec.key) || (options.rebuild === true && spec.kind.rebuildable)),
        )
        const asked = options.rebuild === true ? wanted.filter((spec) => !spec.kind.rebuildable) : wanted
        if (asked.length > 0) lookups = yield* substituter.query(asked, { toFetch: true })
      }

      // One cached effect per node, made in dependency order: each awaits its dependencies' effects, so
      // independent nodes run in parallel and a shared dependency runs once. A node this request already
      // realized (the builder, whose device list its graph needed) is taken as it is.
      const outputs = new Map<string, Effect.Effect<StoredNode, OwrtError>>()
      for (const spec of specs) {
        const known = options.realized?.get(spec.key)
        if (known) {
          outputs.set(spec.key, Effect.succeed(known))
          continue
        }
        emit(spec, "queued")
        const deps = spec.deps.map((dep) => {
          const output = outputs.get(dep)
          return output === undefined
            ? Effect.dieMessage(`${graph.label}: ${spec.kind.kind} depends on ${dep}, which comes later`)
            : Effect.map(output, (stored) => [dep, stored] as const)
        })
        const run = realizeSpec(
          spec,
          Effect.map(Effect.all(deps, { concurrency: "unbounded" }), (inputs) => new Map(inputs)),
        )
        outputs.set(spec.key, yield* Effect.cached(run))
      }
      const realized = yield* Effect.forEach(
        specs,
        (spec) =>
          Effect.map(
            outputs.get(spec.key) as Effect.Effect<StoredNode, OwrtError>,
            (s) => [spec.key, s] as const,
          ),
        { concurrency: "unbounded" },
      )
      // Pushes finish before the request does (a CI job that exits has pushed what it built).
      yield* Effect.forEach(pushes, Fiber.join, { discard: true })
      return new Map(realized) as RealizedGraph
    })

  /**
   * The stored row of every one of `specs` when all are stored (and none is to be rebuilt); undefined as
   * soon as one is not.
   */
  const findAllStored = (specs: ReadonlyArray<NodeSpec>, rebuild: boolean) =>
    withSql(
      Effect.gen(function* () {
        if (rebuild && specs.some((spec) => spec.kind.rebuildable)) return undefined
        const rows = new Map<string, { readonly name: string }>()
        for (const spec of specs) {
          const row = yield* lookupNode(config.store, spec.key)
          if (!row) return undefined
          rows.set(spec.key, row)
        }
        return rows
      }),
    ).pipe(Effect.mapError(asOwrtError))

  const lookup = (
    graphs: ReadonlyArray<Graph>,
    lookupOptions: { readonly remote?: boolean | undefined } = {},
  ) =>
    Effect.gen(function* () {
      const rows = new Map((yield* withSql(StorePathRecords.listValid())).map((r) => [r.key, r] as const))
      const statuses = new Map<string, NodeStatus>()
      // A row whose directory is gone is not stored (gc or a hand removed it). Many nodes are checked
      // against one listing of the store; a few, each with a stat.
      const nodeCount = graphs.reduce((sum, graph) => sum + graph.nodes.length, 0)
      const isStored =
        nodeCount > listStoreAbove
          ? storeDirectories(config.store)
          : (name: string) => existsDirectory(join(config.store, name))
      for (const graph of graphs) {
        for (const node of graph.nodes) {
          if (isPending(node) || statuses.has(node.key)) continue
          const row = rows.get(node.key)
          const name = row ? storePathName(node.key, row.name) : null
          const present = name !== null && isStored(name)
          statuses.set(node.key, {
            key: node.key,
            stored: present,
            path: present ? join(config.store, name) : null,
          })
        }
      }
      if (lookupOptions.remote === true && substituter.sources.length > 0) {
        const missing = new Map<string, NodeSpec>()
        for (const graph of graphs)
          for (const node of graph.nodes)
            if (!isPending(node) && !node.private && statuses.get(node.key)?.stored === false)
              missing.set(node.key, node)
        const answers = yield* substituter.query([...missing.values()])
        for (const [key, answer] of answers) {
          const status = statuses.get(key)
          if (status) statuses.set(key, { ...status, remote: answer._tag === "hit" ? answer.source : null })
        }
      }
      return statuses as ReadonlyMap<string, NodeStatus>
    }).pipe(Effect.mapError(asOwrtError))

  const audit = (graph: Graph, scratch: string) =>
    Effect.gen(function* () {
      const emitNode = nodeEmitter(yield* Progress, graph)
      const specs = yield* complete(graph)
      const root = specs.find((spec) => spec.key === graph.root)
      yield* withSql(useStorePaths(specs.map((spec) => `node:${spec.key}`)))
      const statuses = yield* lookup([graph])
      const storedPath = (key: string) => statuses.get(key)?.path ?? null
      if (!root || storedPath(root.key) === null) {
        return yield* new NotFoundError({
          what: graph.label,
          detail: "not realized in this store (owrt realize it first)",
        })
      }
      const rebuilt = new Map<string, string>()
      for (const spec of specs) {
        if (!spec.kind.audited) continue
        const inputs = new Map<string, StoredNode>()
        for (const dep of spec.deps) {
          const path = rebuilt.get(dep) ?? storedPath(dep)
          const kind = specs.find((s) => s.key === dep)?.kind.kind ?? "unknown"
          if (path === null) {
            return yield* new NotFoundError({
              what: graph.label,
              detail: `the ${kind} output ${dep} is not in the store (owrt realize it first)`,
            })
          }
          inputs.set(dep, { key: dep, kind, path, cacheHit: true })
        }
        const output = join(scratch, storePathName(spec.key, spec.name))
        const work = join(scratch, `${spec.key}.work`)
        yield* Effect.try({
          try: () => {
            mkdirSync(output, { recursive: true })
            mkdirSync(work, { recursive: true })
          },
          catch: (cause) => new InternalError({ cause }),
        })
        const emit = (state: NodeState, report: NodeReport = {}) => emitNode(spec, state, report)
        emit("building")
        yield* inSlot(spec.kind)(
          withSql(
            runner
              .run(spec, {
                key: spec.key,
                output,
                work,
                inputs,
                report: (report) => emit("building", report),
              })
              .pipe(Effect.scoped),
          ),
        ).pipe(Effect.tapErrorCause(() => Effect.sync(() => emit("failed"))))
        emit("done")
        rebuilt.set(spec.key, output)
      }
      const rebuiltRoot = rebuilt.get(root.key)
      if (rebuiltRoot === undefined) {
        return yield* new UsageError({
          detail: `${graph.label}: its ${root.kind.kind} node is not audited`,
        })
      }
      return { stored: storedPath(root.key) ?? "", rebuilt: rebuiltRoot }
    }).pipe(Effect.mapError(asOwrtError))

  return { realize, lookup, audit } satisfies ExecutorService
})

export const executorLayer = Layer.effect(Executor, makeExecutor)

/** From how many nodes a lookup reads the store's directory once instead of a stat per node. */
const listStoreAbove = 32

/** Whether a name is a directory of the store, from one listing (nothing is stored when it cannot be read). */
const storeDirectories = (store: string): ((name: string) => boolean) => {
  let names: ReadonlySet<string>
  try {
    names = new Set(
      readdirSync(store, { withFileTypes: true })
        .filter((entry) => entry.isDirectory())
        .map((entry) => entry.name),
    )
  } catch {
    names = new Set()
  }
  return (name) => names.has(name)
}

const existsDirectory = (path: string): boolean => {
  try {
    return statSync(path).isDirectory()
  } catch {
    return false
  }
}
