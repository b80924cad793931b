// bench/ota: `owrt ota serve` under 50 clients — devices polling /version and downloading a cached 8 MiB
// release from /firmware — against a bare node:http server answering the same bytes from memory, in the
// same run. Target: downloads ≥ 0.8× the bare server's throughput, and no errors.
// Usage: npm run bench -- ota [seconds] [connections]
import { type ChildProcess, spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { crc32 } from "node:zlib"
import { pushFirmware, startRegistry } from "../tests/helpers/registry.js"
import { autocannon, downloadLoad, startListening, stop } from "./lib/load.js"
import { makeBenchProject, owrtBin } from "./lib/project.js"

const seconds = Number(process.argv[2] ?? 10)
const connections = Number(process.argv[3] ?? 50)

// The baseline: the same two answers from memory, with node:http and nothing else.
const bareServer = `
const http = require("node:http")
let body = Buffer.alloc(0)
process.stdin.on("data", (c) => (body = Buffer.concat([body, c])))
process.stdin.on("end", () => {
  const version = Buffer.from(process.argv[1])
  http.createServer((req, res) => {
    if (req.url.startsWith("/version")) { res.writeHead(200, { "content-type": "text/plain; charset=utf-8", "content-length": version.length }); res.end(version); return }
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": body.length }); res.end(body)
  }).listen(0, "127.0.0.1", function () { console.log("listening: http://127.0.0.1:" + this.address().port) })
})
`

const registry = await startRegistry()
const children: Array<ChildProcess> = []
const project = makeBenchProject("ota", {})
try {
  // One release of 8 MiB, pushed as ORAS does: the first layer is the firmware.
  const firmware = randomBytes(8 * 1024 * 1024)
  await pushFirmware(registry, "fw/bench-dev", "1.0.0", firmware)

  const owrt = await startListening(
    [owrtBin, "ota", "serve", "--port", "0", "--registry", `oci://${registry.host}`, "--prefix", "fw/"],
    project.dir,
    {},
  )
  children.push(owrt.child)
  // Warm: the release in memory (the benchmark is of serving a cached release, as the issue asks).
  const warm = Buffer.from(await (await fetch(`${owrt.url}/firmware?device=bench-dev`)).arrayBuffer())
  if (!warm.equals(firmware)) throw new Error("owrt served other bytes")
  const versionBody = `1.0.0\n${crc32(firmware) >>> 0}\n${firmware.length}`
  if ((await (await fetch(`${owrt.url}/version?device=bench-dev`)).text()) !== versionBody)
    throw new Error("owrt answered another /version")

  const bare = await new Promise<{ url: string; child: ChildProcess }>((resolve, reject) => {
    const child = spawn(process.execPath, ["-e", bareServer, versionBody], {
      stdio: ["pipe", "pipe", "inherit"],
    })
    let out = ""
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString("utf8")
      const url = /^listening: (\S+)$/m.exec(out)?.[1]
      if (url) resolve({ url, child })
    })
    child.once("exit", (code) => reject(new Error(`bare server exited ${code}`)))
    child.stdin.end(firmware)
  })
  children.push(bare.child)

  // Downloads share the machine's two cores with their clients and are noisy: two rounds of half the time
  // each, bare and owrt alternating, so a slow moment does not land on one side only.
  const downloads = [1, 2].flatMap((round) => [
    {
      name: `/firmware 8 MiB: bare node:http (baseline) ${round}`,
      url: `${bare.url}/firmware?device=bench-dev`,
      owrt: false,
    },
    {
      name: `/firmware 8 MiB: owrt ota serve ${round}`,
      url: `${owrt.url}/firmware?device=bench-dev`,
      owrt: true,
    },
  ])
  const scenarios = [
    { name: "/version: bare node:http (baseline)", url: `${bare.url}/version?device=bench-dev`, owrt: false },
    { name: "/version: owrt ota serve", url: `${owrt.url}/version?device=bench-dev`, owrt: true },
    ...downloads,
  ]
  console.log(`\nota: ${connections} connections, ${seconds}s each, a cached 8 MiB release`)
  console.log(
    `${"scenario".padEnd(44)} ${"req/s".padStart(9)} ${"p99".padStart(8)} ${"MB/s".padStart(8)} ${"ratio".padStart(7)} ${"errors".padStart(7)}`,
  )
  let failed = 0
  let baseline = 0
  const owrtBytes: Array<number> = []
  const bareBytes: Array<number> = []
  for (const scenario of scenarios) {
    const download = scenario.name.startsWith("/firmware")
    // Downloads: plain node:http clients in their own process (autocannon cannot read 8 MiB bodies fast).
    const load = download
      ? await downloadLoad(scenario.url, connections, seconds / 2)
      : await autocannon({ url: scenario.url, connections, duration: seconds }).then((r) => ({
          requests: r.requests.average,
          bytesPerSecond: r.throughput.average,
          p99: r.latency.p99,
          errors: r.errors + r.timeouts + r.non2xx,
        }))
    if (scenario.owrt) failed += load.errors
    const ratio = scenario.owrt ? load.bytesPerSecond / baseline : 1
    if (!scenario.owrt) baseline = load.bytesPerSecond
    if (download) (scenario.owrt ? owrtBytes : bareBytes).push(load.bytesPerSecond)
    console.log(
      `${scenario.name.padEnd(44)} ${load.requests.toFixed(0).padStart(9)} ${`${load.p99}ms`.padStart(8)} ${(load.bytesPerSecond / 1e6).toFixed(1).padStart(8)} ${`${ratio.toFixed(2)}×`.padStart(7)} ${String(load.errors).padStart(7)}`,
    )
  }
  const sum = (xs: ReadonlyArray<number>) => xs.reduce((a, b) => a + b, 0)
  const downloadRatio = sum(owrtBytes) / sum(bareBytes)
  console.log(
    `downloads (both rounds): ${downloadRatio.toFixed(2)}× the bare server, target ≥ 0.8×  ${downloadRatio >= 0.8 ? "met" : "MISSED"}`,
  )
  if (failed > 0) {
    console.error(`owrt ota serve answered ${failed} request(s) with an error`)
    process.exitCode = 1
  }
} finally {
  await Promise.all(children.map(stop))
  await registry.stop()
  project.cleanup()
}
