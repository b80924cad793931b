import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { parsePublicKey, type UsignPublicKey } from "./usign.js"

/**
 * A keyring directory: one usign public key per file, named by its key id (as OpenWrt's
 * `/etc/opkg/keys/<keyid>`). Files whose name is not the key id inside them are ignored, so a key cannot
 * be trusted under another id.
 */
export const loadKeyring = (dir: string): ReadonlyMap<string, UsignPublicKey> => {
  const keys = new Map<string, UsignPublicKey>()
  let names: Array<string>
  try {
    names = readdirSync(dir)
  } catch {
    return keys
  }
  for (const name of names) {
    if (!/^[0-9a-f]{16}$/.test(name)) continue
    try {
      const parsed = parsePublicKey(readFileSync(join(dir, name), "utf8"))
      if (parsed.ok && parsed.value.keyId === name) keys.set(name, parsed.value)
    } catch {
      // unreadable entries are not keys
    }
  }
  return keys
}
