// bench/batch: 8 profiles on one builder built with --jobs 2, against the same builds one after another.
// Reports the speed-up on this machine (2 cores).
import { availableParallelism } from "node:os"
import { median } from "./lib/measure.js"
import { makeBenchProject, owrtOk, seconds, startMirror, time } from "./lib/project.js"

const rounds = Number(process.argv[2] ?? 3)
const devices = ["tplink_archer-c7-v5", "glinet_gl-ar300m16", "8dev_carambola2", "hak5_lan-turtle"]
const files: Record<string, string> = {}
const ids: Array<string> = []
for (let i = 0; i < 8; i++) {
  const id = `ap-${i}`
  ids.push(id)
  files[`profiles/${id}.yaml`] = [
    'release: "23.05.5"',
    "target: ath79/generic",
    `device: ${devices[i % devices.length]}`,
    "packages: [luci]",
    `files: [{path: /etc/site, content: "site ${i}"}]`,
    "",
  ].join("\n")
}

const mirror = await startMirror()
try {
  const project = makeBenchProject("batch", files)
  const env = { OWRT_UPSTREAM: mirror.url, OWRT_KEYRING: mirror.keyring }
  owrtOk(["realize", "--all"], project.dir, env)
  const parallel: Array<number> = []
  const serial: Array<number> = []
  for (let round = 0; round < rounds; round++) {
    serial.push(
      time(() => {
        for (const id of ids) owrtOk(["realize", id, "--rebuild", "--jobs", "1"], project.dir, env)
      }),
    )
    parallel.push(time(() => owrtOk(["realize", "--all", "--rebuild", "--jobs", "2"], project.dir, env)))
  }
  const s = median(serial)
  const p = median(parallel)
  console.log(`\nbatch: 8 profiles, one builder (${rounds} rounds, median)`)
  console.log(`  one after another (baseline)   ${seconds(s)}`)
  console.log(
    `  owrt realize --all --jobs 2     ${seconds(p)}   speed-up ${(s / p).toFixed(2)}× on ${availableParallelism()} cores`,
  )
  project.cleanup()
} finally {
  await mirror.close()
}
