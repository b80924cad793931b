import { readdirSync, readFileSync } from "node:fs"
import { join, relative } from "node:path"
import { describe, expect, it } from "vitest"

const src = join(import.meta.dirname, "..", "src")
/** Where effects may be run: the CLI's entry points. Everything else returns effects to its caller. */
const entryPoints = new Set(["cli/entry.ts", "cli/main.ts"])

const sources = (dir: string): Array<string> =>
  readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? sources(join(dir, entry.name))
      : entry.name.endsWith(".ts")
        ? [join(dir, entry.name)]
        : [],
  )

describe("library code", () => {
  it("runs no effect itself (no Effect.run*/Runtime.run* outside the CLI's entry points)", () => {
    const running = /\b(?:Effect|Runtime)\.run(?:Sync|SyncExit|Promise|PromiseExit|Fork|Callback)\b/
    const offenders = sources(src)
      .map((file) => relative(src, file))
      .filter((file) => !entryPoints.has(file))
      .filter((file) => running.test(readFileSync(join(src, file), "utf8")))
    expect(offenders).toEqual([])
  })
})
