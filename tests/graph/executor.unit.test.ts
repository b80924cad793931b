import { existsSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Cause, Deferred, Effect, Exit, Fiber, Layer, Option } from "effect"
import { AppConfig } from "../../src/config/appConfig.js"
import { BuildFailedError } from "../../src/errors.js"
import { Executor, executorLayer } from "../../src/graph/executor.js"
import { type Graph, makeSpec, type NodeSpec } from "../../src/graph/graph.js"
import { nodeKindsLayer } from "../../src/graph/nodeKinds.js"
import { localRunner, Runner } from "../../src/graph/runner.js"
import { noSubstituter, Substituter } from "../../src/graph/substituter.js"
import { Progress, type ProgressEvent } from "../../src/progress/progress.js"
import type { NodeKindDefinition } from "../../src/store/nodeKind.js"
import { makeWorkDirectory } from "../../src/store/workDirectory.js"
import { recordsBackends, stopTestPostgres } from "../helpers/recordsBackends.js"
import type { scratchStoreLayer } from "../helpers/testLayers.js"

/*
 * The executor with a node kind it has never heard of: a fake "concat" kind registered in its table, whose
 * build writes its parameter and its inputs' outputs into one file. Nothing in the executor knows it.
 */
const concatKind: NodeKindDefinition = {
  kind: "fake-concat",
  schema: 1,
  description: "test kind: concatenates its inputs and a word",
  slot: "build",
  digest: "content",
  rebuildable: true,
  audited: true,
}

interface Counters {
  readonly builds: Array<string>
}

const concat = (
  word: string,
  deps: ReadonlyArray<NodeSpec>,
  counters: Counters,
  options: { fail?: boolean; wait?: Effect.Effect<void>; started?: Deferred.Deferred<void> } = {},
) =>
  makeSpec({
    kind: concatKind,
    name: word,
    deps: deps.map((d) => d.key),
    keyInputs: { word, deps: deps.map((d) => d.key) },
    private: false,
    build: ({ output, inputs, report }) =>
      Effect.gen(function* () {
        counters.builds.push(word)
        if (options.started) yield* Deferred.succeed(options.started, undefined)
        if (options.wait) yield* options.wait
        report({ line: `concatenating ${word}` })
        if (options.fail) {
          return yield* new BuildFailedError({
            profile: word,
            step: "concat",
            exit: 1,
            logTail: "",
            timedOut: false,
          })
        }
        const parts = deps.map((d) => readFileSync(join(inputs.get(d.key)?.path ?? "", "out"), "utf8"))
        writeFileSync(join(output, "out"), [...parts, word].join("+"))
      }),
  })

const graphOf = (label: string, nodes: ReadonlyArray<NodeSpec>): Graph => ({
  label,
  nodes,
  root: nodes[nodes.length - 1]?.key ?? null,
})

const collect = () => {
  const events: Array<ProgressEvent> = []
  return { events, layer: Layer.succeed(Progress, { report: (e: ProgressEvent) => void events.push(e) }) }
}

type StoreLayer = ReturnType<typeof scratchStoreLayer>

const executorWith = (
  store: StoreLayer,
  extra: { substituter?: Layer.Layer<Substituter>; runner?: Layer.Layer<Runner> } = {},
) =>
  executorLayer.pipe(
    Layer.provide(
      Layer.mergeAll(
        nodeKindsLayer([concatKind]),
        extra.substituter ?? noSubstituter,
        extra.runner ?? localRunner,
      ),
    ),
    Layer.provideMerge(store),
  )

const output = (path: string) => readFileSync(join(path, "out"), "utf8")

afterAll(stopTestPostgres)

