import { Cause, Option, Schema } from "effect"
import { describeCause, type ErrorReport, ExitCode, isOwrtError, toErrorReport } from "../errors.js"
import { Integer } from "./schemaTypes.js"

/** The stable, machine-readable face of an error (`toErrorReport`), as results embed it. */
export const ErrorReportSchema = Schema.Struct({
  code: Schema.String.annotations({ description: "Stable snake_case error code" }),
  message: Schema.String,
  exitCode: Integer.annotations({ description: "What the CLI would exit with" }),
})

/**
 * How an operation that did not succeed ended, as an error report: its typed failure, an interruption
 * (`interrupted`, 130), or a defect (`internal`, 70) — what the CLI prints for the same ending.
 */
export const reportCause = (cause: Cause.Cause<unknown>): ErrorReport => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure) && isOwrtError(failure.value)) return toErrorReport(failure.value)
  if (Cause.isInterruptedOnly(cause)) {
    return { code: "interrupted", message: "interrupted", exitCode: ExitCode.interrupted }
  }
  return {
    code: "internal",
    message: `internal error: ${describeCause(Cause.squash(cause))}`,
    exitCode: ExitCode.internal,
  }
}
