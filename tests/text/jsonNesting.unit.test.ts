import { describe, expect, it } from "vitest"
import { jsonTextNestsDeeper, valueNestsDeeper } from "../../src/text/jsonNesting.js"

describe("JSON nesting checks", () => {
  const nested = (depth: number) => `${"[".repeat(depth)}${"]".repeat(depth)}`

  it("counts brackets outside strings only, in text", () => {
    expect(jsonTextNestsDeeper(nested(64))).toBe(false)
    expect(jsonTextNestsDeeper(nested(65))).toBe(true)
    expect(jsonTextNestsDeeper(`{"a":${nested(63)}}`)).toBe(false)
    expect(jsonTextNestsDeeper(`{"a":${nested(64)}}`)).toBe(true)
    expect(jsonTextNestsDeeper(JSON.stringify({ text: "[{".repeat(1000) }))).toBe(false)
    // An escaped quote does not end the string.
    expect(jsonTextNestsDeeper(JSON.stringify({ text: `\\"${"[".repeat(100)}` }))).toBe(false)
    expect(jsonTextNestsDeeper(nested(1_000_000))).toBe(true)
  })

  it("measures parsed values without recursion", () => {
    expect(valueNestsDeeper("scalar", 0)).toBe(false)
    expect(valueNestsDeeper(JSON.parse(nested(64)))).toBe(false)
    expect(valueNestsDeeper(JSON.parse(nested(65)))).toBe(true)
    // object, array, object, array: four deep.
    expect(valueNestsDeeper({ a: [1, { b: [] }] }, 4)).toBe(false)
    expect(valueNestsDeeper({ a: [1, { b: [] }] }, 3)).toBe(true)
    expect(valueNestsDeeper(JSON.parse(nested(200_000)))).toBe(true)
  })
})
