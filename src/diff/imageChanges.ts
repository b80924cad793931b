import type { Artifact } from "../artifacts/collectArtifacts.js"

/*
 * How the images of two realizations compare: sizes and their delta, and whether the bytes differ (by
 * the SHA-256 each artifact set recorded). An image is paired with the one of the same file name, or,
 * when names differ (another release or version in the name), with the one of the same type and file
 * system when each side has exactly one such image.
 */

export interface ImageFile {
  readonly name: string
  readonly size: number
  readonly sha256: string
}

export type ImageStatus = "added" | "removed" | "changed" | "unchanged"

export interface ImageChange {
  /** sysupgrade, factory, combined, … */
  readonly type: string
  readonly filesystem: string | null
  /** `changed` when the bytes (or the name) differ; `unchanged` when the image is the same file. */
  readonly status: ImageStatus
  readonly from: ImageFile | null
  readonly to: ImageFile | null
  /** Bytes `to` has more than `from` (negative: fewer); an absent image counts as 0 bytes. */
  readonly sizeDelta: number
}

const file = (image: Artifact): ImageFile => ({ name: image.name, size: image.size, sha256: image.sha256 })

const kindOf = (image: Artifact) => `${image.type}\0${image.filesystem ?? ""}`

const change = (from: Artifact | undefined, to: Artifact | undefined): ImageChange => {
  const described = to ?? from
  return {
    type: described?.type ?? "other",
    filesystem: described?.filesystem ?? null,
    status:
      from === undefined
        ? "added"
        : to === undefined
          ? "removed"
          : from.sha256 === to.sha256 && from.name === to.name
            ? "unchanged"
            : "changed",
    from: from === undefined ? null : file(from),
    to: to === undefined ? null : file(to),
    sizeDelta: (to?.size ?? 0) - (from?.size ?? 0),
  }
}

const order = (a: ImageChange, b: ImageChange) => {
  const left = [a.type, a.filesystem ?? "", a.from?.name ?? a.to?.name ?? ""]
  const right = [b.type, b.filesystem ?? "", b.from?.name ?? b.to?.name ?? ""]
  for (let i = 0; i < left.length; i++) {
    const x = left[i] ?? ""
    const y = right[i] ?? ""
    if (x !== y) return x < y ? -1 : 1
  }
  return 0
}

/** Every image of either side, paired and compared, sorted by type, file system and name. */
export const imageChanges = (
  from: ReadonlyArray<Artifact>,
  to: ReadonlyArray<Artifact>,
): ReadonlyArray<ImageChange> => {
  const changes: Array<ImageChange> = []
  const toByName = new Map(to.map((image) => [image.name, image]))
  const leftFrom: Array<Artifact> = []
  for (const image of from) {
    const same = toByName.get(image.name)
    if (same === undefined) leftFrom.push(image)
    else {
      changes.push(change(image, same))
      toByName.delete(image.name)
    }
  }
  const leftTo = [...toByName.values()]
  const count = (images: ReadonlyArray<Artifact>, kind: string) =>
    images.filter((image) => kindOf(image) === kind).length
  const pairedTo = new Set<Artifact>()
  for (const image of leftFrom) {
    const kind = kindOf(image)
    const match =
      count(leftFrom, kind) === 1 && count(leftTo, kind) === 1
        ? leftTo.find((other) => kindOf(other) === kind)
        : undefined
    if (match !== undefined) pairedTo.add(match)
    changes.push(change(image, match))
  }
  for (const image of leftTo) if (!pairedTo.has(image)) changes.push(change(undefined, image))
  return changes.sort(order)
}
