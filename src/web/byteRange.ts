/** What a `Range` request header asks of a representation of `size` bytes. */
export type RangeDecision =
  | { readonly kind: "full" }
  | { readonly kind: "partial"; readonly start: number; readonly end: number }
  | { readonly kind: "unsatisfiable" }

/**
 * One `bytes=` range (RFC 9110 §14): `a-b`, `a-` or `-suffix`, the end clamped to the size. Anything the
 * server may ignore — another unit, several ranges, a malformed spec — is answered with the whole file.
 */
export const decideRange = (header: string | undefined, size: number): RangeDecision => {
  if (header === undefined) return { kind: "full" }
  const match = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header)
  if (!match) return { kind: "full" }
  const [, first = "", last = ""] = match
  if (first === "" && last === "") return { kind: "full" }
  if (first === "") {
    const suffix = Number(last)
    if (suffix === 0 || size === 0) return { kind: "unsatisfiable" }
    return { kind: "partial", start: Math.max(0, size - suffix), end: size - 1 }
  }
  const start = Number(first)
  const end = last === "" ? size - 1 : Math.min(Number(last), size - 1)
  if (last !== "" && Number(last) < start) return { kind: "full" }
  if (start >= size) return { kind: "unsatisfiable" }
  return { kind: "partial", start, end }
}

/** Whether an `If-None-Match` header names `etag` (weak comparison, as RFC 9110 asks for it). */
export const etagMatches = (header: string | undefined, etag: string): boolean => {
  if (header === undefined) return false
  if (header.trim() === "*") return true
  const bare = (tag: string) => tag.trim().replace(/^W\//, "")
  return header.split(",").some((tag) => bare(tag) === bare(etag))
}
