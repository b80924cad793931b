import { Context, Effect, Layer, type Scope } from "effect"
import type { OwrtError, WarningCode } from "../errors.js"
import type { OutputCheck } from "../store/nodeStore.js"
import type { NodeReport, NodeSpec } from "./graph.js"

/*
 * A substituter is asked before nodes are built: "which of these keys do you have?" — once for a whole
 * graph, concurrently. For a hit it writes the output, verified, into a private directory that the
 * executor then publishes like a built one (digest → rename → row). It is also offered every node built
 * here, and may keep it (a shared cache pushes it). Nodes whose output holds secrets are never asked for
 * nor offered.
 */

/** What the caches say of one node: one has it (and which), none has it, or asking failed. */
export type SubstituteLookup =
  | { readonly _tag: "hit"; readonly source: string }
  | { readonly _tag: "miss" }
  | { readonly _tag: "error"; readonly error: OwrtError }

export interface SubstituterService {
  /** The caches there are (`oci://host/repo`), in the order they are asked; empty when there is none. */
  readonly sources: ReadonlyArray<string>
  /**
   * Asks every cache about all these nodes at once (concurrently). Never fails: a failure is an answer.
   * `toFetch`: the hits are about to be fetched (a realize), so a cache may fetch what it needs for that
   * already; without it (a plan) the question only asks.
   */
  readonly query: (
    nodes: ReadonlyArray<NodeSpec>,
    options?: { readonly toFetch?: boolean },
  ) => Effect.Effect<ReadonlyMap<string, SubstituteLookup>>
  /**
   * Writes the node's output from `source` into `output`, verified, or fails (then it is built here). It
   * may hand back a check of the output's tree digest, which the store makes on the digest it takes
   * before publishing (one walk of the tree).
   */
  readonly fetch: (
    node: NodeSpec,
    source: string,
    output: string,
    report: (report: NodeReport) => void,
    // biome-ignore lint/suspicious/noConfusingVoidType: a build returns nothing; a substitute may return its check
  ) => Effect.Effect<void | OutputCheck<OwrtError>, OwrtError, Scope.Scope>
  /** Offered each node built here, with its stored path; whether it keeps (pushes) it is its own setting. */
  readonly offer: (node: NodeSpec, path: string) => Effect.Effect<void, OwrtError>
}

export class Substituter extends Context.Tag("owrt/Substituter")<Substituter, SubstituterService>() {}

/** No shared cache: every node is built here (the default). */
export const noSubstituterService: SubstituterService = {
  sources: [],
  query: (nodes) => Effect.succeed(new Map(nodes.map((node) => [node.key, { _tag: "miss" } as const]))),
  fetch: (node) => Effect.dieMessage(`no substituter can fetch ${node.kind.kind} ${node.key}`),
  offer: () => Effect.void,
}

export const noSubstituter = Layer.succeed(Substituter, noSubstituterService)

/** A warning a run reports once (a cache that is down, an entry refused). */
export interface RunWarning {
  readonly code:
    | typeof WarningCode.cacheUnavailable
    | typeof WarningCode.substituteRefused
    | typeof WarningCode.cachePushFailed
  readonly message: string
  /** The error code behind it (`cache_registry_unavailable`, `cache_signature_untrusted`, …). */
  readonly cause: string
}

/**
 * What one request (a realize batch) asks of substitution, in its context: whether every node must come
 * from a cache (`--require-substitutes`: building one fails the request), and where warnings go — each
 * code once per request.
 */
export class SubstituteRun extends Context.Tag("owrt/SubstituteRun")<
  SubstituteRun,
  { readonly require: boolean; readonly warn: (warning: RunWarning) => void }
>() {}

/** A request's substitution context collecting its warnings, one per code. */
export const makeSubstituteRun = (require: boolean) => {
  const warnings: Array<RunWarning> = []
  const seen = new Set<string>()
  return {
    warnings,
    service: {
      require,
      warn: (warning: RunWarning) => {
        const id = `${warning.code}:${warning.cause}`
        if (seen.has(id)) return
        seen.add(id)
        warnings.push(warning)
      },
    },
  }
}
