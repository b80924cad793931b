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

export const canonicalJson = (value: Canonical): string => {
  if (value === null || typeof value === "boolean" || typeof value === "string") return JSON.stringify(value)
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new TypeError("canonical JSON has no encoding for non-finite numbers")
    return JSON.stringify(value)
  }
  if (Array.isArray(value)) return `[${value.map((v: Canonical) => canonicalJson(v)).join(",")}]`
  const object = value as { readonly [k: string]: Canonical | undefined }
  const members: Array<string> = []
  for (const key of Object.keys(object).sort()) {
    const member = object[key]
    if (member !== undefined) members.push(`${JSON.stringify(key)}:${canonicalJson(member)}`)
  }
  return `{${members.join(",")}}`
}
