import { mkdirSync, renameSync, statSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { Effect } from "effect"
import { InternalError } from "../errors.js"
import { sha256Hex } from "../text/digest.js"

/*
 * Content-addressed copies of profile overlay files, so that any recorded revision can be rebuilt after
 * its files changed or moved in the working tree. Written once, never modified.
 */

export const blobPath = (storeDir: string, sha256: string): string =>
  join(storeDir, "blobs", sha256.slice(0, 2), sha256)

export const hasBlob = (storeDir: string, sha256: string): boolean => {
  try {
    return statSync(blobPath(storeDir, sha256)).isFile()
  } catch {
    return false
  }
}

/** Stores bytes under their SHA-256 (temp file, then rename: a blob is complete or absent). */
export const putBlob = (
  storeDir: string,
  sha256: string,
  bytes: Uint8Array,
): Effect.Effect<void, InternalError> =>
  Effect.try({
    try: () => {
      // The bytes were read after the digest was taken: a file edited in between must not be stored
      // under the old digest.
      if (sha256Hex(bytes) !== sha256)
        throw new Error("an overlay file changed while it was being recorded; run again")
      const target = blobPath(storeDir, sha256)
      mkdirSync(join(target, ".."), { recursive: true })
      const temporary = `${target}.${process.pid}.${Date.now()}.tmp`
      writeFileSync(temporary, bytes, { mode: 0o444 })
      renameSync(temporary, target)
    },
    catch: (cause) => new InternalError({ cause }),
  })
