#!/usr/bin/env node
"use strict"
/*
 * Starts the bundled CLI through V8's code cache: compiling the ~1 MB bundle is most of a cold start, and
 * a cache made by an earlier run skips it. A missing or rejected cache (new Node) is written on exit; a
 * build deletes them all (scripts/bundle.mjs); a read-only install runs with the one the build made.
 *
 * A command runs from the bundle of its module in src/cli/commands/ (dist/owrt.<module>.cjs: realize,
 * farm for worker/workers/jobs, …), which holds no other command, and each command has a cache of its own
 * (dist/owrt.<module>.cjs.<command>.v8cache): a cache holds the functions the run that wrote it compiled,
 * and what `realize` runs (the graph, the store) is not what `profiles list` or `serve` runs; with another
 * command's cache, a noop realize spent ~11 ms compiling its own functions. The names are
 * src/cli/commandNames.ts's (a test checks that they and their modules agree). The rest runs from
 * dist/owrt.cjs, which holds every command: `owrt --version` alone, which loads no command
 * (src/cli/main.ts), with dist/owrt.cjs.version.v8cache; anything else (help, a mistyped name, which load
 * every command) with dist/owrt.cjs.v8cache, which only a mistyped name saves (help saves no cache).
 */
const fs = require("node:fs")
const path = require("node:path")
const vm = require("node:vm")
const Module = require("node:module")

const dist = path.join(__dirname, "..", "dist")
/** Every command, and its module's bundle (dist/owrt.<module>.cjs, scripts/bundle.mjs). */
const commands = new Map([
  ["realize", "realize"],
  ["plan", "plan"],
  ["audit", "audit"],
  ["diff", "diff"],
  ["profiles", "profiles"],
  ["builders", "builders"],
  ["builds", "builds"],
  ["store", "store"],
  ["cache", "cache"],
  ["publish", "ota"],
  ["ota", "ota"],
  ["flash", "flash"],
  ["config", "config"],
  ["mcp", "mcp"],
  ["serve", "serve"],
  ["worker", "farm"],
  ["workers", "farm"],
  ["jobs", "farm"],
])
const command = process.argv[2]
/** Commands that run until stopped: servers and the farm's worker. */
const server =
  command === "serve" ||
  command === "mcp" ||
  command === "worker" ||
  (command === "ota" && process.argv[3] === "serve")
const whole = path.join(dist, "owrt.cjs")
/** A run without Node or V8 flags (--cpu-prof, --max-lazy, …, on the command line or in NODE_OPTIONS). */
const plain = process.execArgv.length === 0 && !process.env.NODE_OPTIONS
// A run under flags may compile otherwise: it writes no cache, so the next plain run writes one as plain
// runs use it. Nor does a run that only shows help.
const maySave = plain && !process.argv.includes("--help") && !process.argv.includes("-h")
/** An open file and what it is (`fstat`), or `undefined` when it cannot be opened. */
const openFile = (file) => {
  try {
    const fd = fs.openSync(file, "r")
    const stat = fs.fstatSync(fd)
    return { fd, size: stat.size, ino: stat.ino, mtimeMs: stat.mtimeMs }
  } catch {
    return undefined
  }
}
/*
 * A command runs from its module's bundle, which holds no other command (scripts/bundle.mjs), and anything
 * else (help, a mistyped name, `--version`) from dist/owrt.cjs, which holds them all; so does a command
 * whose bundle is missing (the build's warm-up runs before it writes them).
 */
/** dist/owrt.cjs, open; or the run ends saying what to do. */
const openWhole = () => {
  const file = openFile(whole)
  if (file !== undefined) return file
  process.stderr.write(
    "owrt: dist/owrt.cjs is missing: run `npm install` (or `npm run build`) in the owrt checkout\n",
  )
  // ExitCode.internal of src/errors.ts, which lives in the very bundle that is missing.
  process.exit(70)
}
const moduleBundle = commands.get(command)
let bundle = moduleBundle === undefined ? whole : path.join(dist, `owrt.${moduleBundle}.cjs`)
let bundleFile = bundle === whole ? undefined : openFile(bundle)
if (bundleFile === undefined) {
  bundle = whole
  bundleFile = openWhole()
}
const cacheFile =
  moduleBundle !== undefined
    ? `${bundle}.${command}.v8cache`
    : command === "--version" && process.argv.length === 3
      ? `${whole}.version.v8cache`
      : `${whole}.v8cache`
