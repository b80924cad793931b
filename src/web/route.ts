import type { IncomingHttpHeaders } from "node:http"
import { Effect, type FiberSet, JSONSchema, ParseResult, Schema, type Stream } from "effect"
import type { AppServices } from "../app/appLayer.js"
import type { AnyOperation, OperationContext } from "../operations/index.js"
import type { FlashProgressBoard } from "./flashProgress.js"
import { type ApiError, BadRequestError } from "./httpErrors.js"
import type { JobBoard } from "./jobs/jobBoard.js"
import type { ServedFile } from "./storeFiles.js"

/** One server-sent event: `id`, `event` and one line of JSON `data`. */
export interface ServerSentEvent {
  readonly id: number
  readonly event: string
  readonly data: unknown
}

/** What a handler answers; the server turns it into bytes on the wire. */
export type Reply =
  | {
      readonly _tag: "json"
      readonly status: number
      readonly body: unknown
      readonly headers?: Readonly<Record<string, string>>
    }
  | { readonly _tag: "text"; readonly status: number; readonly body: string; readonly contentType: string }
  | { readonly _tag: "file"; readonly file: ServedFile }
  | { readonly _tag: "events"; readonly events: Stream.Stream<ServerSentEvent> }

export const json = (body: unknown, status = 200, headers?: Readonly<Record<string, string>>): Reply => ({
  _tag: "json",
  status,
  body,
  ...(headers ? { headers } : {}),
})

/** What the server knows about itself that handlers need. */
export interface ServerInfo {
  readonly version: string
  readonly allowFlash: boolean
  /** Loop devices count as cards (lab and test use; --allow-loop). */
  readonly allowLoop: boolean
  readonly tokenRequired: boolean
  readonly maxJobs: number
  readonly board: JobBoard
  /**
   * Work a request starts that must run to its end even when its client goes away (a card write): it
   * lives in the server's scope, which awaits it on shutdown before the database closes.
   */
  readonly tasks: FiberSet.FiberSet<unknown, unknown>
  /** How far each card write started from the web has got. */
  readonly flashProgress: FlashProgressBoard
}

export interface RouteInput {
  /** Path parameters, percent-decoded. */
  readonly params: Readonly<Record<string, string>>
  /** The decoded segments a trailing `{path+}` matched. */
  readonly rest: ReadonlyArray<string>
  readonly query: URLSearchParams
  /** The parsed JSON body of a POST (undefined when empty). */
  readonly body: unknown
  readonly headers: IncomingHttpHeaders
  readonly context: OperationContext
  readonly server: ServerInfo
}

export type Method = "GET" | "POST"

/** An OpenAPI operation object, built against the document's shared schema definitions. */
export type Describe = (schemas: SchemaRegistry) => Record<string, unknown>

export interface Route {
  readonly method: Method
  /** OpenAPI path template; `{name}` is one segment, a trailing `{path+}` the rest. */
  readonly path: string
  readonly describe: Describe
  readonly handle: (input: RouteInput) => Effect.Effect<Reply, ApiError, AppServices>
}

/** Turns Schemas into OpenAPI 3.1 schema objects, collecting named ones under components.schemas. */
export interface SchemaRegistry {
  readonly of: (schema: Schema.Schema.AnyNoContext) => unknown
  readonly definitions: Record<string, unknown>
}

export const makeSchemaRegistry = (): SchemaRegistry => {
  const definitions: Record<string, JSONSchema.JsonSchema7> = {}
  return {
    definitions,
    of: (schema) =>
      JSONSchema.fromAST(schema.ast, {
        definitions,
        definitionPath: "#/components/schemas/",
        target: "openApi3.1",
      }),
  }
}

export const errorResponse = (description: string) => ({
  description,
  content: { "application/json": { schema: { $ref: "#/components/schemas/ErrorDocument" } } },
})

export const jsonResponse = (description: string, schema: unknown) => ({
  description,
  content: { "application/json": { schema } },
})

/**
 * Decodes untrusted input with a Schema; a mismatch is the caller's fault (400) and says what is wrong.
 * Describing the mismatch walks the input: should that ever fail (a value nested deeper than the body
 * check lets through), the answer is still a 400 that says less, never a 500.
 */
