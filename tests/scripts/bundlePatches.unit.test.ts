import { readdirSync, readFileSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import * as AnsiDoc from "@effect/printer-ansi/AnsiDoc"
import { describe, expect, it } from "vitest"
import { cliPromptBeep, effectStackProbe, renderedBeep } from "../../scripts/bundlePatches.mjs"

const require = createRequire(import.meta.url)
const packageDir = (name: string) => dirname(require.resolve(`${name}/package.json`))

describe("the bundle's patches of dependencies", () => {
  it("replace effect's stack-trace probe, which is there and which V8 answers yes", () => {
    const utils = readFileSync(join(packageDir("effect"), "dist", "esm", "Utils.js"), "utf8")
    expect(utils).toContain(effectStackProbe.text)
    const named = { effect_internal_function: (body: () => string | undefined) => body() }
    expect(named.effect_internal_function(() => new Error().stack)).toContain("effect_internal_function")
  })

  it("replace the bell @effect/cli's prompts render with what the printer renders", () => {
    expect(AnsiDoc.render(AnsiDoc.beep, { style: "pretty" })).toBe(renderedBeep)
    const prompts = join(packageDir("@effect/cli"), "dist", "esm", "internal", "prompt")
    const rendering = readdirSync(prompts)
      .map((name) => readFileSync(join(prompts, name), "utf8"))
      .filter((source) => source.includes("Doc.beep"))
    expect(rendering.length).toBeGreaterThan(0)
    for (const source of rendering) expect(source).toContain(cliPromptBeep.text)
  })
})