let own = true
// No cache is near Buffer's limit; one that is could not be read into the buffer (and is not used).
const usable = (file) => (file !== undefined && file.size < 1 << 30 ? file : undefined)
let cacheFileOpen = usable(openFile(cacheFile))
if (cacheFileOpen === undefined) {
  // The command's first run compiles without a cache and saves exactly what it ran: started from another
  // command's cache, it would save that cache's functions too, and each later start would read them in
  // for nothing (a noop realize: ~200 page faults and 1.8 → 2.1 MB of cache). Where it cannot save one
  // (dist/ read-only, a run under flags, help), it runs from dist/owrt.cjs with the cache the build's
  // warm-up made of it, which holds most of what any command runs; without that cache (or dist/owrt.cjs),
  // from the bundle it has, without a cache.
  let writable = false
  try {
    fs.accessSync(dist, fs.constants.W_OK)
    writable = maySave
  } catch {}
  if (!writable) {
    own = false
    const warmCache = usable(openFile(`${whole}.profiles.v8cache`))
    const wholeFile = bundle !== whole && warmCache !== undefined ? openFile(whole) : undefined
    if (wholeFile !== undefined) {
      fs.closeSync(bundleFile.fd)
      bundle = whole
      bundleFile = wholeFile
    }
    if (bundle === whole) cacheFileOpen = warmCache
    else if (warmCache !== undefined) fs.closeSync(warmCache.fd)
  }
}
/** The bundle as the checkout names it, for messages. */
const bundleName = `dist/${path.basename(bundle)}`
/*
 * The bundle and then its cache are read into one buffer (the bundle's text is copied out into a string
 * before the cache is read over it): each page of new memory costs a page fault (~12 µs on a virtual
 * machine), and a buffer for each file touched ~350 pages more at every start.
 */
const readAll = (file, buffer) => {
  let done = 0
  while (done < file.size) {
    const read = fs.readSync(file.fd, buffer, done, file.size - done, done)
    if (read === 0) break
    done += read
  }
  fs.closeSync(file.fd)
  return done
}
let buffer = Buffer.allocUnsafeSlow(Math.max(bundleFile.size, cacheFileOpen?.size ?? 0))
let source
try {
  // The bundle is ASCII (scripts/bundle.mjs checks): latin1 reads it as it is, without decoding UTF-8.
  source = buffer.toString("latin1", 0, readAll(bundleFile, buffer))
} catch (error) {
  process.stderr.write(`owrt: ${bundleName} cannot be read: ${error?.message ?? error}\n`)
  process.exit(70)
}
if (!source.startsWith("(function (exports, require, module, __filename, __dirname) { ")) {
  process.stderr.write(
    `owrt: ${bundleName} is from an older build: run \`npm run build\` in the owrt checkout\n`,
  )
  process.exit(70)
}
let cachedData
if (cacheFileOpen !== undefined) {
  try {
    cachedData = buffer.subarray(0, readAll(cacheFileOpen, buffer))
  } catch {}
}
const hadCache = cachedData !== undefined
// The bundle is stored wrapped as a CommonJS module already (scripts/bundle.mjs).
const script = new vm.Script(source, { filename: bundle, cachedData })
// V8 has what it needs of both: the buffer may go.
buffer = undefined
cachedData = undefined
const compiledAt = performance.now()
/*
 * A cache holds what the run that made it compiled: made by a run that did long work (a realize that built),
 * it holds that work's functions too, which every quick run of the command would then read in for nothing (a
 * noop realize: ~200 page faults). Such a cache is marked provisional: commands whose runs are all long keep
 * using it, and the first quick run that starts from it drops it, so that the next run makes a lean one.
 * Servers' caches are never provisional (their runs are all long).
 */
