// bench/serve: `owrt serve` under load while a build runs — many clients polling a job's status and
// downloading an image — against a bare node:http server answering the same bytes, in the same run.
// Usage: npm run bench -- serve [seconds] [connections]
import type { ChildProcess } from "node:child_process"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { autocannon, startListening, stop } from "./lib/load.js"
import { makeBenchProject, owrtBin, owrtOk, startMirror } from "./lib/project.js"

const seconds = Number(process.argv[2] ?? 10)
const connections = Number(process.argv[3] ?? 50)

// The baseline: the same JSON and the same file, from node:http and nothing else.
const bareServer = `
const http = require("node:http"), fs = require("node:fs")
const [file, status] = process.argv.slice(1)
const body = fs.readFileSync(status)
http.createServer((req, res) => {
  if (req.url === "/status") { res.writeHead(200, { "content-type": "application/json", "content-length": body.length }); res.end(body); return }
  res.writeHead(200, { "content-type": "application/octet-stream", "content-length": fs.statSync(file).size })
  fs.createReadStream(file).pipe(res)
}).listen(0, "127.0.0.1", function () { console.log("listening: http://127.0.0.1:" + this.address().port) })
`

const profile = (device: string) =>
  ['release: "23.05.5"', "target: ath79/generic", `device: ${device}`, "packages: [luci]", ""].join("\n")

const mirror = await startMirror()
const children: Array<ChildProcess> = []
let cleanup = () => {}
try {
  const project = makeBenchProject("serve", {
    "profiles/ap.yaml": profile("tplink_archer-c7-v5"),
    "profiles/busy.yaml": profile("glinet_gl-ar300m16"),
  })
  cleanup = project.cleanup
  const env = { OWRT_UPSTREAM: mirror.url, OWRT_KEYRING: mirror.keyring }
  const realized = JSON.parse(owrtOk(["realize", "ap", "--json"], project.dir, env)) as {
    results: Array<{ key: string; storePath: string; artifacts: Array<{ name: string; size: number }> }>
  }
  const result = realized.results[0]
  const image = result?.artifacts[0]
  if (!result || !image) throw new Error("nothing realized")

  // A build that runs for the whole measurement: make image sleeps.
  const owrt = await startListening([owrtBin, "serve", "--port", "0"], project.dir, {
    ...env,
    OWRT_FAKE_IB_DELAY: String(seconds * 4 + 30),
    OWRT_MAKE_ENV: "OWRT_FAKE_IB_DELAY",
  })
  children.push(owrt.child)
  const accepted = (await (
    await fetch(`${owrt.url}/api/realize`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ profile: "busy" }),
    })
  ).json()) as { job: { id: string } }
  const statusUrl = `${owrt.url}/api/jobs/${accepted.job.id}`
  for (;;) {
    const job = (await (await fetch(statusUrl)).json()) as { nodes: Array<{ kind: string; state: string }> }
    if (job.nodes.some((n) => n.kind === "make-image" && n.state === "running")) break
    await new Promise((done) => setTimeout(done, 200))
  }
  const statusFile = join(project.dir, "status.json")
  writeFileSync(statusFile, await (await fetch(statusUrl)).text())
  const bare = await startListening(
    ["-e", bareServer, join(result.storePath, "images", image.name), statusFile],
    project.dir,
    {},
  )
  children.push(bare.child)

  const scenarios = [
    { name: "job status: bare node:http (baseline)", url: `${bare.url}/status` },
    { name: "job status: owrt serve, build running", url: statusUrl },
    {
      name: `download ${(image.size / 1e6).toFixed(1)} MB: bare node:http (baseline)`,
      url: `${bare.url}/file`,
    },
    {
      name: "download: owrt serve, build running",
      url: `${owrt.url}/api/artifacts/${result.key}/${image.name}`,
    },
  ]
  console.log(`\nserve: ${connections} connections, ${seconds}s each, while make image runs in the server`)
  console.log(
    `${"scenario".padEnd(46)} ${"req/s".padStart(9)} ${"p99".padStart(8)} ${"MB/s".padStart(8)} ${"errors".padStart(7)}`,
  )
  let failed = 0
  for (const scenario of scenarios) {
    const load = await autocannon({ url: scenario.url, connections, duration: seconds })
    const errors = load.errors + load.timeouts + load.non2xx
    failed += scenario.url.startsWith(owrt.url) ? errors : 0
    console.log(
      `${scenario.name.padEnd(46)} ${load.requests.average.toFixed(0).padStart(9)} ${`${load.latency.p99}ms`.padStart(8)} ${(load.throughput.average / 1e6).toFixed(1).padStart(8)} ${String(errors).padStart(7)}`,
    )
  }
  const job = (await (await fetch(statusUrl)).json()) as { state: string }
  console.log(`the build was still ${job.state} at the end`)
  if (failed > 0) {
    console.error(`owrt serve answered ${failed} request(s) with an error`)
    process.exitCode = 1
  }
} finally {
  await Promise.all(children.map(stop))
  await mirror.close()
  cleanup()
}
