import { isMap, isPair, isScalar, isSeq, Lexer, LineCounter, type Node, parseDocument } from "yaml"
import type { Diagnostic } from "../errors.js"

export type PathSegment = string | number

export interface Position {
  readonly line: number
  readonly column: number
}

/** A parsed YAML file that can say where any field of it was written. */
export interface YamlSource {
  readonly file: string
  readonly value: unknown
  /** Position of the value at `path`, or of its nearest existing ancestor. */
  readonly valueAt: (path: ReadonlyArray<PathSegment>) => Position
  /** Position of the key of the member at `path` (for unknown keys), falling back to its value. */
  readonly keyAt: (path: ReadonlyArray<PathSegment>) => Position
}

export type YamlParseResult =
  | { readonly _tag: "ok"; readonly source: YamlSource }
  | { readonly _tag: "syntax"; readonly diagnostics: ReadonlyArray<Diagnostic> }
  /** Nested too deeply or expanding too many aliases to be composed safely. */
  | { readonly _tag: "tooLarge"; readonly diagnostics: ReadonlyArray<Diagnostic> }

/** Deepest nesting of flow collections (`[[[…]]]`), and most block indicators on one line (`- - - x`). */
export const maxYamlNesting = 64

/** Aliases a document may expand (an alias bomb expands exponentially many). */
export const maxYamlAliasCount = 100

/**
 * Finds nesting too deep to compose: the YAML composer recurses once per level, and a few thousand levels
 * exhaust the stack or worse. The lexer does not recurse, so it measures first: the depth of flow
 * collections, and the number of block indicators (`-`, `?`, `:`) on one line. Nesting by indentation
 * needs a column per level and is bounded by the file size; it is checked on the parsed value.
 */
export const yamlNestingProblem = (file: string, text: string): Diagnostic | undefined => {
  let offset = 0
  let flow = 0
  let onLine = 0
  for (const token of new Lexer().lex(text)) {
    if (token === "[" || token === "{") flow++
    else if (token === "]" || token === "}") flow = Math.max(0, flow - 1)
    else if (token === "-" || token === "?" || token === ":") onLine++
    else if (token === "\n" || token === "\r\n") onLine = 0
    if (flow > maxYamlNesting || onLine > maxYamlNesting) {
      const before = text.slice(0, offset)
      return {
        file,
        line: before.split("\n").length,
        column: offset - before.lastIndexOf("\n"),
        path: "",
        message: `YAML nested more than ${maxYamlNesting} levels deep; a profile needs a handful`,
      }
    }
    offset += token.length
  }
  return undefined
}

export const formatPath = (path: ReadonlyArray<PathSegment>): string =>
  path.reduce<string>(
    (text, segment) =>
      typeof segment === "number"
        ? `${text}[${segment}]`
        : text === ""
          ? String(segment)
          : `${text}.${segment}`,
    "",
  )

export const parseYamlSource = (file: string, text: string): YamlParseResult => {
  const tooDeep = yamlNestingProblem(file, text)
  if (tooDeep) return { _tag: "tooLarge", diagnostics: [tooDeep] }
  const lineCounter = new LineCounter()
  const document = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true })
  if (document.errors.length > 0) {
    // Deep nesting by indentation can still exhaust the composer's stack; it says so as an error.
    const overflow = document.errors.some((error) => /Maximum call stack/.test(error.message))
    return {
      _tag: overflow ? "tooLarge" : "syntax",
      diagnostics: document.errors.map((error) => {
        const position = lineCounter.linePos(error.pos[0])
        return {
          file,
          line: position.line,
          column: position.col,
          path: "",
          message: overflow
            ? "YAML nested too deeply to read"
            : `YAML syntax error: ${error.message.split("\n")[0]}`,
        }
      }),
    }
  }
  const at = (offset: number | undefined): Position => {
    const position = lineCounter.linePos(offset ?? 0)
    return { line: position.line, column: position.col }
  }
  const locate = (path: ReadonlyArray<PathSegment>, wantKey: boolean): Position => {
    let node: Node | null | undefined = document.contents as Node | null
    let best = at(node?.range?.[0])
    for (let i = 0; i < path.length; i++) {
      const segment = path[i]
      const last = i === path.length - 1
      if (isMap(node)) {
        const pair = node.items.find(
          (item) => isPair(item) && isScalar(item.key) && item.key.value === segment,
        )
        if (!pair) return best
        const key = pair.key as Node
        if (last && wantKey) return at(key.range?.[0])
        const value = pair.value as Node | null
        best = at(value?.range?.[0] ?? key.range?.[0])
        node = value
      } else if (isSeq(node) && typeof segment === "number") {
        const item = node.items[segment] as Node | undefined
        if (!item) return best
        best = at(item.range?.[0])
        node = item
      } else {
        return best
      }
    }
    return best
  }
  let value: unknown
  try {
    value = document.toJS({ maxAliasCount: maxYamlAliasCount }) ?? {}
  } catch (error) {
    // yaml refuses an alias bomb ("Excessive alias count") while expanding it: a resource limit, not a bug.
    return {
      _tag: "tooLarge",
      diagnostics: [
        {
          file,
          line: 1,
          column: 1,
          path: "",
          message:
            error instanceof Error && /alias/i.test(error.message)
              ? `YAML aliases expand too much: at most ${maxYamlAliasCount} alias expansions`
              : "YAML nested too deeply to read",
        },
      ],
    }
  }
  return {
    _tag: "ok",
    source: {
      file,
      value,
      valueAt: (path) => locate(path, false),
      keyAt: (path) => locate(path, true),
    },
  }
}