const provisionalMark = `${cacheFile}.long`
const provisional = own && hadCache && !server && fs.existsSync(provisionalMark)
// A second, or OWRT_CODE_CACHE_LONG_MS (for tests).
const longMs = Number(process.env.OWRT_CODE_CACHE_LONG_MS || 1_000)
const longRun = () => !server && performance.now() - compiledAt > longMs

/*
 * A command's start-up heap is mostly what loading the bundle makes, and it lives to the end: V8 sees most
 * young objects survive and doubles the young generation (to 2 × 4 MB), every page of it new memory. Where a
 * page fault is dear (a noop realize took ~8,800 of them, ~1,100 for that growth alone, on a virtual machine
 * that pays ~12 µs each), keeping it at its starting size for the first second costs a few more young
 * collections and saves more; then V8's default applies again (a build, a server). Flags are set at run
 * time, as a launcher cannot pass them: this one is read when the young generation would grow, after the
 * bundle's code cache was checked, on the V8 it was measured on (Node 20's 11.x). V8 and Node's own code
 * caches record the flags they were made under: a built-in module loaded with `require` in that second is
 * loaded under the default flags, and the bundle's cache is made under them at exit. (Node's own lazy loads
 * of its internals are not covered; they compile without Node's cache.)
 */
const v8 = require("node:v8")
const youngGeneration = (() => {
  const tune = !server && plain && process.versions.v8.startsWith("11.")
  // V8's default factor (11.x); `fixed` keeps the young generation at its starting size.
  const grow = () => v8.setFlagsFromString("--semi-space-growth-factor=2")
  const fixed = () => v8.setFlagsFromString("--semi-space-growth-factor=1")
  const plainRequire = Module.prototype.require
  const loaded = new Set()
  let tuned = false
  const restore = () => {
    if (!tuned) return
    tuned = false
    Module.prototype.require = plainRequire
    grow()
  }
  return {
    start() {
      if (!tune) return
      process.stdout
      process.stderr
      performance.now()
      // Every `require` (the bundle's, createRequire's, a package's) is this method of a module.
      Module.prototype.require = function (id) {
        if (loaded.has(id) || !Module.isBuiltin(id)) return plainRequire.call(this, id)
        loaded.add(id)
        grow()
        try {
          return plainRequire.call(this, id)
        } finally {
          if (tuned) fixed()
        }
      }
      fixed()
      tuned = true
      setTimeout(restore, 1_000).unref()
    },
    restore,
  }
})()
if (own && (!hadCache || script.cachedDataRejected) && maySave) {
  // V8 checks a cache against its source's length only: a cache made from this bundle must not be written
  // after a build replaced it (a long-running `owrt serve` ending after `npm run build`). `bundleFile` is
  // the bundle as it was read.
  process.once("exit", () => {
    try {
      const now = fs.statSync(bundle)
      if (now.ino !== bundleFile.ino || now.mtimeMs !== bundleFile.mtimeMs || now.size !== bundleFile.size)
        return
      const temporary = `${cacheFile}.${process.pid}.tmp`
      // A cache records the V8 flags it was made under: make it under the default ones it is checked with.
      youngGeneration.restore()
      fs.writeFileSync(temporary, script.createCachedData())
      if (longRun()) fs.writeFileSync(provisionalMark, "")
      else fs.rmSync(provisionalMark, { force: true })
      fs.renameSync(temporary, cacheFile)
    } catch {}
  })
} else if (provisional && !script.cachedDataRejected && maySave) {
  process.once("exit", () => {
    if (longRun()) return
    try {
      fs.rmSync(cacheFile, { force: true })
      fs.rmSync(provisionalMark, { force: true })
    } catch {}
  })
}
const bundleModule = new Module(bundle, module)
bundleModule.filename = bundle
bundleModule.paths = Module._nodeModulePaths(path.dirname(bundle))
youngGeneration.start()
script.runInThisContext()(
  bundleModule.exports,
  Module.createRequire(bundle),
  bundleModule,
  bundle,
  path.dirname(bundle),
)
