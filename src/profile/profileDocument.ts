import { Either, ParseResult, Schema } from "effect"
import { parse } from "yaml"
import { type Diagnostic, type ProfileErrorCode, ProfileInvalidError } from "../errors.js"
import { closestMatch } from "../text/closestMatch.js"
import { knownKeys, ProfileDocument, profileLimits } from "./profileSchema.js"
import {
  formatPath,
  maxYamlAliasCount,
  type PathSegment,
  parseYamlSource,
  type YamlSource,
  yamlNestingProblem,
} from "./yamlSource.js"

export interface LoadedDocument {
  readonly document: ProfileDocument
  readonly source: YamlSource
}

interface Located {
  readonly code: ProfileErrorCode
  readonly diagnostic: Diagnostic
}

const keysFor = (path: ReadonlyArray<PathSegment>): ReadonlyArray<string> => {
  if (path.length === 1) return knownKeys.profile
  const [head] = path
  if (head === "files" && path.length === 3) return knownKeys.files
  if (head === "first_boot" && path.length === 3) return knownKeys.first_boot
  if (head === "flash" && path.length === 2) return knownKeys.flash
  if (head === "users" && path.length === 3) return knownKeys.users
  for (const section of ["base", "ssh", "wifi", "wireguard"] as const)
    if (head === section && path.length === 2) return knownKeys[section]
  return []
}

const codeFor = (issue: ParseResult.ArrayFormatterIssue): ProfileErrorCode => {
  if (issue._tag === "Unexpected") return "profile_unknown_key"
  if (issue._tag === "Missing") return "profile_missing_field"
  if (issue.path[0] === "packages") return "profile_invalid_package"
  if (issue.path[0] === "secrets") return "profile_secret_reference_invalid"
  if (issue.path[0] === "users" && issue.path[2] === "password") return "profile_secret_inline"
  if (issue.path[0] === "extends") return "profile_invalid_id"
  return "profile_invalid_value"
}

/** The clearest text for one schema issue: what was expected, in the words of the profile format. */
const messageFor = (issue: ParseResult.ArrayFormatterIssue): { message: string; hint?: string } => {
  const path = issue.path as ReadonlyArray<PathSegment>
  if (issue._tag === "Unexpected") {
    const key = String(path[path.length - 1])
    const guess = closestMatch(key, keysFor(path))
    return guess
      ? { message: `unknown key \`${key}\``, hint: `did you mean \`${guess}\`?` }
      : { message: `unknown key \`${key}\``, hint: `known keys here: ${keysFor(path).join(", ")}` }
  }
  if (issue._tag === "Missing") return { message: "this field is required" }
  return { message: issue.message }
}

const decodeStrict = Schema.decodeUnknownEither(ProfileDocument, {
  errors: "first",
  onExcessProperty: "error",
})

interface LimitProblem {
  readonly path: ReadonlyArray<PathSegment>
  readonly message: string
}

/**
 * The first place a parsed document exceeds `profileLimits` (list lengths, string lengths, nesting), or
 * `undefined`. Runs on the plain parsed value, before schema decoding builds anything from it, and visits
 * each node once without recursion.
 */
export const profileLimitProblem = (value: unknown): LimitProblem | undefined => {
  const pending: Array<{ value: unknown; path: ReadonlyArray<PathSegment> }> = [{ value, path: [] }]
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const { value: node, path } = next
    if (typeof node === "string") {
      const limit =
        path.length === 1 && path[0] === "description"
          ? profileLimits.descriptionLength
          : profileLimits.stringLength
      if (node.length > limit)
        return { path, message: `text of ${node.length} characters; the limit here is ${limit}` }
      continue
    }
    if (typeof node !== "object" || node === null) continue
    if (path.length >= profileLimits.nesting)
      return { path, message: `nested more than ${profileLimits.nesting} levels deep` }
    if (Array.isArray(node)) {
      if (node.length > profileLimits.listItems)
        return {
          path,
          message: `list of ${node.length} entries; the limit is ${profileLimits.listItems}`,
        }
      for (let i = node.length - 1; i >= 0; i--) pending.push({ value: node[i], path: [...path, i] })
      continue
    }
    const keys = Object.keys(node)
    if (keys.length > profileLimits.listItems)
      return { path, message: `mapping of ${keys.length} keys; the limit is ${profileLimits.listItems}` }
    for (let i = keys.length - 1; i >= 0; i--) {
      const key = keys[i] as string
      if (key.length > profileLimits.keyLength)
        return {
          path,
          message: `a key of ${key.length} characters; the limit is ${profileLimits.keyLength}`,
        }
      pending.push({ value: (node as Record<string, unknown>)[key], path: [...path, key] })
    }
  }
  return undefined
}

