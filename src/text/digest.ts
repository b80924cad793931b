import { createHash, hash } from "node:crypto"
import { createReadStream, readFileSync } from "node:fs"

/** SHA-256 in hex, one shot (`crypto.hash`: a plan takes hundreds, and a Hash object costs several times more). */
export const sha256Hex = (data: string | Uint8Array): string => hash("sha256", data, "hex")

export const sha256File = (path: string): string => sha256Hex(readFileSync(path))

/** SHA-256 of a file of any size, streamed (a large image is never held in memory). */
export const sha256FileStreamed = (path: string): Promise<string> =>
  new Promise((resolve, reject) => {
    const hash = createHash("sha256")
    createReadStream(path, { highWaterMark: 1024 * 1024 })
      .on("data", (chunk) => hash.update(chunk))
      .on("end", () => resolve(hash.digest("hex")))
      .on("error", reject)
  })
