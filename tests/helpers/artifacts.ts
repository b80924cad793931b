import { createHash } from "node:crypto"
import { readFileSync } from "node:fs"
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
