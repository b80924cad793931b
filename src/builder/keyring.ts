import { readdirSync, readFileSync, statSync } from "node:fs"
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

/**
 * Every file of a keyring directory that holds a usign public key, with the key id inside it, whatever the
 * file is named: what explains why a key was not found (a file named by one id holding another key).
 */
export const keyringFiles = (
  dir: string,
): ReadonlyArray<{ readonly name: string; readonly keyId: string }> => {
  let names: Array<string>
  try {
    names = readdirSync(dir)
  } catch {
    return []
  }
  const files: Array<{ readonly name: string; readonly keyId: string }> = []
  for (const name of names) {
    try {
      const path = join(dir, name)
      // A key file is a few lines; anything larger is not one.
      if (!statSync(path).isFile() || statSync(path).size > 4096) continue
      const parsed = parsePublicKey(readFileSync(path, "utf8"))
      if (parsed.ok) files.push({ name, keyId: parsed.value.keyId })
    } catch {
      // unreadable entries and directories are not keys
    }
  }
  return files
}
