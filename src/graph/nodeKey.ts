import { Effect } from "effect"
import xxhash from "xxhash-wasm"
import { type Canonical, canonicalJson } from "../text/canonicalJson.js"

/*
 * A node's key: xxHash64 over the canonical JSON of its kind, the schema version of that kind, its
 * parameters and its inputs' keys. The same inputs give the same key on any machine; anything that can
 * change a node's output must be in `params`, and nothing else may be (no paths, times, host names).
 */

let hasher: ReturnType<typeof xxhash> | undefined

export type NodeKind = "fetch-builder" | "stage-overlay" | "make-image" | "collect-artifacts"

export const nodeKeyText = (kind: NodeKind, schema: number, params: Canonical): string =>
  canonicalJson({ kind, schema, params })

export const nodeKey = (kind: NodeKind, schema: number, params: Canonical): Effect.Effect<string> =>
  Effect.promise(async () => {
    hasher ??= xxhash()
    const { h64ToString } = await hasher
    return h64ToString(nodeKeyText(kind, schema, params))
  })
