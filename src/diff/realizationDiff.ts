import type { ArtifactsManifest } from "../artifacts/collectArtifacts.js"
import type { TreeFile } from "../store/treeDigest.js"
import { type ImageChange, imageChanges } from "./imageChanges.js"
import { type OverlayChanges, overlayChanges } from "./overlayChanges.js"
import { type PackageChanges, packageChanges } from "./packageChanges.js"

/*
 * Two realizations compared, as `nix store diff-closures` compares two closures: what the store and the
 * database hold about each (the artifact set's owrt manifest, the staged overlay's listing), no image
 * unpacked.
 */

/** A realized profile as the store holds it: what a diff compares. */
export interface Realization {
  /** What the user named it by: `profile@rev`, a store path or a build id. */
  readonly reference: string
  readonly profile: string
  /** The revision number, when this store recorded the revision. */
  readonly rev: number | null
  /** The revision hash. */
  readonly revision: string
  /** The (latest successful) build that produced it, when one is recorded. */
  readonly buildId: number | null
  /** The collect-artifacts key. */
  readonly key: string
  /** The collect-artifacts store path. */
  readonly storePath: string
  readonly manifest: ArtifactsManifest
  /** The staged overlay's listing, recorded when it was stored; null when the store has no record of it. */
  readonly overlay: ReadonlyArray<TreeFile> | null
}

/** The graph's nodes, in order, with the manifest field holding each one's key. */
export const diffedNodes = [
  ["fetch-builder", "fetchBuilder"],
  ["stage-overlay", "stageOverlay"],
  ["make-image", "makeImage"],
  ["collect-artifacts", "collectArtifacts"],
] as const

/** The nodes of a Raspberry Pi OS image, with the manifest field holding each one's key. */
export const diffedRaspiosNodes = [
  ["fetch-base-image", "fetchBuilder"],
  ["customise-image", "makeImage"],
  ["collect-artifacts", "collectArtifacts"],
] as const

export interface NodeKeyChange {
  readonly node: (typeof diffedNodes)[number][0] | (typeof diffedRaspiosNodes)[number][0]
  readonly from: string
  readonly to: string
  readonly changed: boolean
}

/** A build input whose value differs (arrays written space-separated, as on a make command line). */
export interface InputChange {
  readonly field: string
  readonly from: string | null
  readonly to: string | null
}

export interface RealizationDiff {
  /** Both name the same artifact set (the same collect-artifacts key): nothing differs. */
  readonly identical: boolean
  readonly keys: ReadonlyArray<NodeKeyChange>
  readonly inputs: ReadonlyArray<InputChange>
  readonly packages: PackageChanges
  /** null when the store holds no listing of one side's staged overlay. */
  readonly files: OverlayChanges | null
  readonly images: ReadonlyArray<ImageChange>
}

type Inputs = ArtifactsManifest["inputs"]

/**
 * The build inputs a manifest records, each as text (arrays space-separated, as on a make command line).
 * A Raspberry Pi OS image's manifest keeps its base image's release date as `release` and its host name as
 * `device`: named so.
 */
const inputValues = (inputs: Inputs, raspios: boolean): ReadonlyArray<readonly [string, string | null]> => [
  [raspios ? "baseRelease" : "release", inputs.release],
  ["target", inputs.target],
  [raspios ? "hostname" : "device", inputs.device],
  ["packages", inputs.packages.join(" ")],
  ["disabledServices", inputs.disabledServices.join(" ")],
  ["rootfsSize", inputs.rootfsSize === null ? null : String(inputs.rootfsSize)],
]

/** The build inputs (release, target, device, requested packages, …) that differ. */
export const inputChanges = (from: Inputs, to: Inputs, raspios = false): ReadonlyArray<InputChange> => {
  const after = new Map(inputValues(to, raspios))
  return inputValues(from, raspios)
    .filter(([field, value]) => after.get(field) !== value)
    .map(([field, value]) => ({ field, from: value, to: after.get(field) ?? null }))
}

const isRaspios = (manifest: ArtifactsManifest) => manifest.raspios !== undefined

export const keyChanges = (from: ArtifactsManifest, to: ArtifactsManifest): ReadonlyArray<NodeKeyChange> =>
  (isRaspios(from) || isRaspios(to) ? diffedRaspiosNodes : diffedNodes).map(([node, field]) => ({
    node,
    from: from.keys[field],
    to: to.keys[field],
    changed: from.keys[field] !== to.keys[field],
  }))

export const diffRealizations = (from: Realization, to: Realization): RealizationDiff => ({
  identical: from.key === to.key,
  keys: keyChanges(from.manifest, to.manifest),
  inputs: inputChanges(
    from.manifest.inputs,
    to.manifest.inputs,
    isRaspios(from.manifest) || isRaspios(to.manifest),
  ),
  packages: packageChanges(from.manifest.packages, to.manifest.packages),
  files: from.overlay === null || to.overlay === null ? null : overlayChanges(from.overlay, to.overlay),
  images: imageChanges(from.manifest.images, to.manifest.images),
})
