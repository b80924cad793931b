// bench/plan: `owrt plan --all --json` over 200 generated profiles, all cached, against `node -e 0`.
// Target: at most 4×. The 200 realizations are made once per stand-in mirror (its builders' keys change with
// the fixture) and kept in bench/.work/plan for later runs.
import { existsSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { measure, report } from "./lib/measure.js"
import { makeBenchProject, owrtBin, owrtOk, seconds, startMirror, time } from "./lib/project.js"

const rounds = Number(process.argv[2] ?? 20)
const count = 200
const devices = ["tplink_archer-c7-v5", "glinet_gl-ar300m16", "8dev_carambola2", "hak5_lan-turtle"]
const files: Record<string, string> = {
  "profiles/base.yaml":
    'abstract: true\nrelease: "23.05.5"\ntarget: ath79/generic\npackages: [luci]\ntags: [fleet]\n',
}
for (let i = 0; i < count; i++) {
  files[`profiles/site-${String(i).padStart(3, "0")}.yaml`] = [
    "extends: base",
    `device: ${devices[i % devices.length]}`,
    `files: [{path: /etc/site, content: "site ${i}"}]`,
    "",
  ].join("\n")
}

const mirror = await startMirror()
try {
  const marker = join(import.meta.dirname, ".work", "plan", ".realized")
  // The keyring path names the fixture build: another fixture has other builders, so nothing is cached.
  const realized = existsSync(marker) && readFileSync(marker, "utf8") === mirror.keyring
  const project = makeBenchProject("plan", files, !realized)
  const env = { OWRT_UPSTREAM: mirror.url, OWRT_KEYRING: mirror.keyring }
  if (!realized) {
    process.stderr.write(`realizing ${count} profiles once (kept in bench/.work/plan)…\n`)
    const took = time(() => owrtOk(["realize", "--all", "--jobs", "2"], project.dir, env))
    process.stderr.write(`  took ${seconds(took)}\n`)
    owrtOk(["store", "verify"], project.dir, env)
    writeFileSync(marker, mirror.keyring)
  }
  const plan = JSON.parse(owrtOk(["plan", "--all", "--json"], project.dir, env)) as {
    summary: { profiles: number; cached: number }
  }
  if (plan.summary.profiles !== count || plan.summary.cached !== count) {
    throw new Error(`expected ${count} cached profiles, got ${JSON.stringify(plan.summary)}`)
  }
  const timings = measure(
    [
      { name: "node -e 0 (baseline)", command: process.execPath, args: ["-e", "0"] },
      {
        name: `owrt plan --all --json (${count} cached)`,
        command: process.execPath,
        args: [owrtBin, "plan", "--all", "--json"],
        cwd: project.dir,
        env,
      },
    ],
    rounds,
  )
  report(`plan over ${count} profiles (${rounds} rounds, median)`, timings, {
    [`owrt plan --all --json (${count} cached)`]: 4,
  })
} finally {
  await mirror.close()
}