// The records (and with PostgreSQL, the advisory store locks) in either database.
describe.each(recordsBackends)("executor with a fake node kind ($name)", ({ layer: storeLayer }) => {
  const executor = (extra: Parameters<typeof executorWith>[1] = {}) => executorWith(storeLayer(), extra)

  it.scopedLive(
    "realizes a graph once: a diamond's shared node builds once, a second realize builds nothing",
    () =>
      Effect.gen(function* () {
        const counters: Counters = { builds: [] }
        const a = yield* concat("a", [], counters)
        const b = yield* concat("b", [a], counters)
        const c = yield* concat("c", [a], counters)
        const d = yield* concat("d", [b, c], counters)
        const graph = graphOf("diamond", [a, b, c, d])
        const run = yield* Executor
        const progress = collect()
        const first = yield* run.realize(graph).pipe(Effect.provide(progress.layer))
        expect(output(first.get(d.key)?.path ?? "")).toBe("a+b+a+c+d")
        expect([...counters.builds].sort()).toEqual(["a", "b", "c", "d"])
        expect(first.get(d.key)?.cacheHit).toBe(false)
        const states = progress.events.flatMap((e) => (e.kind === "node" && e.key === d.key ? [e.state] : []))
        expect(states).toEqual(["queued", "checking", "building", "building", "done"])
        expect(progress.events.some((e) => e.kind === "node" && e.line === "concatenating d")).toBe(true)

        const cached = collect()
        const again = yield* run.realize(graph).pipe(Effect.provide(cached.layer))
        expect(counters.builds.length).toBe(4)
        expect([...again.values()].every((n) => n.cacheHit)).toBe(true)
        expect(output(again.get(d.key)?.path ?? "")).toBe("a+b+a+c+d")
        for (const node of [a, b, c, d]) {
          const states = cached.events.flatMap((e) =>
            e.kind === "node" && e.key === node.key ? [e.state] : [],
          )
          expect(states).toEqual(["queued", "checking", "cached"])
        }

        // A graph of stored nodes and one new one: the stored are taken as they are, the new one is built.
        const e = yield* concat("e", [d], counters)
        const grown = collect()
        const more = yield* run.realize(graphOf("grown", [a, b, c, d, e])).pipe(Effect.provide(grown.layer))
        expect(counters.builds).toContain("e")
        expect(counters.builds.length).toBe(5)
        expect(output(more.get(e.key)?.path ?? "")).toBe("a+b+a+c+d+e")
        expect(more.get(d.key)?.cacheHit).toBe(true)
        expect(more.get(e.key)?.cacheHit).toBe(false)

        const statuses = yield* run.lookup([graph])
        expect([...statuses.values()].every((s) => s.stored)).toBe(true)
      }).pipe(Effect.provide(executor())),
  )

  it.scopedLive("builds independent nodes at the same time", () =>
    Effect.gen(function* () {
      const counters: Counters = { builds: [] }
      const aStarted = yield* Deferred.make<void>()
      const bStarted = yield* Deferred.make<void>()
      // Each waits for the other to have started: only a parallel walk finishes.
      const a = yield* concat("a", [], counters, { started: aStarted, wait: Deferred.await(bStarted) })
      const b = yield* concat("b", [], counters, { started: bStarted, wait: Deferred.await(aStarted) })
      const top = yield* concat("top", [a, b], counters)
      const realized = yield* (yield* Executor)
        .realize(graphOf("parallel", [a, b, top]))
        .pipe(Effect.provide(collect().layer), Effect.timeout("20 seconds"))
      expect(output(realized.get(top.key)?.path ?? "")).toBe("a+b+top")
    }).pipe(Effect.provide(executor())),
  )

  it.scopedLive(
    "a failing node fails the realize with its typed error; what finished stays, nothing half-made",
    () =>
      Effect.gen(function* () {
        const counters: Counters = { builds: [] }
        const a = yield* concat("a", [], counters)
        const bad = yield* concat("bad", [a], counters, { fail: true })
        const after = yield* concat("after", [bad], counters)
        const graph = graphOf("failing", [a, bad, after])
        const run = yield* Executor
        const progress = collect()
        const exit = yield* Effect.exit(run.realize(graph).pipe(Effect.provide(progress.layer)))
        expect(Exit.isFailure(exit)).toBe(true)
        if (Exit.isFailure(exit)) {
          expect(Option.getOrUndefined(Cause.failureOption(exit.cause))).toMatchObject({
            code: "build_failed",
          })
        }
        const statuses = yield* run.lookup([graph])
        expect(statuses.get(a.key)?.stored).toBe(true)
        expect(statuses.get(bad.key)?.stored).toBe(false)
        expect(statuses.get(after.key)?.stored).toBe(false)
        expect(counters.builds).not.toContain("after")
        expect(
          progress.events.some((e) => e.kind === "node" && e.key === bad.key && e.state === "failed"),
        ).toBe(true)
        const config = yield* AppConfig
        expect(existsSync(join(config.store, `${bad.key}-bad`))).toBe(false)
      }).pipe(Effect.provide(executor())),
  )

  it.scopedLive("an interrupted build leaves nothing behind and its lock free", () =>
    Effect.gen(function* () {
      const counters: Counters = { builds: [] }
      const started = yield* Deferred.make<void>()
      const slow = yield* concat("slow", [], counters, { started, wait: Effect.never })
      const run = yield* Executor
      const fiber = yield* Effect.fork(
        run.realize(graphOf("slow", [slow])).pipe(Effect.provide(collect().layer)),
      )
      yield* Deferred.await(started)
      yield* Fiber.interrupt(fiber)
      expect((yield* run.lookup([graphOf("slow", [slow])])).get(slow.key)?.stored).toBe(false)
      // The same node again: the lock was released, so it builds (and now finishes).
      const quick = yield* concat("slow", [], { builds: [] })
      const realized = yield* run
        .realize(graphOf("again", [quick]))
        .pipe(Effect.provide(collect().layer), Effect.timeout("20 seconds"))
      expect(output(realized.get(quick.key)?.path ?? "")).toBe("slow")
    }).pipe(Effect.provide(executor())),
  )

  it.scopedLive("asks the substituter first, publishes what it fetched, and offers what it built", () =>
    Effect.gen(function* () {
      const counters: Counters = { builds: [] }
      const a = yield* concat("a", [], counters)
      const b = yield* concat("b", [a], counters)
      const offered: Array<string> = []
      // An in-memory cache that has `a`'s output (with other content, so its use is visible).
      const substituter = Layer.succeed(Substituter, {
        sources: ["memory"],
        query: (nodes) =>
          Effect.succeed(
            new Map(
              nodes.map((node) => [
                node.key,
                node.key === a.key
                  ? ({ _tag: "hit", source: "memory" } as const)
                  : ({ _tag: "miss" } as const),
              ]),
            ),
          ),
        fetch: (_node, _source, out) => Effect.sync(() => writeFileSync(join(out, "out"), "A-from-cache")),
        offer: (node, path) => Effect.sync(() => void offered.push(`${node.key}:${output(path)}`)),
      })
      const progress = collect()
      yield* Effect.gen(function* () {
        const realized = yield* (yield* Executor)
          .realize(graphOf("substituted", [a, b]))
          .pipe(Effect.provide(progress.layer))
        expect(counters.builds).toEqual(["b"])
        expect(output(realized.get(b.key)?.path ?? "")).toBe("A-from-cache+b")
        expect(realized.get(a.key)?.cacheHit).toBe(false)
        expect(offered).toEqual([`${b.key}:A-from-cache+b`])
      }).pipe(Effect.provide(executor({ substituter })))
      const aStates = progress.events.flatMap((e) => (e.kind === "node" && e.key === a.key ? [e.state] : []))
      expect(aStates).toContain("substituting")
      expect(aStates).not.toContain("building")
    }),
  )

  it.scopedLive("downloads the nodes a cache has side by side, not one after the other along the graph", () =>
    Effect.gen(function* () {
      const counters: Counters = { builds: [] }
      const a = yield* concat("a", [], counters)
      const b = yield* concat("b", [a], counters)
      // `a`'s download finishes only once `b`'s has begun: one after the other, this graph never ends.
      const bStarted = yield* Deferred.make<void>()
      const substituter = Layer.succeed(Substituter, {
        sources: ["memory"],
        query: (nodes) =>
          Effect.succeed(
            new Map(nodes.map((node) => [node.key, { _tag: "hit", source: "memory" } as const])),
          ),
        fetch: (node, _source, out) =>
          node.key === a.key
            ? Effect.zipRight(
                Deferred.await(bStarted),
                Effect.sync(() => writeFileSync(join(out, "out"), "A")),
              )
            : Effect.zipRight(
                Deferred.succeed(bStarted, undefined),
                Effect.sync(() => writeFileSync(join(out, "out"), "B")),
              ),
        offer: () => Effect.void,
      })
      yield* Effect.gen(function* () {
        const realized = yield* (yield* Executor)
          .realize(graphOf("side-by-side", [a, b]))
          .pipe(Effect.provide(collect().layer), Effect.timeout("20 seconds"))
        expect(counters.builds).toEqual([])
        expect(output(realized.get(a.key)?.path ?? "")).toBe("A")
        expect(output(realized.get(b.key)?.path ?? "")).toBe("B")
      }).pipe(Effect.provide(executor({ substituter })))
    }),
  )

  it.scopedLive("a substitute that fails verification is built here instead", () =>
    Effect.gen(function* () {
      const counters: Counters = { builds: [] }
      const a = yield* concat("a", [], counters)
      const substituter = Layer.succeed(Substituter, {
        sources: ["broken"],
        query: (nodes) =>
          Effect.succeed(
            new Map(nodes.map((node) => [node.key, { _tag: "hit", source: "broken" } as const])),
          ),
        fetch: () =>
          Effect.fail(
            new BuildFailedError({ profile: "a", step: "substitute", exit: 1, logTail: "", timedOut: false }),
          ),
        offer: () => Effect.void,
      })
      yield* Effect.gen(function* () {
        const realized = yield* (yield* Executor)
          .realize(graphOf("fallback", [a]))
          .pipe(Effect.provide(collect().layer))
        expect(counters.builds).toEqual(["a"])
        expect(output(realized.get(a.key)?.path ?? "")).toBe("a")
      }).pipe(Effect.provide(executor({ substituter })))
    }),
  )

  it.scopedLive("hands every build to the runner", () =>
    Effect.gen(function* () {
      const counters: Counters = { builds: [] }
      const a = yield* concat("a", [], counters)
      const ran: Array<string> = []
      const runner = Layer.succeed(Runner, {
        describe: "recording",
        run: (node, context) =>
          Effect.zipRight(
            Effect.sync(() => void ran.push(node.name)),
            node.build(context),
          ),
      })
      yield* Effect.flatMap(Executor, (run) =>
        run.realize(graphOf("runner", [a])).pipe(Effect.provide(collect().layer)),
      ).pipe(Effect.provide(executor({ runner })))
      expect(ran).toEqual(["a"])
    }),
  )

  it.scopedLive(
    "audits: rebuilds the audited nodes into scratch from stored inputs, leaving the store alone",
    () =>
      Effect.gen(function* () {
        const counters: Counters = { builds: [] }
        const a = yield* concat("a", [], counters)
        const b = yield* concat("b", [a], counters)
        const graph = graphOf("audit", [a, b])
        const run = yield* Executor
        const unrealized = yield* Effect.either(
          run.audit(graph, "/nonexistent").pipe(Effect.provide(collect().layer)),
        )
        expect(unrealized).toMatchObject({ _tag: "Left", left: { code: "not_found", exitCode: 4 } })
        yield* run.realize(graph).pipe(Effect.provide(collect().layer))
        const config = yield* AppConfig
        const scratch = yield* makeWorkDirectory(config.store, "audit-test")
        const audited = yield* run.audit(graph, scratch).pipe(Effect.provide(collect().layer))
        expect(audited.rebuilt.startsWith(scratch)).toBe(true)
        expect(output(audited.rebuilt)).toBe(output(audited.stored))
        expect(counters.builds).toEqual(["a", "b", "a", "b"])
      }).pipe(Effect.provide(executor())),
  )

  it.scopedLive("reports each request's progress to that request only", () =>
    Effect.gen(function* () {
      const counters: Counters = { builds: [] }
      const x = yield* concat("x", [], counters)
      const y = yield* concat("y", [], counters)
      const run = yield* Executor
      const first = collect()
      const second = collect()
      yield* Effect.all(
        [
          run.realize(graphOf("first", [x])).pipe(Effect.provide(first.layer)),
          run.realize(graphOf("second", [y])).pipe(Effect.provide(second.layer)),
        ],
        { concurrency: "unbounded" },
      )
      expect(first.events.length).toBeGreaterThan(0)
      expect(first.events.every((e) => e.task === "first")).toBe(true)
      expect(second.events.every((e) => e.task === "second")).toBe(true)
    }).pipe(Effect.provide(executor())),
  )

  it.scopedLive("refuses a node whose kind is not in its table", () =>
    Effect.gen(function* () {
      const stranger = yield* makeSpec({
        kind: { ...concatKind, kind: "unregistered" },
        name: "x",
        deps: [],
        keyInputs: {},
        private: false,
        build: () => Effect.void,
      })
      const exit = yield* Effect.exit(
        (yield* Executor).realize(graphOf("stranger", [stranger])).pipe(Effect.provide(collect().layer)),
      )
      expect(Exit.isFailure(exit) && JSON.stringify(exit.cause)).toContain("not in the executor's table")
    }).pipe(Effect.provide(executor())),
  )
})
