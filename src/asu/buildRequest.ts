import { Either, ParseResult, Schema } from "effect"
import { rootfsFilesystems as filesystems } from "../profile/profileSchema.js"

/*
 * The body of `POST /api/v1/build` (asu-api.md §2): upstream's pydantic model, with its defaults, its
 * patterns and its error texts, so a 422 reads exactly as upstream's. Unknown keys are ignored (clients
 * send `url`, `branch`, `efi`, …).
 */

/** Python's `\w` is Unicode-aware: letters and digits of any script, and `_`. */
const word = "\\p{L}\\p{N}_"
export const stringPattern = new RegExp(`^[${word}.,-]*$`, "u")
export const targetPattern = new RegExp(`^[${word}]*/[${word}]*$`, "u")
export const repositoryNamePattern = new RegExp(`^[${word}.-]+$`, "u")
export const repositoryUrlPattern = /^https?:\/\/\S+$/u

/** How upstream writes these patterns in its messages (Python regex syntax). */
const patternText = {
  string: "^[\\w.,-]*$",
  target: "^[\\w]*/[\\w]*$",
  repositoryName: "^[\\w.-]+$",
  repositoryUrl: "^https?://\\S+$",
} as const

/** The server's limits a request is checked against (asu-api.md §9). */
export interface RequestLimits {
  readonly maxCustomRootfsSizeMb: number
  readonly maxDefaultsLength: number
}

export const defaultRequestLimits: RequestLimits = { maxCustomRootfsSizeMb: 1024, maxDefaultsLength: 20480 }

const required = { missingMessage: () => "Field required" }

const PyString = Schema.String.annotations({ message: () => "Input should be a valid string" })

const patterned = (pattern: RegExp, text: string) =>
  PyString.pipe(Schema.filter((s) => pattern.test(s) || `String should match pattern '${text}'`))

const PyList = <S extends Schema.Schema.Any>(item: S) =>
  Schema.Array(item).annotations({
    message: () => ({ message: "Input should be a valid list", override: false }),
  })

const PyDict = <K extends Schema.Schema.Any, V extends Schema.Schema.Any>(key: K, value: V) =>
  Schema.Record({ key, value }).annotations({
    message: () => ({ message: "Input should be a valid dictionary", override: false }),
  })

const PyInt = Schema.Number.annotations({ message: () => "Input should be a valid integer" }).pipe(
  Schema.filter((n) => Number.isInteger(n) || "Input should be a valid integer"),
)

const PyBool = Schema.Boolean.annotations({ message: () => "Input should be a valid boolean" })

/** The request model for the given limits. */
export const buildRequestSchema = (limits: RequestLimits) =>
  Schema.Struct({
    distro: Schema.optionalWith(patterned(stringPattern, patternText.string), { default: () => "openwrt" }),
    version: Schema.propertySignature(patterned(stringPattern, patternText.string)).annotations(required),
    version_code: Schema.optionalWith(patterned(stringPattern, patternText.string), { default: () => "" }),
    target: Schema.propertySignature(patterned(targetPattern, patternText.target)).annotations(required),
    profile: Schema.propertySignature(patterned(stringPattern, patternText.string)).annotations(required),
    packages: Schema.optionalWith(Schema.NullOr(PyList(patterned(stringPattern, patternText.string))), {
      default: () => [],
    }),
    packages_versions: Schema.optionalWith(Schema.NullOr(PyDict(PyString, PyString)), {
      default: () => ({}),
    }),
    diff_packages: Schema.optionalWith(PyBool, { default: () => false }),
    defaults: Schema.optionalWith(
      Schema.NullOr(
        PyString.pipe(
          Schema.filter(
            (s) =>
              s.length <= limits.maxDefaultsLength ||
              `String should have at most ${limits.maxDefaultsLength} characters`,
          ),
        ),
      ),
      { default: () => null },
    ),
    rootfs_size_mb: Schema.optionalWith(
      Schema.NullOr(
        PyInt.pipe(
          Schema.filter((n) => n >= 1 || "Input should be greater than or equal to 1"),
          Schema.filter(
            (n) =>
              n <= limits.maxCustomRootfsSizeMb ||
              `Input should be less than or equal to ${limits.maxCustomRootfsSizeMb}`,
          ),
        ),
      ),
      { default: () => null },
    ),
    filesystem: Schema.optionalWith(
      Schema.NullOr(
        Schema.Literal(...filesystems).annotations({
          message: () =>
            `Input should be ${filesystems
              .slice(0, -1)
              .map((f) => `'${f}'`)
              .join(", ")} or '${filesystems[filesystems.length - 1]}'`,
        }),
      ),
      { default: () => null },
    ),
    repositories: Schema.optionalWith(
      PyDict(
        patterned(repositoryNamePattern, patternText.repositoryName),
        patterned(repositoryUrlPattern, patternText.repositoryUrl),
      ),
      { default: () => ({}) },
    ),
    repositories_mode: Schema.optionalWith(
      Schema.Literal("append", "replace").annotations({
        message: () => "Input should be 'append' or 'replace'",
      }),
      { default: () => "replace" as const },
    ),
    repository_keys: Schema.optionalWith(PyList(PyString), { default: () => [] }),
    client: Schema.optionalWith(Schema.NullOr(PyString), { default: () => null }),
  })

