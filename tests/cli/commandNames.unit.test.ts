import { readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { commandNames } from "../../src/cli/commandNames.js"
import { commandShape } from "../../src/cli/commandTree.js"
import { loadCommand } from "../../src/cli/main.js"

const launcher = readFileSync(join(import.meta.dirname, "..", "..", "bin", "owrt.cjs"), "utf8")

describe("command names", () => {
  it("are the ones bin/owrt.cjs keeps a code cache for", () => {
    const listed = /const commands = new Set\(\[([^\]]*)\]\)/.exec(launcher)?.[1] ?? ""
    const names = [...listed.matchAll(/"([a-z-]+)"/g)].map((m) => m[1])
    expect(names).toEqual([...commandNames])
  })

  it("each load the command of that name", async () => {
    for (const name of commandNames) {
      const command = await loadCommand[name]()
      expect(commandShape(command.descriptor).path.trim()).toBe(name)
    }
  })
})
