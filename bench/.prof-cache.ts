import { spawnSync } from "node:child_process"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { generateKeyPair } from "../src/cache/signing.js"
import { startRegistry } from "../tests/helpers/registry.js"
import { makeBenchProject, owrtBin, owrtOk, scratchDir, startMirror, time } from "./lib/project.js"

const mirror = await startMirror(true)
const registry = await startRegistry()
try {
  const keys = generateKeyPair("bench-1")
  const project = makeBenchProject("profcache", { "profiles/ap.yaml": "release: \"23.05.5\"\n" })
  writeFileSync(join(project.dir, "bench-1.sec"), `${keys.secret}\n`)
  const cached = {
    OWRT_UPSTREAM: mirror.url, OWRT_KEYRING: mirror.keyring,
    OWRT_SUBSTITUTERS: `oci://${registry.host}/owrt/bench`,
    OWRT_TRUSTED_KEYS: keys.public,
    OWRT_SIGNING_KEY: `file:${join(project.dir, "bench-1.sec")}`,
  }
  const seed = scratchDir("profseed")
  owrtOk(["builders", "ensure", "24.10.2", "mediatek/filogic", "--store", join(seed, "store")], project.dir, { ...cached, OWRT_CACHE_PUSH: "1" })
  const scratch = scratchDir("prof")
  const t = time(() => {
    const r = spawnSync(process.execPath, ["--cpu-prof", "--cpu-prof-dir", "/tmp/cacheprof", owrtBin, "builders", "ensure", "24.10.2", "mediatek/filogic", "--store", join(scratch, "pull")], { cwd: project.dir, env: { ...process.env, ...cached }, encoding: "utf8" })
    if (r.status !== 0) throw new Error(r.stderr)
  })
  console.log("pull ms", t)
} finally {
  await registry.stop()
  await mirror.close()
}
