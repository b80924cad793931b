import { execFileSync } from "node:child_process"
import { join } from "node:path"
import { buildMirror } from "../fixtures/mirror/index.js"

/**
 * Once per run, before any test: bundle the CLI (tests drive the real, bundled CLI and must never test a
 * stale build) and build the stand-in mirror (cached by its sources' hash), so no test file's setup spends
 * its hook timeout building it while another file waits for the same lock.
 */
export default async function setup(): Promise<void> {
  execFileSync(process.execPath, [join(import.meta.dirname, "..", "..", "scripts", "bundle.mjs")], {
    stdio: "inherit",
  })
  await buildMirror()
}
