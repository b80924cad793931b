import { Effect, type Scope } from "effect"
import type { Database } from "../db/records.js"
import type { OwrtError } from "../errors.js"
import { nodeKey } from "../store/nodeKey.js"
import type { NodeKindDefinition } from "../store/nodeKind.js"
import type { StoredNode } from "../store/nodeStore.js"
import type { Canonical } from "../text/canonicalJson.js"

/*
 * The graph as data. A profile revision compiles (graph/compileGraph.ts) into node specs; one executor
 * (graph/executor.ts) walks them for realize, plan and audit. A spec carries everything the executor needs
 * and nothing profile-specific: its key and the inputs that made it, its dependencies by key, and how to
 * build its output into an empty directory.
 */

/** What a node's build may report while it runs; the executor adds the node's identity. */
export interface NodeReport {
  readonly bytes?: number | undefined
  readonly total?: number | undefined
  readonly line?: string | undefined
}

export interface NodeBuildContext {
  /** The node's own key (an image's build marker names it). */
  readonly key: string
  /** The label of the graph it is realized for (`ap@3`): a build farm's worker compiles that graph again. */
  readonly graph?: string | undefined
  /** The profile revision the graph was compiled from: a worker without it (an ASU request) resolves it. */
  readonly revision?: GraphRevision | undefined
  /** An empty directory to build the output into; published by rename when the build succeeds. */
  readonly output: string
  /** A private scratch directory next to it, removed afterwards. */
  readonly work: string
  /** The stored outputs of the node's dependencies, by key. */
  readonly inputs: ReadonlyMap<string, StoredNode>
  readonly report: (report: NodeReport) => void
}

/** What a build may use from the environment the executor runs in. */
export type NodeBuildEnv = Database | Scope.Scope

export interface NodeSpec {
  readonly kind: NodeKindDefinition
  readonly key: string
  /** The store path is `<key>-<name>`. */
  readonly name: string
  /** Keys of the nodes whose outputs this one reads. */
  readonly deps: ReadonlyArray<string>
  /** Exactly what the key hashes (with the kind and its schema): kept as data, so misses can be explained. */
  readonly keyInputs: { readonly [k: string]: Canonical | undefined }
  /** The output holds secret values: owner-only in the store, never offered to a shared cache. */
  readonly private: boolean
  /** Digest file contents under this key (outputs holding secrets: plain digests would let guesses be tested). */
  readonly digestKey?: Uint8Array | undefined
  readonly build: (context: NodeBuildContext) => Effect.Effect<void, OwrtError, NodeBuildEnv>
  /**
   * Runs whenever the node's output is in the store for this request — built, substituted or found: records
   * what the database keeps about it (artifact rows, a builder's metadata). Must be idempotent.
   */
  readonly stored?: ((stored: StoredNode) => Effect.Effect<void, OwrtError, Database>) | undefined
}

/** A node whose key cannot be known yet: it depends on a dependency's output that is not stored (plan only). */
export interface PendingNode {
  readonly kind: NodeKindDefinition
  readonly key: null
  readonly name: string
  readonly deps: ReadonlyArray<string | null>
  readonly reason: string
}

/** A profile revision as data: its hash, its resolved profile's canonical JSON, and where it came from. */
export interface GraphRevision {
  readonly hash: string
  readonly canonical: string
  readonly source: string
}

/** The revision a graph is compiled from, as data a build farm's job carries. */
export const graphRevision = (view: {
  readonly revision: { readonly hash: string; readonly canonical: string; readonly source: string }
}): GraphRevision => ({
  hash: view.revision.hash,
  canonical: view.revision.canonical,
  source: view.revision.source,
})

export interface Graph {
  /** Who the graph is for (progress and errors name it): `home-ap@3`. */
  readonly label: string
  /** The revision it was compiled from (absent for graphs made by hand, a builder alone). */
  readonly revision?: GraphRevision | undefined
  /** In dependency order: every node comes after the nodes it depends on. */
  readonly nodes: ReadonlyArray<NodeSpec | PendingNode>
  /** The node whose output is the graph's result; null when it is pending. */
  readonly root: string | null
}

export const isPending = (node: NodeSpec | PendingNode): node is PendingNode => node.key === null

/** The one place a key is computed: the kind, its schema version and the inputs, nothing else. */
export const specKey = (
  kind: NodeKindDefinition,
  keyInputs: { readonly [k: string]: Canonical | undefined },
): Effect.Effect<string> => nodeKey(kind.kind, kind.schema, keyInputs)

/** A node spec with its key computed from its inputs. */
export const makeSpec = (spec: Omit<NodeSpec, "key">): Effect.Effect<NodeSpec> =>
  Effect.map(specKey(spec.kind, spec.keyInputs), (key) => ({ ...spec, key }))

/** The specs of a graph by key (pending nodes left out). */
export const specsByKey = (graph: Graph): ReadonlyMap<string, NodeSpec> => {
  const map = new Map<string, NodeSpec>()
  for (const node of graph.nodes) if (!isPending(node)) map.set(node.key, node)
  return map
}
