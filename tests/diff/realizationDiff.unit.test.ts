import { describe, expect, it } from "vitest"
import type { ArtifactsManifest } from "../../src/artifacts/collectArtifacts.js"
import { diffRealizations, inputChanges, type Realization } from "../../src/diff/realizationDiff.js"

const manifest = (overrides: Partial<ArtifactsManifest> = {}): ArtifactsManifest => ({
  owrt: 1,
  profile: "ap",
  revision: "r1",
  inputs: {
    release: "23.05.5",
    target: "ath79/generic",
    device: "tplink_archer-c7-v5",
    packages: ["luci"],
    disabledServices: [],
    rootfsSize: null,
  },
  builder: { key: "b1", archive: "a.tar.xz", archiveSha256: "s", signedBy: "k" },
  keys: { fetchBuilder: "b1", stageOverlay: "o1", makeImage: "m1", collectArtifacts: "c1" },
  images: [],
  packages: [],
  sbom: null,
  ...overrides,
})

const realization = (m: ArtifactsManifest, overlay: Realization["overlay"] = []): Realization => ({
  reference: "ap",
  profile: "ap",
  rev: 1,
  revision: m.revision,
  buildId: 1,
  key: m.keys.collectArtifacts,
  storePath: `/store/${m.keys.collectArtifacts}-ap-artifacts`,
  manifest: m,
  overlay,
})

describe("diffRealizations", () => {
  it("lists every node key in graph order and marks those that differ", () => {
    const from = manifest()
    const to = manifest({
      keys: { fetchBuilder: "b1", stageOverlay: "o2", makeImage: "m2", collectArtifacts: "c2" },
    })
    const d = diffRealizations(realization(from), realization(to))
    expect(d.identical).toBe(false)
    expect(d.keys).toEqual([
      { node: "fetch-builder", from: "b1", to: "b1", changed: false },
      { node: "stage-overlay", from: "o1", to: "o2", changed: true },
      { node: "make-image", from: "m1", to: "m2", changed: true },
      { node: "collect-artifacts", from: "c1", to: "c2", changed: true },
    ])
  })

  it("is identical for the same artifact set", () => {
    const same = realization(manifest())
    expect(diffRealizations(same, same).identical).toBe(true)
  })

  it("cannot compare files when one side's overlay listing is unknown", () => {
    expect(diffRealizations(realization(manifest()), realization(manifest(), null)).files).toBeNull()
  })
})

describe("inputChanges", () => {
  it("names the build inputs that differ, lists as text", () => {
    const from = manifest().inputs
    const to = { ...from, release: "24.10.2", packages: ["luci", "-ppp"], rootfsSize: 256 }
    expect(inputChanges(from, to)).toEqual([
      { field: "release", from: "23.05.5", to: "24.10.2" },
      { field: "packages", from: "luci", to: "luci -ppp" },
      { field: "rootfsSize", from: null, to: "256" },
    ])
    expect(inputChanges(from, from)).toEqual([])
  })
})
