import { createHash } from "node:crypto"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"

/**
 * Upstream ASU's EXTRA_IMAGE_NAME, computed independently of owrt from what `make manifest … STRIP_ABI=1`
 * printed in a make-image node's build log: 12 hex digits of the SHA-256 of the package names, deduplicated,
 * sorted, joined with spaces. (The image's own .manifest names packages with their ABI suffix: not the same.)
 */
export const manifestHashOfImageNode = (store: string, match: (name: string) => boolean): string => {
  const dir = readdirSync(store).find(match)
  if (dir === undefined) throw new Error("no such make-image node in the store")
  const log = readFileSync(join(store, dir, "build.log"), "utf8")
  const section = log.slice(log.indexOf("$ make manifest"), log.indexOf("$ make image"))
  const names = section
    .split("\n")
    .map((line) => /^(\S+) - \S+$/.exec(line)?.[1])
    .filter((name): name is string => name !== undefined)
  if (names.length === 0) throw new Error("no manifest in the build log")
  return createHash("sha256")
    .update([...new Set(names)].sort().join(" "))
    .digest("hex")
    .slice(0, 12)
}
