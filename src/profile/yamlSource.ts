import { isMap, isPair, isScalar, isSeq, LineCounter, type Node, parseDocument } from "yaml"
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
  const lineCounter = new LineCounter()
  const document = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true })
  if (document.errors.length > 0) {
    return {
      _tag: "syntax",
      diagnostics: document.errors.map((error) => {
        const position = lineCounter.linePos(error.pos[0])
        return {
          file,
          line: position.line,
          column: position.col,
          path: "",
          message: `YAML syntax error: ${error.message.split("\n")[0]}`,
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
  return {
    _tag: "ok",
    source: {
      file,
      value: document.toJS({ maxAliasCount: 100 }) ?? {},
      valueAt: (path) => locate(path, false),
      keyAt: (path) => locate(path, true),
    },
  }
}
