import type { CallToolResult, Tool } from "@modelcontextprotocol/sdk/types.js"
import { JSONSchema, type Schema } from "effect"
import type { ErrorReport } from "../errors.js"
import type { AnyOperation } from "../operations/operation.js"

/** MCP tool names are snake_case by convention: `realizeBatch` is offered as `realize_batch`. */
export const toolName = (operation: AnyOperation): string =>
  operation.name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`)

type ObjectSchema = { readonly type: "object"; readonly [key: string]: unknown }

/**
 * A JSON Schema without `title`s: Effect derives them from its filters (`"int"`, `"between(1, 1000)"`),
 * which clients show to people and models as if they named the field. Descriptions say what a field is.
 */
const withoutTitles = (value: unknown): unknown =>
  Array.isArray(value)
    ? value.map(withoutTitles)
    : typeof value === "object" && value !== null
      ? Object.fromEntries(
          Object.entries(value)
            .filter(([key]) => key !== "title")
            .map(([key, inner]) => [
              key,
              key === "properties" ? propertiesWithoutTitles(inner) : withoutTitles(inner),
            ]),
        )
      : value

/** `properties` maps field names (one may be called `title`) to schemas: only the schemas are cleaned. */
const propertiesWithoutTitles = (properties: unknown): unknown =>
  typeof properties === "object" && properties !== null
    ? Object.fromEntries(Object.entries(properties).map(([name, schema]) => [name, withoutTitles(schema)]))
    : properties

/** An operation schema as the JSON Schema object MCP wants for tool input and output. */
const objectSchema = (schema: Schema.Schema.AnyNoContext, what: string): ObjectSchema => {
  const { $schema: _draft, ...rest } = withoutTitles(JSONSchema.make(schema)) as Record<string, unknown>
  if (rest.type !== "object") throw new Error(`${what} is not a JSON object schema`)
  return { ...rest, type: "object" }
}

/** How an operation is offered as a tool: its schemas, and hints a client uses to decide what to confirm. */
export const toolOf = (operation: AnyOperation): Tool => ({
  name: toolName(operation),
  description: operation.description,
  inputSchema: objectSchema(operation.params, `${operation.name} parameters`),
  outputSchema: objectSchema(operation.result, `${operation.name} result`),
  annotations: {
    readOnlyHint: operation.readOnly,
    destructiveHint: operation.destructive,
    idempotentHint: operation.idempotent,
  },
})

export const successResult = (value: unknown): CallToolResult => ({
  content: [{ type: "text", text: JSON.stringify(value) }],
  structuredContent: value as Record<string, unknown>,
})

/**
 * A failed call as a tool error: the text is the document `owrt --json` prints for the same failure.
 * It carries no `structuredContent`, which clients would check against the success schema.
 */
export const errorResult = (error: ErrorReport): CallToolResult => ({
  content: [{ type: "text", text: JSON.stringify({ error }) }],
  isError: true,
})
