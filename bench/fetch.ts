// bench/fetch: `owrt builders ensure` into a fresh store against `curl -s URL | zstd -dc | tar -x` on the
// same archive from the same mirror: a real Image Builder's size and shape (~220 MB zstd, ~15,000 files).
// Target: owrt at most 1.25× the pipeline. owrt also checks the signature, the SHA-256 and every tar header.
import { execFileSync } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs"
import { join } from "node:path"
import { median } from "./lib/measure.js"
import { makeBenchProject, owrtOk, scratchDir, seconds, startMirror, time } from "./lib/project.js"

const rounds = Number(process.argv[2] ?? 6)
const release = "24.10.2"
const target = "mediatek/filogic"
process.stderr.write("building the large fixture if needed (once per fixture change, ~15 s)…\n")
const mirror = await startMirror(true)
try {
  const url = `${mirror.url}/releases/${release}/targets/${target}/openwrt-imagebuilder-${release}-mediatek-filogic.Linux-x86_64.tar.zst`
  const project = makeBenchProject("fetch", {})
  const env = { OWRT_UPSTREAM: mirror.url, OWRT_KEYRING: mirror.keyring }
  const pipeline: Array<number> = []
  const verifyingPipeline: Array<number> = []
  const owrt: Array<number> = []
  // The least any verifying fetch adds: the same pipeline with a SHA-256 pass-through (Node, OpenSSL) in
  // the middle. It shows how much of owrt's ratio is the verification the issue asks for.
  const hashPassThrough = [
    'const h = require("node:crypto").createHash("sha256")',
    'process.stdin.on("data", (c) => { h.update(c); if (!process.stdout.write(c)) { process.stdin.pause(); process.stdout.once("drain", () => process.stdin.resume()) } })',
    'process.stdin.on("end", () => h.digest("hex"))',
  ].join(";")
  // Both extract into memory (/dev/shm where there is one), so that what is compared is the pipeline, not
  // how this machine's virtual disk throttles bursts of writes; and they alternate who goes first.
  const memory = existsSync("/dev/shm") ? "/dev/shm" : undefined
  const runPipeline = (scratch: string) => {
    const destination = join(scratch, "tar")
    mkdirSync(destination)
    pipeline.push(
      time(() =>
        execFileSync("sh", ["-c", `curl -s "$1" | zstd -dc | tar -x -C "$2"`, "sh", url, destination]),
      ),
    )
  }
  const runVerifyingPipeline = (scratch: string) => {
    const destination = join(scratch, "verifying")
    mkdirSync(destination)
    verifyingPipeline.push(
      time(() =>
        execFileSync("sh", [
          "-c",
          `curl -s "$1" | "$3" -e "$4" | zstd -dc | tar -x -C "$2"`,
          "sh",
          url,
          destination,
          process.execPath,
          hashPassThrough,
        ]),
      ),
    )
  }
  const runOwrt = (scratch: string) => {
    owrt.push(
      time(() =>
        owrtOk(["builders", "ensure", release, target, "--store", join(scratch, "store")], project.dir, env),
      ),
    )
  }
  for (let round = 0; round < rounds; round++) {
    const scratch = memory ? mkdtempSync(join(memory, "owrt-fetch-")) : scratchDir("fetch")
    if (round % 2 === 0) {
      runPipeline(scratch)
      runVerifyingPipeline(scratch)
      runOwrt(scratch)
    } else {
      runOwrt(scratch)
      runVerifyingPipeline(scratch)
      runPipeline(scratch)
    }
    rmSync(scratch, { recursive: true, force: true })
  }
  const baseline = median(pipeline)
  const ours = median(owrt)
  const ratio = ours / baseline
  const floor = median(verifyingPipeline)
  console.log(
    `\nfetch ${release} ${target} (${rounds} rounds, median; extracting into ${memory ?? "bench/.work"})`,
  )
  console.log(`  curl | zstd -dc | tar -x (baseline)   ${seconds(baseline)}  1.00×`)
  console.log(
    `  … | sha256 pass-through | …  (floor)  ${seconds(floor)}  ${(floor / baseline).toFixed(2)}×  (the least verification while streaming adds)`,
  )
  console.log(
    `  owrt builders ensure (fresh store)    ${seconds(ours)}  ${ratio.toFixed(2)}×  target ≤ 1.25×  ${ratio <= 1.25 ? "met" : "MISSED"}`,
  )
  project.cleanup()
} finally {
  await mirror.close()
}
