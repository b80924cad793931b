import { execFileSync } from "node:child_process"
import { join } from "node:path"

/** Tests drive the real, bundled CLI: bundle it once per run so they never test a stale build. */
export default function setup(): void {
  execFileSync(process.execPath, [join(import.meta.dirname, "..", "..", "scripts", "bundle.mjs")], {
    stdio: "inherit",
  })
}
