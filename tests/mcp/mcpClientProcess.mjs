// An MCP client in a process of its own, so that a test can kill it the way a crashing agent dies.
// It starts `owrt mcp` through the official SDK's stdio transport, starts a batch, and once `make` runs
// prints one JSON line on stdout: {"server": <owrt mcp's pid>, "holder": <pid or null>}. Then it waits.
//
//   node mcpClientProcess.mjs <owrt.cjs> <profile>… [--hold-stdin]
//
// With --hold-stdin a `sleep` process also holds the server's stdin and stdout pipes, so that the client's
// death closes neither: the server can then only notice that its parent is gone.
import { spawn } from "node:child_process"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"

const [owrtBin, ...rest] = process.argv.slice(2)
const holdStdin = rest.includes("--hold-stdin")
const profiles = rest.filter((arg) => arg !== "--hold-stdin")

const transport = new StdioClientTransport({
  command: process.execPath,
  args: [owrtBin, "mcp"],
  cwd: process.cwd(),
  env: process.env,
  stderr: "inherit",
})
const client = new Client({ name: "doomed-client", version: "1.0.0" })
await client.connect(transport)
let reported = false
client
  .callTool({ name: "realize_batch", arguments: { profiles, mode: "best-effort" } }, undefined, {
    timeout: 600_000,
    onprogress: (update) => {
      if (reported || !update.message?.includes("make-image")) return
      reported = true
      let holder = null
      if (holdStdin) {
        // The SDK keeps the child process to itself; its stdin (and stdout, so that writes do not fail
        // either) is what the holder keeps open.
        const { stdin, stdout } = transport._process
        holder = spawn("sleep", ["600"], { stdio: ["ignore", "ignore", "ignore", stdin, stdout] }).pid
      }
      process.stdout.write(`${JSON.stringify({ server: transport.pid, holder })}\n`)
    },
  })
  .catch(() => undefined)
