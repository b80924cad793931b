// Runs the named benchmarks (all when none are named): npm run bench -- startup
import { spawnSync } from "node:child_process"
import { readdirSync } from "node:fs"
import { join } from "node:path"

const here = import.meta.dirname
const all = readdirSync(here)
  .filter((f) => f.endsWith(".ts") && f !== "run.ts")
  .map((f) => f.replace(/\.ts$/, ""))
const [first, ...rest] = process.argv.slice(2)
const chosen = first && all.includes(first) ? [first] : all
for (const name of chosen) {
  const result = spawnSync(
    process.execPath,
    ["--import", "tsx", join(here, `${name}.ts`), ...(first === name ? rest : [])],
    {
      stdio: "inherit",
    },
  )
  if (result.status !== 0) process.exit(result.status ?? 1)
}
