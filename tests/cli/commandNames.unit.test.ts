import { readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { commandNames } from "../../src/cli/commandNames.js"
import { commandShape } from "../../src/cli/commandTree.js"
import { loadCommand } from "../../src/cli/main.js"

const repo = join(import.meta.dirname, "..", "..")
const launcher = readFileSync(join(repo, "bin", "owrt.cjs"), "utf8")
const main = readFileSync(join(repo, "src", "cli", "main.ts"), "utf8")

describe("command names", () => {
  it("are the ones bin/owrt.cjs starts from their module's bundle, and with a code cache of their own", () => {
    const listed = /const commands = new Map\(\[([\s\S]*?)\]\)\n/.exec(launcher)?.[1] ?? ""
    const bundles = [...listed.matchAll(/\["([a-z]+)", "([a-z]+)"\]/g)].map((m) => [m[1], m[2]])
    expect(bundles.map(([name]) => name)).toEqual([...commandNames])
    // scripts/bundle.mjs names a module's bundle after the module: realizeCommand.ts, farmCommands.ts.
    for (const [name, bundle] of bundles) {
      const module = new RegExp(`\\b${name}: \\(\\) => import\\("./commands/(\\w+)\\.js"\\)`).exec(main)?.[1]
      expect(module?.replace(/Commands?$/, ""), name).toBe(bundle)
    }
  })

  it("each load the command of that name", async () => {
    for (const name of commandNames) {
      const command = await loadCommand[name]()
      expect(commandShape(command.descriptor).path.trim()).toBe(name)
    }
  })
})
