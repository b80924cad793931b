import { Effect } from "effect"
import xxhash from "xxhash-wasm"

export type XxHash = Awaited<ReturnType<typeof xxhash>>

let loading: Promise<XxHash> | undefined

/** The WebAssembly xxHash, instantiated once per process for every user (node keys, card chunks). */
export const loadXxHash: Effect.Effect<XxHash> = Effect.promise(() => {
  loading ??= xxhash()
  return loading
})
