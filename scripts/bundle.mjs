// Bundles the CLI into dist/owrt.cjs and a bundle per command module (one file starts much faster than
// hundreds of modules) and warms the V8 code cache that bin/owrt.cjs loads dist/owrt.cjs with.
import { execFileSync } from "node:child_process"
import { mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, unlinkSync, writeFileSync } from "node:fs"
import Module from "node:module"
import { availableParallelism, tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { build } from "esbuild"
import { barrelImports } from "./barrelImports.mjs"
import { dependencyPatchesPlugin } from "./bundlePatches.mjs"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const outfile = join(root, "dist", "owrt.cjs")

/** better-sqlite3 finds its addon through scripts/sqliteAddon.cjs, which asks `bindings` only as a fallback. */
const addonLoader = join(root, "scripts", "sqliteAddon.cjs")
const sqliteAddon = {
  name: "sqlite-addon",
  setup(build) {
    build.onResolve({ filter: /^bindings$/ }, (args) =>
      args.importer === addonLoader ? { path: "bindings", external: true } : { path: addonLoader },
    )
  },
}

/*
 * PostgreSQL's client (pg, and the pg-cursor and pg-connection-string that @effect/sql-pg uses) is bundled
 * on its own, into dist/pg.cjs: only the commands that use PostgreSQL (a records database, the build farm)
 * load it, and one file loads in a fraction of the time of pg's few dozen modules from node_modules. The
 * main bundle reaches it through the shims below.
 */
/** What both bundles are: one minified CommonJS file for Node 20. */
const nodeBundle = {
  bundle: true,
  platform: "node",
  format: "cjs",
  target: "node20",
  minify: true,
  legalComments: "none",
}
const pgPackages = { pg: "pg", "pg-cursor": "Cursor", "pg-connection-string": "connectionString" }
await build({
  stdin: {
    contents: Object.entries(pgPackages)
      .map(([name, as]) => `exports[${JSON.stringify(as)}] = require(${JSON.stringify(name)})`)
      .join("\n"),
    resolveDir: root,
    loader: "js",
  },
  outfile: join(root, "dist", "pg.cjs"),
  ...nodeBundle,
  // pg's optional native binding, and its Cloudflare sockets (an optional dependency, for Workers only).
  external: ["pg-native", "pg-cloudflare"],
  logLevel: "warning",
})
const pgShims = {
  name: "pg-shims",
  setup(build) {
    build.onResolve({ filter: /^(pg|pg-cursor|pg-connection-string)$/ }, (args) => ({
      path: args.path,
      namespace: "owrt-pg",
    }))
    build.onResolve({ filter: /^\.\/pg\.cjs$/, namespace: "owrt-pg" }, () => ({
      path: "./pg.cjs",
      external: true,
    }))
    build.onLoad({ filter: /.*/, namespace: "owrt-pg" }, (args) => ({
      contents: `module.exports = require("./pg.cjs")[${JSON.stringify(pgPackages[args.path])}]`,
      loader: "js",
    }))
  },
}

/*
 * The command line's bundle: dist/owrt.cjs holds every command (help, a mistyped name and `--version` run
 * it), and each module of src/cli/commands/ has a bundle of its own, dist/owrt.<module>.cjs, in which
 * src/cli/main.ts's loaders of the other modules are a stub. A command's run reads and deserializes only
 * what it can run: the bundle's top-level scope lists every module's bindings, which a noop realize paid
 * for at every start (a third fewer bytes to read, ~300 page faults fewer).
 */
const mainModule = join(root, "src", "cli", "main.ts")
const commandsDir = join(root, "src", "cli", "commands")
/** `realizeCommand` → `realize`, `farmCommands` → `farm`: bin/owrt.cjs's names of the bundles. */
const commandModules = readdirSync(commandsDir)
  .filter((name) => /^\w+Commands?\.ts$/.test(name))
  .map((name) => ({ module: name.slice(0, -".ts".length), bundle: name.replace(/Commands?\.ts$/, "") }))
const oneCommandModule = (keep) => ({
  name: "owrt-one-command-module",
  setup(build) {
    const stubbed = new Set()
    build.onStart(() => stubbed.clear())
    build.onResolve({ filter: /^\.\/commands\/\w+\.js$/ }, (args) => {
      const module = args.path.slice("./commands/".length, -".js".length)
      if (args.importer !== mainModule || module === keep) return undefined
      stubbed.add(module)
      return { path: module, namespace: "owrt-other-command" }
    })
    // src/cli/main.ts loads each command module with `import("./commands/<module>.js")`; written otherwise,
    // every bundle would hold every command.
    build.onEnd((result) => {
      if (result.errors.length > 0 || stubbed.size === commandModules.length - 1) return
      return {
        errors: [
          {
            text: `src/cli/main.ts imports ${stubbed.size} other command modules than ${keep}, not ${commandModules.length - 1}`,
          },
        ],
      }
    })
    build.onLoad({ filter: /.*/, namespace: "owrt-other-command" }, (args) => ({
      contents: `throw new Error(${JSON.stringify(`this bundle holds src/cli/commands/${keep}.ts only, not ${args.path}`)})`,
      loader: "js",
    }))
  },
})
const cliBundle = (plugins, everyPatch) => ({
  entryPoints: [join(root, "src", "cli", "entry.ts")],
  ...nodeBundle,
  // Binary-shipping packages load from node_modules at run time, and so does the MCP SDK (with its zod and
  // ajv): only `owrt mcp` needs it, and every other command would pay for its size at startup.
  // better-sqlite3's JavaScript is bundled (a dozen modules fewer to load), its native addon is not (see
  // scripts/sqliteAddon.cjs).
  // The OTA server's MQTT client and metrics library likewise (only `owrt publish` and `owrt ota` load them;
  // bundled, they made every command's bundle half a megabyte larger), and the build farm's
  // graphile-worker (only `owrt worker`/`workers`/`jobs` and a realize with a postgres executor load it).
  // pg is in dist/pg.cjs (above).
  external: [
    "esbuild",
    "@modelcontextprotocol/sdk",
    "better-sqlite3/package.json",
    "mqtt",
    "prom-client",
    "graphile-worker",
  ],
  // effect's Schema imports fast-check for Arbitrary.make only, which owrt never calls (see the stub).
  alias: { "fast-check": join(root, "scripts", "no-fast-check.mjs") },
  // `import { Effect } from "effect"` as `import * as Effect from "effect/Effect"`: tree-shaken (see there).
  plugins: [...plugins, barrelImports(root), sqliteAddon, pgShims, dependencyPatchesPlugin({ everyPatch })],
  define: { "import.meta.url": "__owrtImportMetaUrl" },
  banner: { js: 'const __owrtImportMetaUrl=require("node:url").pathToFileURL(__filename).href;' },
  logLevel: "warning",
  // ASCII only (esbuild escapes strings, but not what is inside a regular expression literal): bin/owrt.cjs
  // reads the bundle as latin1, several times faster than decoding UTF-8, which is the same for ASCII.
  charset: "ascii",
  write: false,
})
/*
 * Built as many at a time as there are cores: each build keeps the cores busy, and sixteen at once took half
 * as long again as one after the other (~0.6 s each on two cores). The first failure ends the build.
 */
const builds = [
  () => build(cliBundle([], true)),
  ...commandModules.map(
    ({ module }) =>
      () =>
        build(cliBundle([oneCommandModule(module)], false)),
  ),
]
const results = new Array(builds.length)
let next = 0
let failed = false
await Promise.all(
  Array.from({ length: availableParallelism() }, async () => {
    while (next < builds.length && !failed) {
      const i = next++
      try {
        results[i] = await builds[i]()
      } catch (error) {
        failed = true
        throw error
      }
    }
  }),
)
/** A bundle's text, checked and stored wrapped as Node wraps a CommonJS module (Module.wrap). */
const wrapped = (name, result) => {
  const bundled = Buffer.from(result.outputFiles[0].contents)
  const nonAscii = bundled.findIndex((byte) => byte > 0x7f)
  if (nonAscii !== -1) {
    throw new Error(
      `dist/${name} is not ASCII at offset ${nonAscii}: escape the character in the source (\\uXXXX)`,
    )
  }
  // bin/owrt.cjs compiles the file's text as it is, instead of concatenating the wrapper around a megabyte
  // at every start (a copy V8 then flattens).
  return Module.wrap(bundled.toString("latin1"))
}
// Every bundle checked before anything in dist/ changes.
const [whole, ...perModule] = results.map((result, i) =>
  wrapped(i === 0 ? "owrt.cjs" : `owrt.${commandModules[i - 1].bundle}.cjs`, result),
)
const dist = dirname(outfile)
/** Replaces a file whole: a command starting meanwhile reads the old bundle or the new one. */
const writeWhole = (file, text) => {
  const temporary = `${file}.${process.pid}.tmp`
  writeFileSync(temporary, text, "latin1")
  renameSync(temporary, file)
}
// What an earlier build left: the bundles of command modules (one may be gone), every code cache
// (bin/owrt.cjs), which belongs to the bundle it was made from.
for (const name of readdirSync(dist)) {
  if (/^owrt\.\w+\.cjs$/.test(name) || /\.v8cache(\.long)?$/.test(name)) unlinkSync(join(dist, name))
}
writeWhole(outfile, whole)
// The warm-up makes `profiles list`'s cache now; each other command's is made by its first run.
const scratch = mkdtempSync(join(tmpdir(), "owrt-warm-"))
mkdirSync(join(scratch, "profiles", "files", "etc"), { recursive: true })
writeFileSync(join(scratch, "profiles", "files", "etc", "motd"), "hello\n")
writeFileSync(
  join(scratch, "profiles", "warm.yaml"),
  [
    'release: "23.05.5"',
    "target: ath79/generic",
    "device: tplink_archer-c7-v5",
    "packages: [luci, -ppp]",
    "overlay: files",
    "files: [{path: /etc/banner, content: hi}]",
    "first_boot: [{name: 10-x, script: 'true'}]",
    "tags: [warm]",
    "",
  ].join("\n"),
)
try {
  execFileSync(
    process.execPath,
    [join(root, "bin", "owrt.cjs"), "profiles", "list", "--json", "--store", join(scratch, "store")],
    {
      cwd: scratch,
      stdio: "ignore",
      // Never provisional however loaded the machine (bin/owrt.cjs): read-only installs start with this one.
      env: { ...process.env, OWRT_CODE_CACHE_LONG_MS: "3600000" },
    },
  )
} finally {
  rmSync(scratch, { recursive: true, force: true })
}
// Written after the warm-up, which ran `profiles list` from dist/owrt.cjs for that cache.
for (const [i, { bundle }] of commandModules.entries())
  writeWhole(join(dist, `owrt.${bundle}.cjs`), perModule[i])
// Meanwhile a command that ran from dist/owrt.cjs may have saved a cache of it, which only a missing module
// bundle would use.
for (const name of readdirSync(dist)) {
  const match = /^owrt\.cjs\.(\w+)\.v8cache(\.long)?$/.exec(name)
  if (match && match[1] !== "profiles" && match[1] !== "version") rmSync(join(dist, name), { force: true })
}
