import { Effect } from "effect"

/** Writes the command's single JSON document to stdout. */
export const printJson = (value: unknown): Effect.Effect<void> =>
  Effect.sync(() => {
    process.stdout.write(`${JSON.stringify(value, null, 2)}\n`)
  })

/** Human output: lines on stdout. */
export const printLines = (lines: ReadonlyArray<string>): Effect.Effect<void> =>
  Effect.sync(() => {
    if (lines.length > 0) process.stdout.write(`${lines.join("\n")}\n`)
  })

/** Prints `value` as JSON with `--json`, otherwise the human rendering. */
export const emit = <A>(
  json: boolean,
  value: A,
  human: (value: A) => ReadonlyArray<string>,
): Effect.Effect<void> => (json ? printJson(value) : printLines(human(value)))

/** A recorded time as human output shows every time: ISO 8601 in UTC to the second, `2026-12-04T19:02:11Z`. */
export const formatTime = (iso: string): string => {
  const time = Date.parse(iso)
  return Number.isNaN(time) ? iso : `${new Date(time).toISOString().slice(0, 19)}Z`
}

/** Left-aligned columns, for human tables. */
export const table = (rows: ReadonlyArray<ReadonlyArray<string>>): ReadonlyArray<string> => {
  const widths: Array<number> = []
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length)
    })
  }
  return rows.map((row) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd(),
  )
}