const tooLarge = (diagnostic: Diagnostic) =>
  new ProfileInvalidError({ code: "profile_too_large", diagnostics: [diagnostic] })

const quickDecode = (text: string): ProfileDocument | undefined => {
  try {
    const value: unknown = parse(text, { uniqueKeys: true, maxAliasCount: maxYamlAliasCount }) ?? {}
    if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined
    // Over a limit: the slow path says where.
    if (profileLimitProblem(value) !== undefined) return undefined
    const decoded = decodeStrict(value)
    return Either.isRight(decoded) ? decoded.right : undefined
  } catch {
    return undefined
  }
}

/** A document known to be valid (decoded before): its source is parsed only if a later check needs positions. */
export const cachedDocument = (file: string, text: string, document: ProfileDocument): LoadedDocument => ({
  document,
  source: lazySource(file, text),
})

/** Positions for a valid document are only needed by later checks (extends, overlay): parse on demand. */
const lazySource = (file: string, text: string): YamlSource => {
  let source: YamlSource | undefined
  const load = (): YamlSource => {
    if (source) return source
    const parsed = parseYamlSource(file, text)
    if (parsed._tag !== "ok") throw new Error("a document that parsed once no longer parses")
    source = parsed.source
    return source
  }
  return {
    file,
    get value() {
      return load().value
    },
    valueAt: (path) => load().valueAt(path),
    keyAt: (path) => load().keyAt(path),
  }
}

const isGeneric = (issue: ParseResult.ArrayFormatterIssue) => /^Expected /.test(issue.message)

/**
 * Unions and optional fields make the schema report one issue per alternative ("Expected undefined,
 * actual [...]" next to the real problem). Per field, keep the specific messages when there are any, and
 * drop a field's issues when a deeper field explains them.
 */
const preferSpecific = (
  issues: ReadonlyArray<ParseResult.ArrayFormatterIssue>,
): ReadonlyArray<ParseResult.ArrayFormatterIssue> => {
  const key = (issue: ParseResult.ArrayFormatterIssue) => formatPath(issue.path as ReadonlyArray<PathSegment>)
  const kept = issues.filter((issue) => {
    if (issue._tag === "Missing") {
      // `scirpt` present and `script` missing is one typo, reported once as the unknown key.
      const parent = key({ ...issue, path: issue.path.slice(0, -1) })
      const missing = String(issue.path[issue.path.length - 1])
      return !issues.some(
        (other) =>
          other._tag === "Unexpected" &&
          other.path.length === issue.path.length &&
          key({ ...other, path: other.path.slice(0, -1) }) === parent &&
          closestMatch(String(other.path[other.path.length - 1]), [missing]) === missing,
      )
    }
    if (issue._tag !== "Type" && issue._tag !== "Refinement") return true
    const path = key(issue)
    const deeper = issues.some(
      (other) => other !== issue && other.path.length > issue.path.length && key(other).startsWith(path),
    )
    if (deeper && isGeneric(issue)) return false
    if (isGeneric(issue) && issues.some((other) => key(other) === path && !isGeneric(other))) return false
    if (
      /^Expected undefined,/.test(issue.message) &&
      issues.some((other) => other !== issue && key(other) === path)
    )
      return false
    return true
  })
  // A union of literals fails once per member: say it once, listing what is allowed.
  const merged: Array<ParseResult.ArrayFormatterIssue> = []
  for (const issue of kept) {
    const match = /^Expected (.+), actual (.+)$/s.exec(issue.message)
    const previous = merged.find((m) => key(m) === key(issue) && /^Expected .+, actual .+$/s.test(m.message))
    if (match && previous) {
      const [, expected, actual] = match
      const index = merged.indexOf(previous)
      const [, before] = /^Expected (.+), actual .+$/s.exec(previous.message) ?? []
      merged[index] = { ...previous, message: `Expected ${before} | ${expected}, actual ${actual}` }
    } else merged.push(issue)
  }
  return merged
}