/** A decoded build request: every field present, defaults applied. */
export type BuildRequest = Schema.Schema.Type<ReturnType<typeof buildRequestSchema>>

/** One entry of a FastAPI 422 body: `{"detail": [issue, …]}`. */
export interface ValidationIssue {
  readonly type: string
  readonly loc: ReadonlyArray<string | number>
  readonly msg: string
  readonly input: unknown
  readonly ctx?: Record<string, unknown>
}

/** pydantic's error type for each of its messages used above. */
const issueType = (msg: string): string => {
  if (msg === "Field required") return "missing"
  if (msg === "Input should be a valid list") return "list_type"
  if (msg === "Input should be a valid dictionary") return "dict_type"
  if (msg === "Input should be a valid string") return "string_type"
  if (msg === "Input should be a valid integer") return "int_type"
  if (msg === "Input should be a valid boolean") return "bool_type"
  if (msg.startsWith("Input should be greater than or equal")) return "greater_than_equal"
  if (msg.startsWith("Input should be less than or equal")) return "less_than_equal"
  if (msg.startsWith("String should have at most")) return "string_too_long"
  if (msg.startsWith("String should match pattern")) return "string_pattern_mismatch"
  if (msg.startsWith("Input should be '")) return "literal_error"
  return "value_error"
}

const contextOf = (type: string, msg: string, limits: RequestLimits): Record<string, unknown> | undefined => {
  switch (type) {
    case "greater_than_equal":
      return { ge: 1 }
    case "less_than_equal":
      return { le: limits.maxCustomRootfsSizeMb }
    case "string_too_long":
      return { max_length: limits.maxDefaultsLength }
    case "string_pattern_mismatch":
      return { pattern: /'(.*)'$/.exec(msg)?.[1] ?? "" }
    default:
      return undefined
  }
}

const valueAt = (root: unknown, path: ReadonlyArray<PropertyKey>): unknown => {
  let node = root
  for (const key of path) {
    if (typeof node !== "object" || node === null) return undefined
    node = (node as Record<PropertyKey, unknown>)[key]
  }
  return node
}

/**
 * Decodes an untrusted body as upstream does: the request, or the issues of a 422 in pydantic's shape.
 * An absent body is one issue at `["body"]`.
 */
/**
 * The request decoder of each pair of limits, made once: building the schema and its decoder took most of
 * the time of a duplicate POST (clients re-POST a finished request to get its answer).
 */
const decoders = new Map<string, (body: unknown) => Either.Either<BuildRequest, ParseResult.ParseError>>()
const decoderFor = (limits: RequestLimits) => {
  const id = `${limits.maxCustomRootfsSizeMb}/${limits.maxDefaultsLength}`
  let decoder = decoders.get(id)
  if (decoder === undefined) {
    decoder = Schema.decodeUnknownEither(buildRequestSchema(limits), { errors: "all" })
    decoders.set(id, decoder)
  }
  return decoder
}

export const decodeBuildRequest = (
  body: unknown,
  limits: RequestLimits = defaultRequestLimits,
): Either.Either<BuildRequest, ReadonlyArray<ValidationIssue>> => {
  if (body === undefined || body === null) {
    return Either.left([{ type: "missing", loc: ["body"], msg: "Field required", input: null }])
  }
  if (typeof body !== "object" || Array.isArray(body)) {
    return Either.left([
      {
        type: "model_attributes_type",
        loc: ["body"],
        msg: "Input should be a valid dictionary or object to extract fields from",
        input: body,
      },
    ])
  }
  const decoded = decoderFor(limits)(body)
  if (Either.isRight(decoded)) return Either.right(decoded.right)
  const seen = new Set<string>()
  const issues: Array<ValidationIssue> = []
  for (const issue of ParseResult.ArrayFormatter.formatErrorSync(decoded.left)) {
    // A nullable field's "or null" alternative only restates that null is allowed.
    if (issue.message.startsWith("Expected null") || issue.message.startsWith("Expected undefined")) continue
    const where = JSON.stringify(issue.path)
    if (seen.has(where)) continue
    seen.add(where)
    const type = issueType(issue.message)
    const loc = ["body", ...issue.path.map((p) => (typeof p === "number" ? p : String(p)))]
    const input = type === "missing" ? valueAt(body, issue.path.slice(0, -1)) : valueAt(body, issue.path)
    const ctx = contextOf(type, issue.message, limits)
    issues.push({ type, loc, msg: issue.message, input, ...(ctx ? { ctx } : {}) })
  }
  return Either.left(issues)
}

/** `,` in a profile name becomes `_` (upstream sanitises it before hashing and validating). */
export const sanitizeProfile = (request: BuildRequest): BuildRequest => ({
  ...request,
  profile: request.profile.replace(/,/g, "_"),
})

/** The packages a request asks for: the keys of `packages_versions` when it has any, else `packages`. */
export const requestedPackages = (request: BuildRequest): ReadonlyArray<string> => {
  const versions = Object.keys(request.packages_versions ?? {})
  return versions.length > 0 ? versions : (request.packages ?? [])
}
