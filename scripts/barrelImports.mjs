// An esbuild plugin for scripts/bundle.mjs: `import { Effect, Schema } from "effect"` in src/ is bundled
// as `import * as Effect from "effect/Effect"; import * as Schema from "effect/Schema"`, the same modules.
// Through the barrel, esbuild keeps every export of every module named (a namespace object with a getter
// per export, built at start-up, and each `Effect.gen` a getter call); imported directly, it keeps only
// what is used. The sources keep the usual style; only the bundle changes (a quarter smaller).
import { readFileSync } from "node:fs"
import { createRequire } from "node:module"
import { join } from "node:path"

/** Barrels whose `export * as X from "./X.js"` members are modules of their own. */
const barrels = ["effect", "@effect/sql", "@effect/sql-sqlite-node"]

export const barrelImports = (root) => {
  const require = createRequire(join(root, "package.json"))
  const modulesOf = (pkg) => {
    const index = readFileSync(require.resolve(pkg).replace(/\/cjs\/index\.js$/, "/esm/index.js"), "utf8")
    const named = [...index.matchAll(/^export \* as (\w+) from "\.\/(\w+)\.js"/gm)]
    return new Set(named.filter(([, name, file]) => name === file).map(([, name]) => name))
  }
  const modules = new Map(barrels.map((pkg) => [pkg, modulesOf(pkg)]))
  const importPattern = new RegExp(`import\\s*\\{([^}]*)\\}\\s*from\\s*"(${barrels.join("|")})"`, "g")
  const rewrite = (_statement, list, pkg) => {
    const values = []
    const types = []
    const direct = []
    for (const specifier of list.split(",").map((s) => s.trim())) {
      if (specifier === "") continue
      const match = /^(type\s+)?(\w+)(?:\s+as\s+(\w+))?$/.exec(specifier)
      if (!match) throw new Error(`barrelImports: cannot read the import specifier \`${specifier}\``)
      const [, type, name, local] = match
      if (type) types.push(specifier.replace(/^type\s+/, ""))
      else if (modules.get(pkg)?.has(name)) direct.push(`import * as ${local ?? name} from "${pkg}/${name}"`)
      else values.push(specifier)
    }
    return [
      ...(types.length > 0 ? [`import type { ${types.join(", ")} } from "${pkg}"`] : []),
      ...(values.length > 0 ? [`import { ${values.join(", ")} } from "${pkg}"`] : []),
      ...direct,
    ].join("; ")
  }
  const sources = join(root, "src")
  return {
    name: "barrel-imports",
    setup(build) {
      build.onLoad({ filter: /\.ts$/ }, (args) => {
        if (!args.path.startsWith(sources)) return undefined
        const contents = readFileSync(args.path, "utf8").replace(importPattern, rewrite)
        return { contents, loader: "ts" }
      })
    },
  }
}
