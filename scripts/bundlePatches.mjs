// Start-up work of dependencies that the bundle does at build time instead: each patch names the exact text
// it replaces, and the build fails when a new version of the dependency no longer has it (look at it again
// then). tests/scripts/bundlePatches.unit.test.ts checks them against the installed packages.
import { readFileSync } from "node:fs"

/**
 * effect's Utils.js decides at load time whether V8 keeps a function's name in stack traces by reading
 * `new Error().stack`; formatting that stack makes V8 find the line ends of the whole 1.4 MB bundle (~16 M
 * instructions at every start). On Node (V8) the answer is always yes.
 */
export const effectStackProbe = {
  name: "effect-utils-stack-probe",
  file: /[\\/]effect[\\/]dist[\\/]esm[\\/]Utils\.js$/,
  text: 'standard.effect_internal_function(() => new Error().stack)?.includes("effect_internal_function") === true',
  replacement: "true",
}

/**
 * What `Doc.render(Doc.beep, { style: "pretty" })` of @effect/printer-ansi renders: the terminal bell between
 * two style resets.
 */
export const renderedBeep = "\u001b[0m\u0007\u001b[0m"

/**
 * @effect/cli's prompt modules (loaded with its options, used only by `--wizard`) each render the bell at
 * load time; the first render runs the printer's layout code cold (~230 page faults, ~10 M instructions).
 */
export const cliPromptBeep = {
  name: "cli-prompt-beep",
  file: /[\\/]@effect[\\/]cli[\\/]dist[\\/]esm[\\/]internal[\\/]prompt[\\/][a-z-]+\.js$/,
  text: 'Doc.render(Doc.beep, {\n  style: "pretty"\n})',
  replacement: JSON.stringify(renderedBeep),
  /** Only the prompt modules that render the bell at all (the others are left as they are). */
  optional: (source) => !source.includes("Doc.beep"),
}

export const dependencyPatches = [effectStackProbe, cliPromptBeep]

/** The patches as an esbuild plugin. */
export const dependencyPatchesPlugin = {
  name: "dependency-patches",
  setup(build) {
    for (const patch of dependencyPatches) {
      build.onLoad({ filter: patch.file }, (args) => {
        const source = readFileSync(args.path, "utf8")
        if (!source.includes(patch.text)) {
          if (patch.optional?.(source)) return undefined
          throw new Error(
            `${args.path}: ${patch.name}: the patched text changed; see scripts/bundlePatches.mjs`,
          )
        }
        return { contents: source.replace(patch.text, patch.replacement), loader: "js" }
      })
    }
  },
}
