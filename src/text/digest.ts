import { createHash } from "node:crypto"
import { readFileSync } from "node:fs"

export const sha256Hex = (data: string | Uint8Array): string =>
  createHash("sha256").update(data).digest("hex")

export const sha256File = (path: string): string => sha256Hex(readFileSync(path))
