import { Context, Effect, Layer } from "effect"
import type { SignedSums } from "./upstream.js"

/*
 * Somewhere besides the download server that may hold a target's signed index (sha256sums and its
 * signature): the shared cache. It is asked before the download server for releases (they never change),
 * and offered what the download server answered, so that a machine with a warm cache resolves the Image
 * Builder without the download server. What it returns is untrusted: the caller checks the usign signature
 * against the keyring exactly as for the download server's copy. Failures are answers (`undefined`), not
 * errors: the download server is the fallback.
 */
export interface SignedIndexCacheService {
  readonly get: (release: string, target: string) => Effect.Effect<SignedSums | undefined>
  readonly put: (release: string, target: string, signed: SignedSums) => Effect.Effect<void>
}

export class SignedIndexCache extends Context.Tag("owrt/SignedIndexCache")<
  SignedIndexCache,
  SignedIndexCacheService
>() {}

export const noSignedIndexCacheService: SignedIndexCacheService = {
  get: () => Effect.succeed(undefined),
  put: () => Effect.void,
}

export const noSignedIndexCache = Layer.succeed(SignedIndexCache, noSignedIndexCacheService)
