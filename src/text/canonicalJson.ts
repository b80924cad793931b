import { Schema } from "effect"

/**
 * Canonical JSON: object keys sorted by code point, no whitespace, `undefined` members dropped. The same
 * value always encodes to the same bytes, on any machine, which is what content hashes and keys need.
 */
export type Canonical =
  | null
  | boolean
  | number
  | string
  | ReadonlyArray<Canonical>
  | { readonly [k: string]: Canonical | undefined }

/** Any JSON value, as a Schema: what a key's inputs read back from the database decode with. */
export const CanonicalSchema: Schema.Schema<Canonical> = Schema.Union(
  Schema.Null,
  Schema.Boolean,
  Schema.Number,
  Schema.String,
  Schema.Array(Schema.suspend(() => CanonicalSchema)),
  Schema.Record({ key: Schema.String, value: Schema.UndefinedOr(Schema.suspend(() => CanonicalSchema)) }),
)

/** A key JavaScript orders before all others, numerically (an array index): its object is encoded by hand. */
const isIndexKey = (key: string) => /^(?:0|[1-9][0-9]{0,9})$/.test(key) && Number(key) < 4294967295

const finite = (value: number) => {
  if (!Number.isFinite(value)) throw new TypeError("canonical JSON has no encoding for non-finite numbers")
  return value
}

/** Canonical JSON built string by string: for objects with array-index keys, which JSON.stringify reorders. */
const encode = (value: Canonical): string => {
  if (value === null || typeof value === "boolean" || typeof value === "string") return JSON.stringify(value)
  if (typeof value === "number") return JSON.stringify(finite(value))
  if (Array.isArray(value)) return `[${value.map((v: Canonical) => encode(v)).join(",")}]`
  const object = value as { readonly [k: string]: Canonical | undefined }
  const members: Array<string> = []
  for (const key of Object.keys(object).sort()) {
    const member = object[key]
    if (member !== undefined) members.push(`${JSON.stringify(key)}:${encode(member)}`)
  }
  return `{${members.join(",")}}`
}

/** Marks a subtree JSON.stringify cannot encode canonically (see `isIndexKey`). */
const byHand = Symbol("canonical JSON by hand")

/**
 * The value with every object's keys in canonical order and `undefined` members dropped, reusing each part
 * that already is; `byHand` when an object has array-index keys.
 */
const normalise = (value: Canonical): Canonical | typeof byHand => {
  if (value === null || typeof value !== "object") return typeof value === "number" ? finite(value) : value
  if (Array.isArray(value)) {
    let copy: Array<Canonical> | undefined
    for (let i = 0; i < value.length; i++) {
      const item = value[i] as Canonical
      const normal = normalise(item)
      if (normal === byHand) return byHand
      if (copy === undefined && normal !== item) copy = value.slice(0, i)
      if (copy !== undefined) copy.push(normal)
    }
    return copy ?? value
  }
  const object = value as { readonly [k: string]: Canonical | undefined }
  const keys = Object.keys(object)
  // In canonical order already, with nothing to drop: the object itself is kept unless a member changes.
  let same = true
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as string
    const first = key.charCodeAt(0)
    if (first >= 48 && first <= 57 && isIndexKey(key)) return byHand
    if ((i > 0 && (keys[i - 1] as string) > key) || object[key] === undefined) same = false
  }
  if (!same) keys.sort()
  // A copy (without prototype: a `__proto__` key stays a key) only once something differs.
  let copy: Record<string, Canonical> | undefined = same ? undefined : Object.create(null)
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as string
    const member = object[key]
    if (member === undefined) continue
    const normal = normalise(member)
    if (normal === byHand) return byHand
    if (copy === undefined && normal !== member) {
      copy = Object.create(null) as Record<string, Canonical>
      for (let j = 0; j < i; j++) {
        const earlier = keys[j] as string
        copy[earlier] = object[earlier] as Canonical
      }
    }
    if (copy !== undefined) copy[key] = normal
  }
  return copy ?? value
}

/**
 * Canonical JSON of a value. Most values are put in canonical order and handed to JSON.stringify, several
 * times faster than encoding each member (a plan hashes every profile it resolves); objects with
 * array-index keys, which JSON.stringify would put first, are encoded by hand.
 */
export const canonicalJson = (value: Canonical): string => {
  const normal = normalise(value)
  return normal === byHand ? encode(value) : JSON.stringify(normal)
}
