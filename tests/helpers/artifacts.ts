import { execFileSync } from "node:child_process"
import { createHash } from "node:crypto"
import { readFileSync, rmSync } from "node:fs"
import { join } from "node:path"
import { expect } from "vitest"

/** Each artifact a command reported is on disk with the size and SHA-256 it reported. */
export const expectArtifactsOnDisk = (
  artifacts: ReadonlyArray<{ readonly path: string; readonly size: number; readonly sha256: string }>,
): void => {
  for (const artifact of artifacts) {
    const bytes = readFileSync(artifact.path)
    expect(bytes.length).toBe(artifact.size)
    expect(createHash("sha256").update(bytes).digest("hex")).toBe(artifact.sha256)
  }
}

/** Unpacks the squashfs root file system inside an image into a new directory under `scratch`. */
export const extractSquashfs = (image: string, scratch: string): string => {
  const bytes = readFileSync(image)
  const offset = bytes.indexOf(Buffer.from("hsqs"))
  const target = join(scratch, `rootfs-${Date.now()}`)
  rmSync(target, { recursive: true, force: true })
  execFileSync("unsquashfs", ["-q", "-n", "-o", String(offset), "-d", target, image])
  return target
}
