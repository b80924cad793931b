// The least a Node.js client does to pull blobs: each downloaded at once over node:http, SHA-256 checked
// against its digest, written to a file. No signature, no unpack, no store. bench/cache runs it beside curl
// and owrt to show what Node's own start and HTTP client cost before owrt does anything.
//   node bench/lib/nodePull.mjs DIR URL@sha256:HEX ...
import { createHash } from "node:crypto"
import { closeSync, openSync, writeSync } from "node:fs"
import { get } from "node:http"
import { join } from "node:path"

const [dir, ...blobs] = process.argv.slice(2)
let left = blobs.length
blobs.forEach((blob, i) => {
  const at = blob.lastIndexOf("@")
  const url = blob.slice(0, at)
  const digest = blob.slice(at + 1)
  get(url, (response) => {
    if (response.statusCode !== 200) throw new Error(`${url}: ${response.statusCode}`)
    const hash = createHash("sha256")
    const fd = openSync(join(dir, String(i)), "w")
    response.on("data", (chunk) => {
      hash.update(chunk)
      for (let done = 0; done < chunk.length; ) done += writeSync(fd, chunk, done)
    })
    response.on("end", () => {
      closeSync(fd)
      if (`sha256:${hash.digest("hex")}` !== digest) throw new Error(`${url}: wrong digest`)
      left -= 1
      if (left === 0) process.exitCode = 0
    })
  })
})
