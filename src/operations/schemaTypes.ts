import { Schema } from "effect"
import { WarningCode } from "../errors.js"

/*
 * Building blocks whose JSON Schema is inline and plain (`Schema.Int` would become a `$ref` into `$defs`),
 * because MCP and OpenAPI clients show these schemas to people and models.
 */

export const Integer = Schema.Number.pipe(Schema.int())

/** Parameters of an operation that takes none: still a JSON object, as MCP requires of tool inputs. */
export const NoParams = Schema.Struct({}).annotations({
  jsonSchema: { type: "object", properties: {}, additionalProperties: false },
})

/** A warning of a whole run (not of one profile): a shared cache that could not be used, a push that failed. */
export const RunWarningSchema = Schema.Struct({
  code: Schema.Literal(
    WarningCode.cacheUnavailable,
    WarningCode.substituteRefused,
    WarningCode.cachePushFailed,
  ).annotations({
    description: "Stable snake_case warning code",
  }),
  message: Schema.String,
  cause: Schema.String.annotations({
    description: "The error code behind it: cache_registry_unavailable, cache_signature_untrusted, …",
  }),
})
