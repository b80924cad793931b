// Runs the named benchmarks (all when none are named), each with the arguments after the names:
// npm run bench -- startup, npm run bench -- noop plan overhead, npm run bench -- noop 50
import { spawnSync } from "node:child_process"
import { readdirSync } from "node:fs"
import { join } from "node:path"

const here = import.meta.dirname
const all = readdirSync(here)
  .filter((f) => f.endsWith(".ts") && f !== "run.ts")
  .map((f) => f.replace(/\.ts$/, ""))
const args = process.argv.slice(2)
const named = args.findIndex((arg) => !all.includes(arg))
const names = named === -1 ? args : args.slice(0, named)
const rest = named === -1 ? [] : args.slice(named)
const chosen = names.length > 0 ? names : all
for (const name of chosen) {
  const result = spawnSync(
    process.execPath,
    ["--import", "tsx", join(here, `${name}.ts`), ...(names.length > 0 ? rest : [])],
    {
      stdio: "inherit",
    },
  )
  if (result.status !== 0) process.exit(result.status ?? 1)
}
