/*
 * How deeply JSON nests, measured without recursion. Untrusted JSON (an HTTP body, MCP arguments) is
 * checked against a small limit before anything walks it recursively — Schema decoding, error formatting —
 * because a few kilobytes of `[[[[…` would otherwise exhaust the stack.
 */

/** Deepest nesting of arrays and objects owrt accepts from a client; its own documents nest far less. */
export const maxJsonNesting = 64

const openBrace = 0x7b
const closeBrace = 0x7d
const openBracket = 0x5b
const closeBracket = 0x5d
const quote = 0x22
const backslash = 0x5c

/**
 * Whether JSON text nests arrays and objects more than `limit` deep: one linear pass counting brackets
 * outside strings. It does not validate the text (JSON.parse does that); for invalid text the answer only
 * bounds what a parser would build.
 */
export const jsonTextNestsDeeper = (text: string, limit: number = maxJsonNesting): boolean => {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === backslash) i++
      else if (c === quote) inString = false
    } else if (c === quote) inString = true
    else if (c === openBrace || c === openBracket) {
      depth++
      if (depth > limit) return true
    } else if (c === closeBrace || c === closeBracket) depth--
  }
  return false
}

/**
 * Whether a parsed value nests arrays and objects more than `limit` deep (a scalar is depth 0). The walk
 * keeps its own stack, so no input can overflow the call stack, and stops at the first level too deep.
 */
export const valueNestsDeeper = (value: unknown, limit: number = maxJsonNesting): boolean => {
  const pending: Array<{ readonly value: unknown; readonly depth: number }> = [{ value, depth: 0 }]
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    if (typeof next.value !== "object" || next.value === null) continue
    const depth = next.depth + 1
    if (depth > limit) return true
    const children: ReadonlyArray<unknown> = Array.isArray(next.value)
      ? next.value
      : Object.values(next.value)
    for (const child of children) {
      if (typeof child === "object" && child !== null) pending.push({ value: child, depth })
    }
  }
  return false
}
