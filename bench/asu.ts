// bench/asu: the ASU API of `owrt serve` under load — 50 clients polling a finished build's status (as the
// Firmware Selector and owut do) and POSTing the same request again — against a bare node:http server
// answering the same bytes from memory, in the same run. Target: ≥ 2,000 polls/s, and no errors.
// Usage: npm run bench -- asu [seconds] [connections]
import type { ChildProcess } from "node:child_process"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { autocannon, startListening, stop } from "./lib/load.js"
import { makeBenchProject, owrtBin, startMirror } from "./lib/project.js"

const seconds = Number(process.argv[2] ?? 10)
const connections = Number(process.argv[3] ?? 50)
const pollTarget = 2000

// The baseline: the finished build's answer from memory, for any method, with node:http and nothing else.
const bareServer = `
const http = require("node:http"), fs = require("node:fs")
const body = fs.readFileSync(process.argv[1])
http.createServer((req, res) => {
  req.resume()
  req.on("end", () => {
    res.writeHead(200, { "content-type": "application/json", "content-length": body.length, "x-imagebuilder-status": "done", "x-queue-position": "0" })
    res.end(body)
  })
}).listen(0, "127.0.0.1", function () { console.log("listening: http://127.0.0.1:" + this.address().port) })
`

const mirror = await startMirror()
const children: Array<ChildProcess> = []
const project = makeBenchProject("asu", {})
try {
  const env = { OWRT_UPSTREAM: mirror.url, OWRT_KEYRING: mirror.keyring }
  const owrt = await startListening([owrtBin, "serve", "--port", "0"], project.dir, env)
  children.push(owrt.child)
  // One build, as the Firmware Selector asks for it; polled until it is finished.
  const request = JSON.stringify({
    version: "23.05.5",
    target: "ath79/generic",
    profile: "tplink_archer-c7-v5",
    packages: ["luci"],
    diff_packages: true,
    client: "bench/1",
  })
  const headers = { "content-type": "application/json" }
  const submitted = (await (
    await fetch(`${owrt.url}/api/v1/build`, { method: "POST", headers, body: request })
  ).json()) as { request_hash: string }
  const statusUrl = `${owrt.url}/api/v1/build/${submitted.request_hash}`
  let finished = ""
  for (let i = 0; i < 600 && finished === ""; i++) {
    const answer = await fetch(statusUrl, { headers })
    if (answer.status === 200) finished = await answer.text()
    else if (answer.status !== 202) throw new Error(`the build failed: ${await answer.text()}`)
    else await new Promise((done) => setTimeout(done, 200))
  }
  if (finished === "") throw new Error("the build did not finish")
  const bodyFile = join(project.dir, "finished.json")
  writeFileSync(bodyFile, finished)
  const bare = await startListening(["-e", bareServer, bodyFile], project.dir, {})
  children.push(bare.child)

  const scenarios = [
    { name: "status poll: bare node:http (baseline)", url: `${bare.url}/status`, owrt: false },
    { name: "status poll: owrt serve", url: statusUrl, owrt: true },
    { name: "same request POSTed: bare node:http", url: `${bare.url}/build`, owrt: false, post: true },
    { name: "same request POSTed: owrt serve", url: `${owrt.url}/api/v1/build`, owrt: true, post: true },
  ]
  console.log(
    `\nasu: ${connections} connections, ${seconds}s each, a finished build (${finished.length} bytes)`,
  )
  console.log(
    `${"scenario".padEnd(40)} ${"req/s".padStart(9)} ${"p99".padStart(8)} ${"ratio".padStart(7)} ${"errors".padStart(7)}`,
  )
  let failed = 0
  let baseline = 0
  const rates = new Map<string, number>()
  for (const scenario of scenarios) {
    const load = await autocannon({
      url: scenario.url,
      connections,
      duration: seconds,
      headers,
      ...(scenario.post ? { method: "POST", body: request } : {}),
    })
    const errors = load.errors + load.timeouts + load.non2xx
    if (scenario.owrt) failed += errors
    const rate = load.requests.average
    if (!scenario.owrt) baseline = rate
    rates.set(scenario.name, rate)
    const ratio = scenario.owrt && baseline > 0 ? `${(rate / baseline).toFixed(2)}×` : "1.00×"
    console.log(
      `${scenario.name.padEnd(40)} ${rate.toFixed(0).padStart(9)} ${`${load.latency.p99}ms`.padStart(8)} ${ratio.padStart(7)} ${String(errors).padStart(7)}`,
    )
  }
  const polls = rates.get("status poll: owrt serve") ?? 0
  console.log(
    `status polls: ${polls.toFixed(0)} req/s, target ≥ ${pollTarget}  ${polls >= pollTarget ? "met" : "MISSED"}`,
  )
  if (failed > 0) {
    console.error(`owrt serve answered ${failed} request(s) with an error`)
    process.exitCode = 1
  }
} finally {
  await Promise.all(children.map(stop))
  await mirror.close()
  project.cleanup()
}
