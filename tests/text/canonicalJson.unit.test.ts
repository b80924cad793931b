import { describe, expect, it } from "vitest"
import { type Canonical, canonicalJson } from "../../src/text/canonicalJson.js"

/** The definition, written the slow way: keys by UTF-16 code units, no whitespace, undefined dropped. */
const reference = (value: Canonical): string => {
  if (value === null || typeof value !== "object") return JSON.stringify(value)
  if (Array.isArray(value)) return `[${value.map((v: Canonical) => reference(v)).join(",")}]`
  const object = value as { readonly [k: string]: Canonical | undefined }
  return `{${Object.keys(object)
    .sort()
    .filter((k) => object[k] !== undefined)
    .map((k) => `${JSON.stringify(k)}:${reference(object[k] as Canonical)}`)
    .join(",")}}`
}

/** A small deterministic generator, so that a failure names a reproducible case. */
const random = (seed: number) => () => {
  seed = (seed * 1103515245 + 12345) % 2147483648
  return seed / 2147483648
}

const keyPool = [
  "b",
  "a",
  "Z",
  "é",
  "10",
  "2",
  "0",
  "01",
  "-1",
  "__proto__",
  "",
  "aa",
  "\u{1F600}",
  "4294967295",
]

const generate = (next: () => number, depth: number): Canonical | undefined => {
  const pick = Math.floor(next() * (depth > 3 ? 5 : 8))
  switch (pick) {
    case 0:
      return null
    case 1:
      return next() < 0.5
    case 2:
      return Math.round((next() - 0.5) * 1e6) / 100
    case 3:
      return `s${Math.floor(next() * 100)}\n"`
    case 4:
      return undefined
    case 5:
    case 6: {
      const object: Record<string, Canonical | undefined> = {}
      const count = Math.floor(next() * 5)
      for (let i = 0; i < count; i++) {
        const key = keyPool[Math.floor(next() * keyPool.length)] as string
        Object.defineProperty(object, key, {
          value: generate(next, depth + 1),
          enumerable: true,
          configurable: true,
          writable: true,
        })
      }
      return object as Canonical
    }
    default:
      return Array.from({ length: Math.floor(next() * 4) }, () => generate(next, depth + 1) ?? null)
  }
}

describe("canonical JSON", () => {
  it("sorts keys at every depth, drops undefined members, and writes no whitespace", () => {
    expect(canonicalJson({ b: 1, a: [true, null, { d: "x", c: undefined }], e: {} })).toBe(
      '{"a":[true,null,{"d":"x"}],"b":1,"e":{}}',
    )
  })

  it("orders array-index keys as strings, where JSON.stringify would put them first by number", () => {
    expect(canonicalJson({ b: 1, "10": 2, "2": 3 })).toBe('{"10":2,"2":3,"b":1}')
    expect(canonicalJson({ x: [{ "1": true, a: false }] })).toBe('{"x":[{"1":true,"a":false}]}')
  })

  it("keeps a __proto__ key as a key", () => {
    const value = JSON.parse('{"z":1,"__proto__":{"b":2,"a":1}}') as Canonical
    expect(canonicalJson(value)).toBe('{"__proto__":{"a":1,"b":2},"z":1}')
  })

  it("refuses non-finite numbers", () => {
    expect(() => canonicalJson({ a: [Number.NaN] })).toThrow(/non-finite/)
    expect(() => canonicalJson(Number.POSITIVE_INFINITY)).toThrow(/non-finite/)
  })

  it("encodes any value exactly as the definition does", () => {
    const next = random(7)
    for (let i = 0; i < 2000; i++) {
      const value = generate(next, 0) ?? null
      expect(canonicalJson(value), JSON.stringify(value)).toBe(reference(value))
    }
  })

  it("does not change the value it encodes", () => {
    const value = { b: { d: 1, c: undefined }, a: [{ z: 1, y: 2 }] }
    const before = JSON.stringify(value)
    canonicalJson(value)
    expect(JSON.stringify(value)).toBe(before)
    expect(Object.keys(value.b)).toEqual(["d", "c"])
  })
})
