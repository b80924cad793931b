import { execFileSync } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { pathToFileURL } from "node:url"
import * as AnsiDoc from "@effect/printer-ansi/AnsiDoc"
import { describe, expect, it } from "vitest"
import xxhash from "xxhash-wasm"
import {
  applyDependencyPatches,
  cliPromptBeep,
  effectStackProbe,
  renderedBeep,
  schemaClassBase,
  schemaKindClasses,
  xxhashCompile,
} from "../../scripts/bundlePatches.mjs"

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

  it("make effect's Schema classes on a shared base, and every schema behaves as before", () => {
    const esm = join(packageDir("effect"), "dist", "esm")
    const original = join(esm, "Schema.js")
    const source = readFileSync(original, "utf8")
    expect(source).toContain(schemaClassBase.text)
    expect(source.split(schemaKindClasses.text).length - 1).toBeGreaterThan(5)
    const patched = applyDependencyPatches(original, source)
    expect(patched).not.toContain(schemaKindClasses.text)
    // The patched module beside effect's others (links to them), as the bundle has it.
    const dir = mkdtempSync(join(tmpdir(), "owrt-schema-patch-"))
    try {
      for (const name of readdirSync(esm)) {
        if (name !== "Schema.js") symlinkSync(join(esm, name), join(dir, name))
      }
      writeFileSync(join(dir, "Schema.js"), patched)
      const probe = (schemaModule: string) =>
        JSON.parse(
          execFileSync(
            process.execPath,
            [join(import.meta.dirname, "fixtures", "schemaProbe.mjs"), pathToFileURL(schemaModule).href],
            { encoding: "utf8" },
          ),
        ) as {
          readonly chain: ReadonlyArray<string>
          readonly ownKeys: { readonly made: ReadonlyArray<string>; readonly literal: ReadonlyArray<string> }
        }
      const before = probe(original)
      const after = probe(join(dir, "Schema.js"))
      expect(before.chain).toEqual(["SchemaClass", ""])
      expect(after.chain).toEqual(["SchemaClassBase", "SchemaClassBase"])
      // What changes, and all that does: which class holds a member, so a class's own keys.
      expect(before.ownKeys).toEqual({ made: ["ast", "Type", "Encoded", "Context"], literal: ["literals"] })
      expect(after.ownKeys).toEqual({ made: ["ast"], literal: ["ast", "literals"] })
      const same = (probe: typeof before) => ({ ...probe, chain: [], ownKeys: {} })
      expect(same(after)).toEqual(same(before))
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it("compile xxhash-wasm's module on the spot, to the same hashes", async () => {
    // Its exports have no package.json: the CommonJS entry is in cjs/, beside esm/.
    const file = join(dirname(dirname(require.resolve("xxhash-wasm"))), "esm", "xxhash-wasm.js")
    const source = readFileSync(file, "utf8")
    expect(source).toContain(xxhashCompile.text)
    const dir = mkdtempSync(join(tmpdir(), "owrt-xxhash-patch-"))
    try {
      writeFileSync(join(dir, "package.json"), '{"type":"module"}')
      const patchedSource = applyDependencyPatches(file, source)
      expect(patchedSource).toContain(xxhashCompile.replacement)
      expect(patchedSource).not.toContain(xxhashCompile.text)
      writeFileSync(join(dir, "xxhash-wasm.js"), patchedSource)
      const patched = (await import(pathToFileURL(join(dir, "xxhash-wasm.js")).href)) as {
        readonly default: typeof xxhash
      }
      const [mine, theirs] = await Promise.all([patched.default(), xxhash()])
      for (const text of ["", "a", "owrt", "é".repeat(1000), JSON.stringify({ kind: "make-image", n: 1 })]) {
        expect(mine.h64ToString(text)).toBe(theirs.h64ToString(text))
        expect(mine.h32ToString(text)).toBe(theirs.h32ToString(text))
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