export const decodeInput = <A, I>(schema: Schema.Schema<A, I>, what: string) => {
  const decode = Schema.decodeUnknown(schema, { errors: "all", onExcessProperty: "error" })
  return (input: unknown): Effect.Effect<A, BadRequestError> =>
    decode(input).pipe(
      Effect.catchAll((error) =>
        Effect.try(() => ParseResult.TreeFormatter.formatErrorSync(error)).pipe(
          Effect.orElseSucceed(() => "it does not match the expected shape (see /openapi.json)"),
          Effect.flatMap((problem) => new BadRequestError({ detail: `invalid ${what}: ${problem}` })),
        ),
      ),
    )
}

const pathParameters = (path: string) =>
  [...path.matchAll(/\{(\w+)\+?\}/g)].map(([, name]) => ({
    name,
    in: "path",
    required: true,
    schema: { type: "string" },
  }))

/** JSON Schema `type` of each property of an object schema: how query strings map onto parameters. */
const propertyTypes = (schema: unknown): ReadonlyMap<string, string> => {
  const properties =
    typeof schema === "object" && schema !== null && "properties" in schema
      ? (schema.properties as Record<string, { type?: unknown }>)
      : {}
  return new Map(
    Object.entries(properties).map(([name, p]) => [name, typeof p.type === "string" ? p.type : "string"]),
  )
}

/**
 * A query string as an operation's parameters: lists are comma-separated (`profiles=a,b`), booleans
 * `true`/`false` (a bare `all` is true), integers in decimal. The operation's own decoding judges the rest.
 */
const queryToParams = (query: URLSearchParams, types: ReadonlyMap<string, string>) => {
  const params: Record<string, unknown> = {}
  for (const [name, value] of query) {
    if (name === "token") continue
    const type = types.get(name)
    params[name] =
      type === "array"
        ? value.split(",").filter((v) => v !== "")
        : type === "boolean"
          ? value === "" || value === "true"
            ? true
            : value === "false"
              ? false
              : value
          : type === "integer" || type === "number"
            ? /^-?\d+$/.test(value)
              ? Number(value)
              : value
            : value
  }
  return params
}

/**
 * A route that runs one library operation: GET takes its parameters from the query string, POST from the
 * JSON body; path parameters fill the fields they name. The answer is the operation's result as JSON.
 */
export const operationRoute = (definition: {
  readonly method: Method
  readonly path: string
  readonly tag: string
  readonly operation: AnyOperation
  readonly summary?: string
}): Route => {
  const { operation } = definition
  const paramsJsonSchema = JSONSchema.make(operation.params)
  const types = propertyTypes(paramsJsonSchema)
  const fromPath = new Set(pathParameters(definition.path).map((p) => p.name))
  return {
    method: definition.method,
    path: definition.path,
    describe: (schemas) => {
      const params = schemas.of(operation.params)
      const query = [...propertyTypes(params).keys()]
        .filter((name) => !fromPath.has(name))
        .map((name) => {
          const property = params as { properties: Record<string, unknown>; required?: Array<string> }
          return {
            name,
            in: "query",
            required: property.required?.includes(name) ?? false,
            schema: property.properties[name],
          }
        })
      return {
        operationId: operation.name,
        tags: [definition.tag],
        summary: definition.summary ?? operation.description,
        description: operation.description,
        parameters: [...pathParameters(definition.path), ...(definition.method === "GET" ? query : [])],
        ...(definition.method === "POST"
          ? { requestBody: { required: false, content: { "application/json": { schema: params } } } }
          : {}),
        responses: {
          200: jsonResponse("The operation's result", schemas.of(operation.result)),
          default: errorResponse("An error document"),
        },
      }
    },
    handle: (input) => {
      const base =
        definition.method === "GET"
          ? queryToParams(input.query, types)
          : typeof input.body === "object" && input.body !== null
            ? { ...input.body }
            : input.body === undefined
              ? {}
              : input.body
      const params =
        typeof base === "object" && base !== null
          ? {
              ...base,
              ...Object.fromEntries(
                Object.entries(input.params).map(([name, value]) => [
                  name,
                  types.get(name) === "integer" && /^\d+$/.test(value) ? Number(value) : value,
                ]),
              ),
            }
          : base
      return Effect.map(operation.invoke(params, input.context), (result) => json(result))
    },
  }
}
