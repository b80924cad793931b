import { Effect, ParseResult, Schema } from "effect"
import type { AppServices } from "../app/appLayer.js"
import type { Requester } from "../db/buildRecords.js"
import { InternalError, type OwrtError, UsageError } from "../errors.js"

/** Who is calling: recorded with every build an operation starts (`owrt builds list` shows it). */
export interface OperationContext {
  readonly requestedBy: Requester
}

/**
 * One thing the library can do for a frontend, described well enough to be offered over any protocol:
 * its parameters and result are Schemas (frontends publish them as JSON Schema and decode untrusted input
 * with them), and `run` takes decoded parameters and returns JSON-safe plain data.
 */
export interface Operation<P, R> {
  /** camelCase; frontends derive their own spelling (MCP: snake_case). */
  readonly name: string
  readonly description: string
  /** Changes nothing a user could notice (it may still record revisions it resolves, as every command does). */
  readonly readOnly: boolean
  /** Can overwrite data outside the store (flash). */
  readonly destructive: boolean
  /** Asking twice has the effect of asking once. */
  readonly idempotent: boolean
  readonly params: Schema.Schema<P>
  readonly result: Schema.Schema<R>
  readonly run: (params: P, context: OperationContext) => Effect.Effect<R, OwrtError, AppServices>
}

/** An operation with its types erased, so a table of different ones can be iterated. */
export interface AnyOperation {
  readonly name: string
  readonly description: string
  readonly readOnly: boolean
  readonly destructive: boolean
  readonly idempotent: boolean
  readonly params: Schema.Schema.AnyNoContext
  readonly result: Schema.Schema.AnyNoContext
  /** Decodes untrusted `input` (a `usage` error explains what is wrong), runs, and encodes the result. */
  readonly invoke: (
    input: unknown,
    context: OperationContext,
  ) => Effect.Effect<unknown, OwrtError, AppServices>
}

/**
 * A parse error as one line per problem, `field: what is wrong`. An optional field's "or undefined"
 * alternative is left out: it only restates that the field may be absent.
 */
const describeIssues = (error: ParseResult.ParseError): string => {
  const lines = ParseResult.ArrayFormatter.formatErrorSync(error)
    .filter((issue) => !issue.message.startsWith("Expected undefined,"))
    .map((issue) => `${issue.path.length > 0 ? issue.path.join(".") : "arguments"}: ${issue.message}`)
  return [...new Set(lines)].join("; ")
}

export const defineOperation = <P, R>(
  definition: Omit<Operation<P, R>, "destructive" | "idempotent"> & {
    readonly destructive?: boolean
    readonly idempotent?: boolean
  },
): Operation<P, R> & AnyOperation => {
  const operation: Operation<P, R> = {
    ...definition,
    destructive: definition.destructive ?? false,
    idempotent: definition.idempotent ?? definition.readOnly,
  }
  const decode = Schema.decodeUnknown(operation.params, { errors: "all", onExcessProperty: "error" })
  const encode = Schema.encode(operation.result)
  return {
    ...operation,
    invoke: (input, context) =>
      decode(input ?? {}).pipe(
        Effect.mapError((error) => new UsageError({ detail: `invalid arguments: ${describeIssues(error)}` })),
        Effect.flatMap((params) => operation.run(params, context)),
        // A result that does not match its own schema is a bug in the operation, not the caller's fault.
        Effect.flatMap((result) =>
          encode(result).pipe(Effect.mapError((cause) => new InternalError({ cause }))),
        ),
      ),
  }
}
