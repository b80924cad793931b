// bench/noop: `owrt realize` of a profile that is already built (nothing to do) against `node -e 0`.
// Target: at most 2.5× Node's own start.
import { measure, report } from "./lib/measure.js"
import { makeBenchProject, owrtBin, owrtOk, startMirror } from "./lib/project.js"

const rounds = Number(process.argv[2] ?? 30)
const mirror = await startMirror()
try {
  const project = makeBenchProject("noop", {
    "profiles/ap.yaml":
      'release: "23.05.5"\ntarget: ath79/generic\ndevice: tplink_archer-c7-v5\npackages: [luci]\n',
  })
  const env = { OWRT_UPSTREAM: mirror.url, OWRT_KEYRING: mirror.keyring }
  owrtOk(["realize", "ap"], project.dir, env)
  const timings = measure(
    [
      { name: "node -e 0 (baseline)", command: process.execPath, args: ["-e", "0"] },
      {
        name: "owrt realize ap (cached)",
        command: process.execPath,
        args: [owrtBin, "realize", "ap"],
        cwd: project.dir,
        env,
      },
      {
        name: "owrt realize ap --json (cached)",
        command: process.execPath,
        args: [owrtBin, "realize", "ap", "--json"],
        cwd: project.dir,
        env,
      },
    ],
    rounds,
  )
  report(`noop realize (${rounds} rounds, median)`, timings, {
    "owrt realize ap (cached)": 2.5,
    "owrt realize ap --json (cached)": 2.5,
  })
  project.cleanup()
} finally {
  await mirror.close()
}
