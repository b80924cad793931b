import { Context, Layer } from "effect"
import type { NodeKindDefinition } from "../store/nodeKind.js"
import { builtinNodeKinds } from "./kinds/builtin.js"

/*
 * The table of node kinds the executor knows. A new kind is one module (its definition, key inputs and
 * build) plus one entry in `builtinNodeKinds`; tests register their own kinds with `nodeKindsLayer`.
 */
export class NodeKinds extends Context.Tag("owrt/NodeKinds")<
  NodeKinds,
  ReadonlyMap<string, NodeKindDefinition>
>() {}

/** The table of node kinds by name. */
export const nodeKindTable = (kinds: ReadonlyArray<NodeKindDefinition> = builtinNodeKinds) =>
  new Map(kinds.map((kind) => [kind.kind, kind] as const))

export const nodeKindsLayer = (kinds: ReadonlyArray<NodeKindDefinition> = builtinNodeKinds) =>
  Layer.succeed(NodeKinds, nodeKindTable(kinds))
