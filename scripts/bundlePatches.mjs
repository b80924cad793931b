// Start-up work of dependencies that the bundle does at build time, or more cheaply, instead: each patch
// names the exact text it replaces, and the build fails when a new version of the dependency no longer has
// it (look at it again then). tests/scripts/bundlePatches.unit.test.ts checks them against the installed
// packages, and that what they patch behaves as before.
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

/*
 * effect's Schema makes a class for every schema a module defines (each `.pipe`, `.annotations`, field):
 * `make(ast)` a class with eight static members, and each kind of schema (a refinement, a struct, a
 * literal, …) a subclass of it with its own. Adding properties to a class is dear in V8: each class has a
 * map of its own, so every static field makes a new one (a noop realize makes ~600 schemas: ~10 ms and
 * ~300 page faults). The patched `make` keeps what is the same for every schema (the type id, `pipe`,
 * `annotations`, the type-level `Type`/`Encoded`/`Context`) on one base class the schema classes extend,
 * with only `ast` and `toString` their own; and each kind extends that base directly instead of a class
 * `make` made for it. Every schema has the same members with the same values; only which class of its
 * prototype chain holds each differs, and so a class's own keys (`Object.keys` of a literal schema is
 * `["ast", "literals"]`, was `["literals"]`), which nothing in effect, @effect/* or owrt reads. The test
 * pins exactly that difference and compares everything else a program sees.
 */
const schemaMake = `export function make(ast) {
  return class SchemaClass {
    [TypeId] = variance;
    static ast = ast;
    static annotations(annotations) {
      return make(mergeSchemaAnnotations(this.ast, annotations));
    }
    static pipe() {
      return pipeArguments(this, arguments);
    }
    static toString() {
      return String(ast);
    }
    static Type;
    static Encoded;
    static Context;
    static [TypeId] = variance;
  };
}
const variance = {
  /* c8 ignore next */
  _A: _ => _,
  /* c8 ignore next */
  _I: _ => _,
  /* c8 ignore next */
  _R: _ => _
};`
/** Its own members of a schema class (the rest are the base's). */
const ownSchemaMembers = `
    static ast = ast;
    static toString() {
      return String(ast);
    }`
const schemaFile = /[\\/]effect[\\/]dist[\\/]esm[\\/]Schema\.js$/

export const schemaClassBase = {
  name: "schema-class-base",
  file: schemaFile,
  text: schemaMake,
  // The base follows `variance`, which its static members read when the module defines it.
  replacement: `export function make(ast) {
  return class SchemaClass extends SchemaClassBase {${ownSchemaMembers}
  };
}
const variance = {
  _A: _ => _,
  _I: _ => _,
  _R: _ => _
};
class SchemaClassBase {
  [TypeId] = variance;
  static annotations(annotations) {
    return make(mergeSchemaAnnotations(this.ast, annotations));
  }
  static pipe() {
    return pipeArguments(this, arguments);
  }
  static Type;
  static Encoded;
  static Context;
  static [TypeId] = variance;
}`,
}

/** Each kind of schema (`class LiteralClass extends make(ast) {`, …) extends the base directly. */
export const schemaKindClasses = {
  name: "schema-kind-classes",
  file: schemaFile,
  text: "extends make(ast) {",
  replacement: `extends SchemaClassBase {${ownSchemaMembers}`,
  all: true,
}

/**
 * xxhash-wasm compiles its 3 KB WebAssembly module with `WebAssembly.instantiate`, which hands the work to
 * V8's background threads and resumes a promise afterwards: ~4 ms of a noop realize (node keys). Compiled
 * on the spot (`new WebAssembly.Module`) it takes ~1 ms; `xxhash()` still returns a promise.
 */
export const xxhashCompile = {
  name: "xxhash-compile",
  file: /[\\/]xxhash-wasm[\\/]esm[\\/]xxhash-wasm\.js$/,
  text: "(await WebAssembly.instantiate(t)).instance",
  replacement: "new WebAssembly.Instance(new WebAssembly.Module(t))",
}

export const dependencyPatches = [
  effectStackProbe,
  cliPromptBeep,
  schemaClassBase,
  schemaKindClasses,
  xxhashCompile,
]

/**
 * A dependency's file as the bundle has it: with every patch for it applied. Throws when a patch's text
 * is not there (the dependency changed).
 */
export const applyDependencyPatches = (path, source, applied = new Set()) => {
  let patched = source
  for (const patch of dependencyPatches) {
    if (!patch.file.test(path)) continue
    if (!patched.includes(patch.text)) {
      if (patch.optional?.(patched)) continue
      throw new Error(`${path}: ${patch.name}: the patched text changed; see scripts/bundlePatches.mjs`)
    }
    // A function, so that `$&` and the like in a replacement stay as they are.
    patched = patch.all
      ? patched.replaceAll(patch.text, () => patch.replacement)
      : patched.replace(patch.text, () => patch.replacement)
    applied.add(patch.name)
  }
  return patched
}

/**
 * The patches as an esbuild plugin. With `everyPatch` (a bundle of every module, dist/owrt.cjs), a build in
 * which a patch was not applied at all fails too: its file moved, or the bundle resolved another build of
 * the package (CommonJS instead of ESM). A command module's bundle may leave out a patched package.
 */
export const dependencyPatchesPlugin = ({ everyPatch }) => ({
  name: "dependency-patches",
  setup(build) {
    const files = new RegExp(dependencyPatches.map((patch) => patch.file.source).join("|"))
    const applied = new Set()
    build.onStart(() => applied.clear())
    build.onLoad({ filter: files }, (args) => ({
      contents: applyDependencyPatches(args.path, readFileSync(args.path, "utf8"), applied),
      loader: "js",
    }))
    build.onEnd((result) => {
      if (result.errors.length > 0 || !everyPatch) return
      const missed = dependencyPatches.filter((patch) => !applied.has(patch.name))
      if (missed.length > 0)
        return {
          errors: missed.map((patch) => ({
            text: `${patch.name}: no file matched ${patch.file}; see scripts/bundlePatches.mjs`,
          })),
        }
    })
  },
})
