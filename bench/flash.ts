// bench/flash: `owrt flash` writing and verifying a 512 MiB image on a loop device, against the dd pair
// `dd bs=4M oflag=direct conv=fsync` then `dd iflag=direct bs=4M | sha256sum`, in the same run.
// Target: owrt's write + verify at most 1.1× the dd pair. Then, for an image that is mostly empty (64 MiB of
// data in 512 MiB, a block map beside it), `owrt flash` with the map against `owrt flash --no-bmap`: the
// speed-up of writing and reading back only the mapped blocks. Needs root (loop devices).
import { execFileSync } from "node:child_process"
import { createWriteStream, writeFileSync } from "node:fs"
import { join } from "node:path"
import { pipeline } from "node:stream/promises"
import { Effect } from "effect"
import { createBmap } from "../src/raspios/bmap.js"
import { measure, report } from "./lib/measure.js"
import { makeBenchProject, owrtBin } from "./lib/project.js"

const rounds = Number(process.argv[2] ?? 5)
const imageMiB = 512
if (process.getuid?.() !== 0) {
  console.log("bench/flash: skipped (loop devices need root)")
  process.exit(0)
}
const project = makeBenchProject("flash", {})
const image = join(project.dir, "image.img")
// Incompressible content, written once: what a real image looks like to the device.
await pipeline(
  (async function* () {
    let state = 0x9e3779b9
    for (let i = 0; i < imageMiB; i++) {
      const chunk = Buffer.allocUnsafe(1024 * 1024)
      for (let j = 0; j < chunk.length; j += 4) {
        state ^= state << 13
        state ^= state >>> 17
        state ^= state << 5
        chunk.writeInt32LE(state | 0, j)
      }
      yield chunk
    }
  })(),
  createWriteStream(image),
)
const backing = join(project.dir, "card.img")
execFileSync("truncate", ["-s", `${imageMiB + 64}M`, backing])
const device = execFileSync("losetup", ["-f", "--show", backing], { encoding: "utf8" }).trim()
try {
  const timings = measure(
    [
      {
        name: "dd write + dd read | sha256sum (baseline)",
        command: "bash",
        args: [
          "-c",
          `set -euo pipefail; dd if=${image} of=${device} bs=4M oflag=direct conv=fsync status=none; dd if=${device} iflag=direct bs=4M count=${imageMiB / 4} status=none | sha256sum >/dev/null`,
        ],
      },
      {
        name: "owrt flash --force (write + verify)",
        command: process.execPath,
        args: [owrtBin, "flash", image, device, "--allow-loop", "--force"],
        cwd: project.dir,
        env: { OWRT_STORE: join(project.dir, "store") },
      },
    ],
    rounds,
  )
  report(`flash a ${imageMiB} MiB image to a loop device (${rounds} rounds, median)`, timings, {
    "owrt flash --force (write + verify)": 1.1,
  })

  // A mostly empty image: its first 64 MiB of data, zeros after; the same bytes with and without a map.
  const sparse = join(project.dir, "sparse.img")
  execFileSync("truncate", ["-s", `${imageMiB}M`, sparse])
  execFileSync("dd", [`if=${image}`, `of=${sparse}`, "bs=4M", "count=16", "conv=notrunc", "status=none"])
  writeFileSync(join(project.dir, "sparse.bmap"), await Effect.runPromise(createBmap(sparse)))
  const sparseTimings = measure(
    [
      {
        name: "owrt flash --no-bmap (every block, baseline)",
        command: process.execPath,
        args: [owrtBin, "flash", sparse, device, "--allow-loop", "--force", "--no-bmap"],
        cwd: project.dir,
        env: { OWRT_STORE: join(project.dir, "store") },
      },
      {
        name: "owrt flash with the block map",
        command: process.execPath,
        args: [owrtBin, "flash", sparse, device, "--allow-loop", "--force"],
        cwd: project.dir,
        env: { OWRT_STORE: join(project.dir, "store") },
      },
    ],
    rounds,
  )
  report(
    `flash a ${imageMiB} MiB image holding 64 MiB of data, write + verify (${rounds} rounds, median)`,
    sparseTimings,
    {},
  )
} finally {
  execFileSync("losetup", ["-d", device])
  project.cleanup()
}
