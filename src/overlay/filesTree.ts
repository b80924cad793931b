import { chmodSync, statSync } from "node:fs"
import { join } from "node:path"
import { childProcess } from "../process/lazyBuiltin.js"
import type { TreeFile } from "../store/treeDigest.js"

/**
 * The FILES= tree for `make image`: a copy of the stored staged overlay with the modes it was staged with.
 * The stored tree is read-only (0444/0555, owner-only when it holds secrets) and the Image Builder copies
 * FILES into the image with their modes (`cp -p`), so each entry gets back the mode its listing recorded —
 * an overlay's 0600 file stays 0600 in the image, and FILES is writable for the build marker.
 */
export const copyStagedTree = (stored: string, listing: ReadonlyArray<TreeFile>, files: string): void => {
  childProcess().execFileSync("cp", ["-a", "--reflink=auto", stored, files], { stdio: "pipe" })
  // As the staged tree's own directory was made: 0755, or owner-only when it holds secrets.
  chmodSync(files, (statSync(stored).mode & 0o077) === 0 ? 0o700 : 0o755)
  for (const entry of listing) if (entry.kind !== "symlink") chmodSync(join(files, entry.path), entry.mode)
}
