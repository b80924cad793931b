import { describe, expect, it } from "vitest"
import { closestMatch, editDistance } from "../../src/text/closestMatch.js"

describe("closestMatch", () => {
  it("counts a swap of neighbours as one edit", () => {
    expect(editDistance("mdoe", "mode")).toBe(1)
    expect(editDistance("kitten", "sitting")).toBe(3)
  })
  it("suggests plausible typos only", () => {
    expect(closestMatch("pacakges", ["packages", "device", "tags"])).toBe("packages")
    expect(closestMatch("devcie", ["packages", "device"])).toBe("device")
    expect(closestMatch("colour", ["packages", "device"])).toBeUndefined()
  })
})
