// Stands in for the `bindings` package in the bundle (scripts/bundle.mjs). better-sqlite3's JavaScript is
// bundled, and its native addon is loaded straight from where npm built it, instead of `bindings` trying a
// dozen paths (each a failed require) after finding the package root from a stack trace. Elsewhere (a
// Debug build, another layout) `bindings` itself is asked, as better-sqlite3 would.
const { dirname, join } = require("node:path")

module.exports = (name) => {
  const root = dirname(require.resolve("better-sqlite3/package.json"))
  try {
    return require(join(root, "build", "Release", name))
  } catch (error) {
    if (error?.code !== "MODULE_NOT_FOUND") throw error
    return require("bindings")({ bindings: name, module_root: root })
  }
}
