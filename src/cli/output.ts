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
