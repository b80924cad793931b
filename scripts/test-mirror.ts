// npm run test-mirror -- [--port P] [--large] [--dir D]
// Builds the test mirror if needed (tests/fixtures/mirror), serves it on 127.0.0.1:P and prints exactly
//   upstream: http://127.0.0.1:P
//   keyring: <absolute keyring dir>
// then runs until killed (SIGINT/SIGTERM close the server).

import { buildMirror, serveMirror } from "../tests/fixtures/mirror/index.js"

function usage(message: string): never {
  process.stderr.write(`${message}\nusage: test-mirror [--port <port>] [--large] [--dir <cache dir>]\n`)
  process.exit(2)
}

let port = 0
let large = false
let dir: string | undefined
const args = process.argv.slice(2)
for (let i = 0; i < args.length; i++) {
  const a = args[i] ?? ""
  const [flag, inline] =
    a.startsWith("--") && a.includes("=")
      ? [a.slice(0, a.indexOf("=")), a.slice(a.indexOf("=") + 1)]
      : [a, undefined]
  const value = (): string => {
    const v = inline ?? args[++i]
    if (v === undefined) usage(`${flag} needs a value`)
    return v
  }
  if (flag === "--port" || flag === "-p") {
    const v = value()
    port = Number(v)
    if (!/^\d+$/.test(v) || port > 65535) usage(`invalid port: ${v}`)
  } else if (flag === "--large") large = true
  else if (flag === "--dir") dir = value()
  else if (flag === "--help" || flag === "-h") usage("")
  else usage(`unknown argument: ${a}`)
}

const { root, keyring } = await buildMirror({ large, ...(dir ? { dir } : {}) })
const served = await serveMirror(root, port)
process.stdout.write(`upstream: ${served.url}\nkeyring: ${keyring}\n`)

let closing = false
const stop = (): void => {
  if (closing) return
  closing = true
  served.close().then(
    () => process.exit(0),
    () => process.exit(0),
  )
}
process.on("SIGINT", stop)
process.on("SIGTERM", stop)
