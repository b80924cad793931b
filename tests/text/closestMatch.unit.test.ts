import { describe, expect, it } from "vitest"
import { closestMatch, editDistance, elideName } from "../../src/text/closestMatch.js"

/** The plain full-table optimal string alignment distance, to check the bounded one against. */
const reference = (a: string, b: string): number => {
  const d = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  )
  const at = (i: number, j: number) => d[i]?.[j] ?? 0
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        best = Math.min(best, at(i - 2, j - 2) + 1)
      const row = d[i]
      if (row) row[j] = best
    }
  }
  return at(a.length, b.length)
}

const ids = Array.from({ length: 50 }, (_, i) => `site-${i}-access-point`)

describe("closestMatch", () => {
  it("counts a swap of neighbours as one edit", () => {
    expect(editDistance("mdoe", "mode")).toBe(1)
    expect(editDistance("kitten", "sitting")).toBe(3)
  })
  it("suggests plausible typos only", () => {
    expect(closestMatch("pacakges", ["packages", "device", "tags"])).toBe("packages")
    expect(closestMatch("devcie", ["packages", "device"])).toBe("device")
    expect(closestMatch("colour", ["packages", "device"])).toBeUndefined()
    expect(closestMatch("home-pa", ["home-ap", "home-ap2"])).toBe("home-ap")
  })
  it("gives the exact distance within the bound, and bound + 1 past it", () => {
    let seed = 7
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648
      return seed / 2147483648
    }
    const word = () =>
      Array.from({ length: Math.floor(random() * 9) }, () => "abc"[Math.floor(random() * 3)]).join("")
    for (let n = 0; n < 2000; n++) {
      const a = word()
      const b = word()
      const exact = reference(a, b)
      expect(editDistance(a, b)).toBe(exact)
      for (const max of [0, 1, 2, 3]) expect(editDistance(a, b, max)).toBe(Math.min(exact, max + 1))
    }
  })
  it("answers at once for names of megabytes, suggesting nothing", { timeout: 20_000 }, () => {
    for (const size of [1024 * 1024, 5 * 1024 * 1024]) {
      const huge = "site-1-access-point".padEnd(size, "x")
      expect(closestMatch(huge, ids)).toBeUndefined()
      // A huge candidate is no trouble either.
      expect(closestMatch("site-1-access-pint", [huge, ...ids])).toBe("site-1-access-point")
    }
  })
  it("finds the closest of long candidates that differ past the bound", () => {
    const long = "a".repeat(200)
    const candidates = Array.from({ length: 200 }, (_, i) => `${"b".repeat(200)}${i}`)
    expect(closestMatch(long, candidates)).toBeUndefined()
    expect(closestMatch(`${long}x`, [...candidates, long])).toBe(long)
  })
  it("shortens a name for echoing", () => {
    expect(elideName("home-ap")).toBe("home-ap")
    const shown = elideName("x".repeat(1_000_000))
    expect(shown.length).toBeLessThan(100)
    expect(shown).toContain("1000000 characters")
  })
})
