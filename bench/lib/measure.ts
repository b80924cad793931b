import { spawnSync } from "node:child_process"

export interface Subject {
  readonly name: string
  readonly command: string
  readonly args: ReadonlyArray<string>
  readonly cwd?: string
  readonly env?: Record<string, string>
}

export interface Timing {
  readonly name: string
  readonly medianMs: number
  readonly minMs: number
  readonly samples: ReadonlyArray<number>
}

export const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? (sorted[middle] ?? 0) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2
}

/**
 * Times subjects in the same run, interleaved round by round, so that machine noise (another process, a
 * CPU frequency change) falls on all of them alike. One untimed warm-up run each first.
 */
export const measure = (subjects: ReadonlyArray<Subject>, rounds: number): ReadonlyArray<Timing> => {
  const samples = subjects.map(() => [] as Array<number>)
  const runOnce = (subject: Subject) => {
    const started = process.hrtime.bigint()
    const result = spawnSync(subject.command, subject.args as Array<string>, {
      cwd: subject.cwd,
      env: { ...process.env, ...subject.env },
      stdio: ["ignore", "ignore", "pipe"],
    })
    const elapsed = Number(process.hrtime.bigint() - started) / 1e6
    if (result.status !== 0) {
      throw new Error(`${subject.name} exited ${result.status}: ${result.stderr?.toString() ?? ""}`)
    }
    return elapsed
  }
  for (const subject of subjects) runOnce(subject)
  for (let round = 0; round < rounds; round++) {
    subjects.forEach((subject, i) => {
      samples[i]?.push(runOnce(subject))
    })
  }
  return subjects.map((subject, i) => ({
    name: subject.name,
    medianMs: median(samples[i] ?? []),
    minMs: Math.min(...(samples[i] ?? [])),
    samples: samples[i] ?? [],
  }))
}

/** Prints timings and each one's ratio to the baseline (the first subject). */
export const report = (
  title: string,
  timings: ReadonlyArray<Timing>,
  targets: Record<string, number> = {},
) => {
  const baseline = timings[0]
  if (!baseline) return
  console.log(`\n${title}`)
  console.log(
    `${"subject".padEnd(42)} ${"median".padStart(9)} ${"min".padStart(9)} ${"ratio".padStart(7)}  target`,
  )
  for (const t of timings) {
    const ratio = t.medianMs / baseline.medianMs
    const target = targets[t.name]
    const verdict = target === undefined ? "" : `≤ ${target}×  ${ratio <= target ? "met" : "MISSED"}`
    console.log(
      `${t.name.padEnd(42)} ${`${t.medianMs.toFixed(1)}ms`.padStart(9)} ${`${t.minMs.toFixed(1)}ms`.padStart(9)} ${`${ratio.toFixed(2)}×`.padStart(7)}  ${verdict}`,
    )
  }
}
