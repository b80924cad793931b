import { describe, expect, it } from "vitest"
import { buildErrors, buildsByVersion, buildsPerDay, summary, topPackages } from "../../src/asu/statistics.js"
import type { AsuEventRow } from "../../src/db/asuJobRecords.js"

const now = new Date("2026-12-05T10:00:00Z")
const daysAgo = (days: number, hour = 12) => new Date(Date.UTC(2026, 11, 5 - days, hour)).toISOString()

const event = (
  at: string,
  kind: AsuEventRow["event"],
  version: string,
  packages: ReadonlyArray<string> = [],
  detail: string | null = null,
): AsuEventRow => ({
  at,
  event: kind,
  version,
  target: "ath79/generic",
  profile: "tplink_archer-c7-v5",
  packages: JSON.stringify(packages),
  detail,
})

const events: ReadonlyArray<AsuEventRow> = [
  event(daysAgo(40), "requests", "23.05.5", ["luci"]),
  event(daysAgo(2), "requests", "23.05.5", ["luci", "tcpdump", "-ppp"]),
  event(daysAgo(2), "cache-hits", "23.05.5"),
  event(daysAgo(0, 1), "requests", "24.10.2", ["+luci", "luci"]),
  event(daysAgo(0, 2), "requests", "24.10.1", ["owut"]),
  event(daysAgo(0, 3), "failures", "24.10.2", [], "Error: Impossible package selection\nmore"),
]

describe("ASU statistics", () => {
  it("counts requests, cache hits and failures per UTC day over 30 days, today last", () => {
    const chart = buildsPerDay(events, now)
    expect(chart.labels).toHaveLength(30)
    expect(chart.labels.at(-1)).toBe("2026-12-05Z")
    expect(chart.labels[0]).toBe("2026-11-06Z")
    const series = Object.fromEntries(chart.datasets.map((d) => [d.label, d.data]))
    expect(series.Requests?.at(-1)).toBe(2)
    expect(series.Requests?.at(-3)).toBe(1)
    // Forty days ago is outside the chart.
    expect(series.Requests?.reduce((a, b) => a + b, 0)).toBe(3)
    expect(series["Cache-Hits"]?.at(-3)).toBe(1)
    expect(series.Failures?.at(-1)).toBe(1)
  })

  it("draws one curve per branch, or per version of one branch", () => {
    const byBranch = buildsByVersion(events, now)
    expect(byBranch.labels).toHaveLength(26)
    expect(byBranch.datasets.map((d) => [d.label, d.data.reduce((a, b) => a + b, 0)])).toEqual([
      ["23.05", 2],
      ["24.10", 2],
    ])
    expect(buildsByVersion(events, now, "24.10").datasets.map((d) => d.label)).toEqual(["24.10.1", "24.10.2"])
  })

  it("ranks requested packages over 30 days: removals and repeats not counted", () => {
    expect(topPackages(events, now, { n: 10 })).toEqual({
      packages: [
        { name: "luci", count: 2 },
        { name: "owut", count: 1 },
        { name: "tcpdump", count: 1 },
      ],
      branch: null,
      days: 30,
    })
    expect(topPackages(events, now, { branch: "23.05", n: 1 }).packages).toEqual([{ name: "luci", count: 1 }])
  })

  it("sums the last 30 days", () => {
    expect(summary(events, now, 3)).toEqual({
      days: 30,
      requests: 3,
      cache_hits: 1,
      failures: 1,
      queue_length: 3,
    })
  })

  it("writes the latest failures as upstream's plain text, one line each", () => {
    expect(buildErrors([], 10)).toBe("No error logs found.")
    const text = buildErrors([...events, event(daysAgo(0, 4), "failures", "23.05.5", [], "Error: second")], 1)
    expect(text.split("\n")).toEqual([
      "Total errors logged: 2 (showing 1 most recent)",
      `Time period: ${daysAgo(0, 3)} - ${daysAgo(0, 4)}`,
      "",
      `${daysAgo(0, 4)} 23.05.5 ath79/generic tplink_archer-c7-v5: Error: second`,
    ])
  })
})
