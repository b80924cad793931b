import type { AsuEventRow } from "../db/asuJobRecords.js"

/*
 * ASU's statistics routes (asu-api.md §1) from the request events the server records: chart shapes
 * (`{labels, datasets[]}`, as the stats page and upstream's Chart.js front end draw them), the most
 * requested packages and the latest build errors. Pure functions of the events and the time.
 */

const dayMs = 24 * 60 * 60 * 1000

/** Buckets ending at the next UTC midnight, as upstream aligns them; labels `YYYY-MM-DDZ`. */
export const buckets = (now: Date, count: number, size: number) => {
  const midnight = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()) + dayMs
  const start = midnight - count * size
  const stamps = Array.from({ length: count }, (_, i) => start + i * size)
  return {
    start,
    stop: midnight,
    stamps,
    labels: stamps.map((stamp) => `${new Date(stamp).toISOString().slice(0, 10)}Z`),
  }
}

/** The index of the bucket an event falls in, or -1 outside them. */
const bucketOf = (at: string, start: number, size: number, count: number) => {
  const index = Math.floor((Date.parse(at) - start) / size)
  return index >= 0 && index < count ? index : -1
}

export interface Chart {
  readonly labels: ReadonlyArray<string>
  readonly datasets: ReadonlyArray<{
    readonly label: string
    readonly data: ReadonlyArray<number>
    readonly color?: string
  }>
}

/** The days of `/api/v1/builds-per-day`. */
export const perDayCount = 30

/** Requests, cache hits and failures per day over the last 30 days. */
export const buildsPerDay = (events: ReadonlyArray<AsuEventRow>, now: Date): Chart => {
  const { start, stamps, labels } = buckets(now, perDayCount, dayMs)
  const series = (event: AsuEventRow["event"], label: string, color: string) => {
    const data = stamps.map(() => 0)
    for (const e of events) {
      if (e.event !== event) continue
      const i = bucketOf(e.at, start, dayMs, stamps.length)
      if (i >= 0) data[i] = (data[i] ?? 0) + 1
    }
    return { label, data, color }
  }
  return {
    labels,
    datasets: [
      series("requests", "Requests", "green"),
      series("cache-hits", "Cache-Hits", "orange"),
      series("failures", "Failures", "red"),
    ],
  }
}

/** The weeks of `/api/v1/builds-by-version`. */
export const byVersionWeeks = 26

/**
 * Requests per week over 26 weeks: one curve per branch (`23.05`, `24.10`, …), or with `branch` one per
 * version of that branch.
 */
export const buildsByVersion = (events: ReadonlyArray<AsuEventRow>, now: Date, branch?: string): Chart => {
  const size = 7 * dayMs
  const { start, stamps, labels } = buckets(now, byVersionWeeks, size)
  const curves = new Map<string, Array<number>>()
  for (const e of events) {
    if (e.event !== "requests") continue
    if (branch !== undefined && !e.version.startsWith(branch)) continue
    const label = branch === undefined && e.version.includes(".") ? e.version.slice(0, 5) : e.version
    const i = bucketOf(e.at, start, size, stamps.length)
    if (i < 0) continue
    const data = curves.get(label) ?? stamps.map(() => 0)
    data[i] = (data[i] ?? 0) + 1
    curves.set(label, data)
  }
  return {
    labels,
    datasets: [...curves.keys()].sort().map((label) => ({ label, data: curves.get(label) ?? [] })),
  }
}

/** The days `/api/v1/top-packages` counts over. */
export const topPackagesDays = 30

/** The packages requested most over the last 30 days (of one branch, with `branch`), most first. */
export const topPackages = (
  events: ReadonlyArray<AsuEventRow>,
  now: Date,
  options: { readonly branch?: string | undefined; readonly n: number },
) => {
  const since = now.getTime() - topPackagesDays * dayMs
  const counts = new Map<string, number>()
  for (const e of events) {
    if (e.event !== "requests" || Date.parse(e.at) < since) continue
    if (options.branch !== undefined && !e.version.startsWith(options.branch)) continue
    let packages: unknown
    try {
      packages = JSON.parse(e.packages)
    } catch {
      continue
    }
    if (!Array.isArray(packages)) continue
    // A removal (`-ppp`) is not a request for the package; `+luci` is `luci`, counted once a request.
    const names = new Set(
      packages.flatMap((entry) =>
        typeof entry === "string" && !entry.startsWith("-") ? [entry.replace(/^\+/, "")] : [],
      ),
    )
    for (const name of names) counts.set(name, (counts.get(name) ?? 0) + 1)
  }
  const packages = [...counts]
    .sort(([a, x], [b, y]) => y - x || (a < b ? -1 : a > b ? 1 : 0))
    .slice(0, options.n)
    .map(([name, count]) => ({ name, count }))
  return { packages, branch: options.branch ?? null, days: topPackagesDays }
}

/** Totals over the last 30 days, and the queue now. */
export const summary = (events: ReadonlyArray<AsuEventRow>, now: Date, queueLength: number) => {
  const since = now.getTime() - perDayCount * dayMs
  const count = (event: AsuEventRow["event"]) =>
    events.filter((e) => e.event === event && Date.parse(e.at) >= since).length
  return {
    days: perDayCount,
    requests: count("requests"),
    cache_hits: count("cache-hits"),
    failures: count("failures"),
    queue_length: queueLength,
  }
}

/**
 * `/api/v1/build-errors`: the latest failures as plain text, one line each (time, version, target,
 * profile, the error's first line), under upstream's header.
 */
export const buildErrors = (events: ReadonlyArray<AsuEventRow>, n: number): string => {
  const lines = events
    .filter((e) => e.event === "failures")
    .map((e) => {
      const detail = (e.detail ?? "").split("\n")[0]?.trim() ?? ""
      return `${e.at} ${e.version} ${e.target} ${e.profile}: ${detail}`
    })
  if (lines.length === 0) return "No error logs found."
  const span = `${lines[0]?.split(" ")[0]} - ${lines[lines.length - 1]?.split(" ")[0]}`
  return `Total errors logged: ${lines.length} (showing ${n} most recent)\nTime period: ${span}\n\n${lines
    .slice(-n)
    .join("\n")}`
}
