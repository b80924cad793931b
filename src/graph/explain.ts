import type { Canonical } from "../text/canonicalJson.js"

/*
 * "Why is this not cached?" A node's key inputs are kept with its store row, so a miss is explained by a
 * diff between what the nearest stored node of the same profile was built from and what is asked now —
 * the way Turborepo's run summary and nix-diff answer it — not by a guess.
 */

type Value = Canonical | undefined

const isObject = (value: Value): value is { readonly [k: string]: Canonical | undefined } =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** Digests and keys say only that they changed; short words are shown. */
const show = (value: Value): string | undefined => {
  if (value === undefined) return "(none)"
  if (value === null) return "null"
  if (typeof value === "string") return /^[0-9a-f]{16,}$/.test(value) || value.length > 48 ? undefined : value
  if (typeof value === "number" || typeof value === "boolean") return String(value)
  return undefined
}

/** What identifies an element of a list of records: a file's path, a script's name. */
const identity = (value: Value): string | undefined => {
  if (!isObject(value)) return undefined
  const id = value.path ?? value.name
  return typeof id === "string" ? id : undefined
}

const same = (a: Value, b: Value) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null)

/**
 * The differences between two sets of key inputs, one short phrase each: `packages +tcpdump, dropped -ppp`,
 * `release: 23.05.4 → 23.05.5`, `overlay etc/banner changed`, `secrets.wifi_key changed` (never a value).
 */
export const diffKeyInputs = (before: Value, after: Value, path = ""): ReadonlyArray<string> => {
  if (same(before, after)) return []
  const label = path === "" ? "inputs" : path
  if (isObject(before) && isObject(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort()
    return keys.flatMap((key) => diffKeyInputs(before[key], after[key], path === "" ? key : `${path}.${key}`))
  }
  if (Array.isArray(before) && Array.isArray(after)) {
    const keyed = [...before, ...after].every((v) => identity(v) !== undefined)
    if (keyed) {
      const was = new Map(before.map((v) => [identity(v) as string, v] as const))
      const now = new Map(after.map((v) => [identity(v) as string, v] as const))
      const changes: Array<string> = []
      for (const [id, value] of now) {
        const old = was.get(id)
        if (old === undefined) changes.push(`${label} +${id}`)
        else if (!same(old, value)) {
          const fields = diffKeyInputs(old, value).map((c) => c.replace(/:.*$/, "").replace(/ changed$/, ""))
          changes.push(`${label} ${id} changed${fields.length > 0 ? ` (${fields.join(", ")})` : ""}`)
        }
      }
      for (const id of was.keys()) if (!now.has(id)) changes.push(`${label} -${id}`)
      return changes.length > 0 ? changes : [`${label} reordered`]
    }
    const shown = [...before, ...after].map(show)
    if (shown.every((s) => s !== undefined)) {
      const was = before.map((v) => show(v) as string)
      const now = after.map((v) => show(v) as string)
      const added = now.filter((v) => !was.includes(v)).map((v) => `+${v}`)
      const dropped = was.filter((v) => !now.includes(v))
      const parts = [...added, ...(dropped.length > 0 ? [`dropped ${dropped.join(" ")}`] : [])]
      return [parts.length > 0 ? `${label} ${parts.join(", ")}` : `${label} reordered`]
    }
    return [`${label} changed`]
  }
  const from = show(before)
  const to = show(after)
  return [from !== undefined && to !== undefined ? `${label}: ${from} → ${to}` : `${label} changed`]
}
