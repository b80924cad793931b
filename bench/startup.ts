// bench/startup: how long `owrt` takes to start, against Node's own start (`node -e 0`), in the same run.
// Usage: npm run bench -- startup [rounds]   (or: npx tsx bench/startup.ts [rounds])
import { join } from "node:path"
import { measure, report } from "./lib/measure.js"

const root = join(import.meta.dirname, "..")
const owrt = join(root, "bin", "owrt.cjs")
const rounds = Number(process.argv[2] ?? 30)

const timings = measure(
  [
    { name: "node -e 0 (baseline)", command: process.execPath, args: ["-e", "0"] },
    { name: "owrt --version", command: process.execPath, args: [owrt, "--version"], cwd: root },
    {
      name: "owrt profiles list --json",
      command: process.execPath,
      args: [owrt, "profiles", "list", "--json"],
      cwd: root,
    },
  ],
  rounds,
)
report(`startup (${rounds} rounds, median)`, timings, {
  "owrt --version": 2.5,
  "owrt profiles list --json": 2.5,
})
