import { Data } from "effect"
import { ExitCode, type OwrtError } from "../errors.js"

/*
 * Failures that exist only because the request came over HTTP: they carry the HTTP status next to the
 * stable `code` and `exitCode` every owrt error has, so an API client sees the same error document a
 * script sees from `--json`.
 */

export class BadRequestError extends Data.TaggedError("BadRequestError")<{ readonly detail: string }> {
  readonly code = "bad_request"
  readonly exitCode = ExitCode.usage
  readonly status = 400
  override get message(): string {
    return this.detail
  }
}

export class UnauthorizedError extends Data.TaggedError("UnauthorizedError")<{ readonly detail: string }> {
  readonly code = "unauthorized"
  readonly exitCode = ExitCode.usage
  readonly status = 401
  override get message(): string {
    return this.detail
  }
}

export class PathOutsideStoreError extends Data.TaggedError("PathOutsideStoreError")<{
  readonly path: string
}> {
  readonly code = "path_outside_store"
  readonly exitCode = ExitCode.usage
  readonly status = 403
  override get message(): string {
    return `${this.path} does not name a file inside a served store path`
  }
}

export class StorePathPrivateError extends Data.TaggedError("StorePathPrivateError")<{
  readonly path: string
}> {
  readonly code = "store_path_private"
  readonly exitCode = ExitCode.usage
  readonly status = 403
  override get message(): string {
    return `${this.path} holds secret values (its profile uses secrets): this server serves such files only when it requires a token (owrt serve --token, or OWRT_SERVE_TOKEN)`
  }
}

export class RouteNotFoundError extends Data.TaggedError("RouteNotFoundError")<{
  readonly method: string
  readonly path: string
}> {
  readonly code = "not_found"
  readonly exitCode = ExitCode.notFound
  readonly status = 404
  override get message(): string {
    return `no such resource: ${this.method} ${this.path} (see /openapi.json)`
  }
}

export class MethodNotAllowedError extends Data.TaggedError("MethodNotAllowedError")<{
  readonly method: string
  readonly path: string
  readonly allowed: ReadonlyArray<string>
}> {
  readonly code = "method_not_allowed"
  readonly exitCode = ExitCode.usage
  readonly status = 405
  override get message(): string {
    return `${this.method} is not allowed on ${this.path} (allowed: ${this.allowed.join(", ")})`
  }
}

export class BodyTooLargeError extends Data.TaggedError("BodyTooLargeError")<{ readonly limit: number }> {
  readonly code = "body_too_large"
  readonly exitCode = ExitCode.usage
  readonly status = 413
  override get message(): string {
    return `request body larger than ${this.limit} bytes`
  }
}

export class UnsupportedMediaTypeError extends Data.TaggedError("UnsupportedMediaTypeError")<{
  readonly contentType: string
}> {
  readonly code = "unsupported_media_type"
  readonly exitCode = ExitCode.usage
  readonly status = 415
  override get message(): string {
    return `request bodies are JSON (application/json), not ${this.contentType}`
  }
}

export class RangeNotSatisfiableError extends Data.TaggedError("RangeNotSatisfiableError")<{
  readonly range: string
  readonly size: number
}> {
  readonly code = "range_not_satisfiable"
  readonly exitCode = ExitCode.usage
  readonly status = 416
  override get message(): string {
    return `range \`${this.range}\` is not satisfiable for ${this.size} bytes`
  }
}

export class FlashDisabledError extends Data.TaggedError("FlashDisabledError")<Record<never, never>> {
  readonly code = "flash_disabled"
  readonly exitCode = ExitCode.notFound
  readonly status = 404
  override get message(): string {
    return "flashing is disabled on this server (start it with `owrt serve --allow-flash`)"
  }
}

export type HttpOnlyError =
  | BadRequestError
  | UnauthorizedError
  | PathOutsideStoreError
  | StorePathPrivateError
  | RouteNotFoundError
  | MethodNotAllowedError
  | BodyTooLargeError
  | UnsupportedMediaTypeError
  | RangeNotSatisfiableError
  | FlashDisabledError

export type ApiError = OwrtError | HttpOnlyError

const statusByCode: Readonly<Record<string, number>> = {
  revision_ambiguous: 400,
  download_failed: 502,
  checksum_mismatch: 502,
  signature_unknown_key: 502,
  signature_invalid: 502,
  signature_missing: 502,
  archive_unsafe: 502,
  archive_corrupt: 502,
}

const statusByExitCode: Readonly<Record<number, number>> = {
  [ExitCode.usage]: 400,
  [ExitCode.invalid]: 422,
  [ExitCode.notFound]: 404,
  [ExitCode.unavailable]: 409,
  [ExitCode.integrity]: 409,
  [ExitCode.buildFailed]: 422,
  [ExitCode.flashRefused]: 409,
  [ExitCode.flashMismatch]: 409,
  [ExitCode.busy]: 503,
  [ExitCode.interrupted]: 503,
}

/**
 * The HTTP status of an error: its own for HTTP-only errors; otherwise from its code or exit code, so that
 * a new core error gets a sensible status without a change here.
 */
export const httpStatusOf = (error: { readonly code: string; readonly exitCode: number }): number =>
  "status" in error && typeof error.status === "number"
    ? error.status
    : (statusByCode[error.code] ?? statusByExitCode[error.exitCode] ?? 500)
