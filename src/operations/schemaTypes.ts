import { Schema } from "effect"

/*
 * Building blocks whose JSON Schema is inline and plain (`Schema.Int` would become a `$ref` into `$defs`),
 * because MCP and OpenAPI clients show these schemas to people and models.
 */

export const Integer = Schema.Number.pipe(Schema.int())

/** Parameters of an operation that takes none: still a JSON object, as MCP requires of tool inputs. */
export const NoParams = Schema.Struct({}).annotations({
  jsonSchema: { type: "object", properties: {}, additionalProperties: false },
})
