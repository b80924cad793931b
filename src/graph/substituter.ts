import { Context, Effect, Layer, type Scope } from "effect"
import type { OwrtError } from "../errors.js"
import type { NodeReport, NodeSpec } from "./graph.js"

/*
 * A substituter is asked before a node is built: "do you have key K?" If it has, it writes the output,
 * verified, into a private directory that the executor then publishes like a built one (digest → rename →
 * row). It is also offered every node built here, and may keep it (a shared cache pushes it). Nodes whose
 * output holds secrets are never asked for nor offered.
 */
export interface SubstituterService {
  /** The caches there are, for messages (`none` when there is none). */
  readonly describe: string
  /** Whether some cache has the node's output. Fast, and never fails: a cache that cannot answer has nothing. */
  readonly query: (node: NodeSpec) => Effect.Effect<boolean>
  /** Writes the node's output into `output`, verified, or fails; the executor then builds the node itself. */
  readonly fetch: (
    node: NodeSpec,
    output: string,
    report: (report: NodeReport) => void,
  ) => Effect.Effect<void, OwrtError, Scope.Scope>
  /** Offered each node built here, with its stored path. Failing to keep it fails nothing. */
  readonly offer: (node: NodeSpec, path: string) => Effect.Effect<void>
}

export class Substituter extends Context.Tag("owrt/Substituter")<Substituter, SubstituterService>() {}

/** No shared cache: every node is built here (the default). */
export const noSubstituter = Layer.succeed(Substituter, {
  describe: "none",
  query: () => Effect.succeed(false),
  fetch: (node) => Effect.dieMessage(`no substituter can fetch ${node.kind.kind} ${node.key}`),
  offer: () => Effect.void,
})