/** Parses and checks one profile file; every problem comes back located at its file, line and field. */
export const decodeProfileDocument = (
  file: string,
  text: string,
): Either.Either<LoadedDocument, ProfileInvalidError> => {
  // Limits first: the file's size, then nesting the YAML composer could not survive.
  const bytes = Buffer.byteLength(text, "utf8")
  if (bytes > profileLimits.fileBytes) {
    return Either.left(
      tooLarge({
        file,
        line: 1,
        column: 1,
        path: "",
        message: `profile file of ${bytes} bytes; the limit is ${profileLimits.fileBytes}`,
      }),
    )
  }
  const tooDeep = yamlNestingProblem(file, text)
  if (tooDeep) return Either.left(tooLarge(tooDeep))
  // Fast path: most profiles are valid, and positions are only needed to explain an error.
  const fast = quickDecode(text)
  if (fast !== undefined) return Either.right({ document: fast, source: lazySource(file, text) })
  const parsed = parseYamlSource(file, text)
  if (parsed._tag !== "ok") {
    return Either.left(
      new ProfileInvalidError({
        code: parsed._tag === "syntax" ? "profile_yaml_syntax" : "profile_too_large",
        diagnostics: parsed.diagnostics,
      }),
    )
  }
  const { source } = parsed
  const value = source.value
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return Either.left(
      new ProfileInvalidError({
        code: "profile_invalid_value",
        diagnostics: [
          {
            file,
            line: 1,
            column: 1,
            path: "",
            message: "a profile is a YAML mapping of keys (release:, target:, device:, packages:, ...)",
          },
        ],
      }),
    )
  }
  const problem = profileLimitProblem(value)
  if (problem) {
    const position = source.valueAt(problem.path)
    return Either.left(
      tooLarge({
        file,
        line: position.line,
        column: position.column,
        path: formatPath(problem.path),
        message: problem.message,
      }),
    )
  }
  const decoded = Schema.decodeUnknownEither(ProfileDocument, { errors: "all", onExcessProperty: "error" })(
    value,
  )
  if (Either.isRight(decoded)) return Either.right({ document: decoded.right, source })
  const issues = preferSpecific(ParseResult.ArrayFormatter.formatErrorSync(decoded.left))
  const located: Array<Located> = []
  const seen = new Set<string>()
  for (const issue of issues) {
    const path = issue.path as ReadonlyArray<PathSegment>
    const { message, hint } = messageFor(issue)
    const dedupe = `${formatPath(path)}\0${message}`
    if (seen.has(dedupe)) continue
    seen.add(dedupe)
    const position = issue._tag === "Unexpected" ? source.keyAt(path) : source.valueAt(path)
    located.push({
      code: codeFor(issue),
      diagnostic: {
        file,
        line: position.line,
        column: position.column,
        path: formatPath(path),
        message,
        hint,
      },
    })
  }
  located.sort((a, b) => a.diagnostic.line - b.diagnostic.line || a.diagnostic.column - b.diagnostic.column)
  const first = located[0]
  return Either.left(
    new ProfileInvalidError({
      code: first?.code ?? "profile_invalid_value",
      diagnostics: located.map((l) => l.diagnostic),
    }),
  )
}
