import { randomBytes } from "node:crypto"
import { linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { Effect } from "effect"

/*
 * The store's own secret: keys a build carries only an HMAC of each secret value under it (see
 * profile/secrets.ts), and tree digests of outputs holding secret values are taken under it. It never
 * leaves the machine; machines that must agree on keys share one through `secretsKey` instead.
 */

/** The store's own sealing key, made on first use (random, readable only by its owner). */
export const storeSealingKey = (storeDir: string): Effect.Effect<Uint8Array> =>
  Effect.sync(() => {
    const file = join(storeDir, "secrets.key")
    const existing = readKey(file)
    if (existing) return existing
    mkdirSync(dirname(file), { recursive: true })
    // Written whole to a private name, then linked into place: another process sees no key or a whole one.
    const temporary = `${file}.${process.pid}.${randomBytes(4).toString("hex")}`
    writeFileSync(temporary, randomBytes(32), { mode: 0o600, flag: "wx" })
    try {
      linkSync(temporary, file)
    } catch {
      // Another process linked its key first; use theirs.
    } finally {
      unlinkSync(temporary)
    }
    const key = readKey(file)
    if (!key) throw new Error(`${file} is not a 32-byte key`)
    return key
  })

const readKey = (file: string): Uint8Array | undefined => {
  try {
    const key = readFileSync(file)
    return key.length === 32 ? key : undefined
  } catch {
    return undefined
  }
}
