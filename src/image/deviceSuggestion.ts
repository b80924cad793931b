import type { DeviceSuggestion } from "../errors.js"
import { editDistance, maxMatchedNameLength } from "../text/closestMatch.js"
import type { BuilderInfo } from "./builderInfo.js"

/*
 * "Did you mean" for device profiles. A device id names hardware: `tplink_archer-c6-v3` and
 * `tplink_archer-c7-v5` are one edit apart and different routers, and flashing the image of one onto the
 * other can brick it. So only spelling-level differences are suggested: case, separators (`_ - , .` and
 * spaces), and a small typo inside a longer word (`archre`, `tpilnk`). Anything that touches a digit or
 * a short token (model and revision codes: `c7`, `v5`, `a7`, `ac`) is another device, never suggested.
 */

const separators = /[\s_\-,.]+/

/** Lower case, no separators: ids that differ only in these name the same device. */
const squashed = (name: string) => name.toLowerCase().replace(/[\s_\-,.]+/g, "")

/** Tokens: separator-delimited, then split where letters and digits meet (`c7` → `c`, `7`). */
const tokens = (name: string): ReadonlyArray<string> =>
  name
    .toLowerCase()
    .split(separators)
    .filter(Boolean)
    .flatMap((part) => part.match(/[a-z]+|[0-9]+|[^a-z0-9]+/g) ?? [])

/** Words this long may carry a typo; shorter tokens are codes and must match exactly. */
const minTypoWord = 4

/**
 * Whether `wanted` is a misspelling of `candidate`: the same after squashing, or the same tokens where only
 * words of at least four letters differ, each by at most one edit (two for words of eight or more), and at
 * most two edits in all.
 */
export const sameDeviceSpelling = (wanted: string, candidate: string): boolean => {
  if (wanted.length > maxMatchedNameLength || candidate.length > maxMatchedNameLength) return false
  if (squashed(wanted) === squashed(candidate)) return true
  const a = tokens(wanted)
  const b = tokens(candidate)
  if (a.length !== b.length) return false
  let edits = 0
  for (let i = 0; i < a.length; i++) {
    const x = a[i] ?? ""
    const y = b[i] ?? ""
    if (x === y) continue
    const words = /^[a-z]+$/.test(x) && /^[a-z]+$/.test(y)
    if (!words || Math.min(x.length, y.length) < minTypoWord) return false
    const allowed = Math.max(x.length, y.length) >= 8 ? 2 : 1
    const distance = editDistance(x, y, allowed)
    if (distance > allowed) return false
    edits += distance
    if (edits > 2) return false
  }
  return true
}

/**
 * Device profiles of a builder that `requested` misspells, matched against the ids and their
 * `SupportedDevices` names, each with its title.
 */
export const suggestDevices = (info: BuilderInfo, requested: string): ReadonlyArray<DeviceSuggestion> => {
  const wanted = requested.replace(/^DEVICE_/, "")
  return info.profiles
    .filter((profile) => [profile.id, ...profile.supportedDevices].some((n) => sameDeviceSpelling(wanted, n)))
    .map((profile) => ({ id: profile.id, title: profile.name }))
}
