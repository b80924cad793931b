import { describe, expect, it } from "vitest"
import { compareSemVer, latestVersion, parseSemVer } from "../../src/ota/semver.js"

const v = (text: string) => {
  const parsed = parseSemVer(text)
  if (parsed === undefined) throw new Error(`not semver: ${text}`)
  return parsed
}

describe("semantic versions as release tags", () => {
  it("orders by semver.org precedence: numbers numerically, a release above its pre-releases", () => {
    const sorted = [
      "1.0.0",
      "1.0.0-alpha",
      "1.0.0-alpha.1",
      "1.0.0-beta.11",
      "1.0.0-beta.2",
      "1.10.0",
      "1.9.0",
      "0.9.9",
      "1.0.0-rc.1",
    ]
      .map(v)
      .sort(compareSemVer)
      .map((x) => x.text)
    expect(sorted).toEqual([
      "0.9.9",
      "1.0.0-alpha",
      "1.0.0-alpha.1",
      "1.0.0-beta.2",
      "1.0.0-beta.11",
      "1.0.0-rc.1",
      "1.0.0",
      "1.9.0",
      "1.10.0",
    ])
  })

  it("reads a leading v; refuses what is not a version", () => {
    expect(parseSemVer("v2.1.0")).toMatchObject({ major: 2, minor: 1, patch: 0 })
    for (const bad of ["latest", "1.3", "01.2.3", "1.2.3-", "1.2.3.4", "", "sha256-abc.sig"])
      expect(parseSemVer(bad), bad).toBeUndefined()
    expect(compareSemVer(v("1.2.3+build.5"), v("1.2.3"))).toBe(0)
  })

  it("picks the latest on a channel: releases everywhere, a pre-release on its own channel or any", () => {
    const tags = ["1.2.0", "v1.9.0", "1.10.0-beta.1", "2.0.0-rc.1", "junk"]
    expect(latestVersion(tags, "stable")?.text).toBe("v1.9.0")
    expect(latestVersion(tags, "beta")?.text).toBe("1.10.0-beta.1")
    expect(latestVersion(tags, "any")?.text).toBe("2.0.0-rc.1")
    expect(latestVersion(["junk"], "stable")).toBeUndefined()
  })
})
