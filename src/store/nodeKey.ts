import { Effect } from "effect"
import { type Canonical, canonicalJson } from "../text/canonicalJson.js"
import { loadXxHash, type XxHash } from "../text/xxhash.js"

/*
 * A node's key: xxHash64 over the canonical JSON of its kind, the schema version of that kind, its
 * parameters and its inputs' keys. The same inputs give the same key on any machine; anything that can
 * change a node's output must be in `params`, and nothing else may be (no paths, times, host names).
 */

let ready: XxHash | undefined

/** Loads the WebAssembly hasher once; afterwards keys are computed synchronously (plans compute hundreds). */
export const prepareNodeKeys: Effect.Effect<void> = Effect.map(loadXxHash, (loaded) => {
  ready = loaded
})

export const nodeKeyText = (kind: string, schema: number, params: Canonical): string =>
  canonicalJson({ kind, schema, params })

export const nodeKey = (kind: string, schema: number, params: Canonical): Effect.Effect<string> =>
  Effect.suspend(() => {
    const loaded = ready
    return loaded
      ? Effect.succeed(loaded.h64ToString(nodeKeyText(kind, schema, params)))
      : Effect.zipRight(prepareNodeKeys, nodeKey(kind, schema, params))
  })
