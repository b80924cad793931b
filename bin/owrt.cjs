#!/usr/bin/env node
"use strict"
/*
 * Starts the bundled CLI through V8's code cache: compiling the ~1 MB bundle is most of a cold start, and
 * a cache made by an earlier run skips it. A missing or rejected cache (new Node) is written on exit; a
 * build deletes them all (scripts/bundle.mjs); a read-only install runs with the one the build made.
 *
 * Each command has a cache of its own (dist/owrt.cjs.<command>.v8cache): a cache holds the functions the
 * run that wrote it compiled, and what `realize` runs (the graph, the store) is not what `profiles list`
 * or `serve` runs; with another command's cache, a noop realize spent ~11 ms compiling its own functions.
 * The names are src/cli/commandNames.ts's (a test checks that they agree); anything else (`--version`, a
 * mistyped name) shares dist/owrt.cjs.v8cache.
 */
const fs = require("node:fs")
const path = require("node:path")
const vm = require("node:vm")
const Module = require("node:module")

const bundle = path.join(__dirname, "..", "dist", "owrt.cjs")
let source
try {
  // The bundle is ASCII (scripts/bundle.mjs checks): latin1 reads it as it is, without decoding UTF-8.
  source = fs.readFileSync(bundle, "latin1")
} catch {
  process.stderr.write(
    "owrt: dist/owrt.cjs is missing: run `npm install` (or `npm run build`) in the owrt checkout\n",
  )
  // ExitCode.internal of src/errors.ts, which lives in the very bundle that is missing.
  process.exit(70)
}
if (!source.startsWith("(function (exports, require, module, __filename, __dirname) { ")) {
  process.stderr.write(
    "owrt: dist/owrt.cjs is from an older build: run `npm run build` in the owrt checkout\n",
  )
  process.exit(70)
}
const commands = new Set([
  "realize",
  "plan",
  "audit",
  "diff",
  "profiles",
  "builders",
  "builds",
  "store",
  "cache",
  "publish",
  "ota",
  "flash",
  "config",
  "mcp",
  "serve",
  "worker",
  "workers",
  "jobs",
])
const command = process.argv[2]
const cacheFile = commands.has(command) ? `${bundle}.${command}.v8cache` : `${bundle}.v8cache`
// A run under Node or V8 flags (--cpu-prof, --max-lazy, …) may compile otherwise: it writes no cache, so the
// next plain run writes one as plain runs use it. Nor does a run that only shows help.
const maySave =
  process.execArgv.length === 0 && !process.argv.includes("--help") && !process.argv.includes("-h")
let cachedData
let own = true
try {
  cachedData = fs.readFileSync(cacheFile)
} catch {
  // The command's first run compiles without a cache and saves exactly what it ran: started from another
  // command's cache, it would save that cache's functions too, and each later start would read them in
  // for nothing (a noop realize: ~200 page faults and 1.8 → 2.1 MB of cache). Where it cannot save one
  // (dist/ read-only, a run under flags), the cache the build's warm-up wrote, of the same bundle, holds
  // most of what any command runs.
  let writable = false
  try {
    fs.accessSync(path.dirname(bundle), fs.constants.W_OK)
    writable = maySave
  } catch {}
  if (!writable) {
    try {
      cachedData = fs.readFileSync(`${bundle}.profiles.v8cache`)
      own = false
    } catch {}
  }
}
// The bundle is stored wrapped as a CommonJS module already (scripts/bundle.mjs).
const script = new vm.Script(source, { filename: bundle, cachedData })
if (own && (cachedData === undefined || script.cachedDataRejected) && maySave) {
  // V8 checks a cache against its source's length only: a cache made from this bundle must not be written
  // after a build replaced it (a long-running `owrt serve` ending after `npm run build`).
  const built = fs.statSync(bundle)
  process.once("exit", () => {
    try {
      const now = fs.statSync(bundle)
      if (now.ino !== built.ino || now.mtimeMs !== built.mtimeMs || now.size !== built.size) return
      const temporary = `${cacheFile}.${process.pid}.tmp`
      fs.writeFileSync(temporary, script.createCachedData())
      fs.renameSync(temporary, cacheFile)
    } catch {}
  })
}
const bundleModule = new Module(bundle, module)
bundleModule.filename = bundle
bundleModule.paths = Module._nodeModulePaths(path.dirname(bundle))
script.runInThisContext()(
  bundleModule.exports,
  Module.createRequire(bundle),
  bundleModule,
  bundle,
  path.dirname(bundle),
)
