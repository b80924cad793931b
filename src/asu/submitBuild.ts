import { Effect, Either } from "effect"
import { AsuJobRecords } from "../db/asuJobRecords.js"
import { AsuQueueFullError, AsuRequestRejectedError } from "../errors.js"
import { AsuSettingsRef } from "./asuSettings.js"
import {
  type BuildRequest,
  decodeBuildRequest,
  requestedPackages,
  sanitizeProfile,
  type ValidationIssue,
} from "./buildRequest.js"
import { type AsuReply, jobReply } from "./jobResponse.js"
import { requestHash } from "./requestHash.js"
import { validateRequest } from "./validateRequest.js"

/*
 * `POST /api/v1/build` (asu-api.md §4): `,` → `_` in the profile and the hash; a job of that hash in any
 * state is answered at once; else the request is validated (400s), the queue's length checked (529) and
 * the job enqueued under the hash.
 */

/** 422 in FastAPI's shape. */
export const validationReply = (issues: ReadonlyArray<ValidationIssue>): AsuReply => ({
  status: 422,
  headers: {},
  body: { detail: issues },
})

/** A job's time-to-live once finished, as upstream picks it. */
const resultTtl = (
  request: BuildRequest,
  settings: { buildDefaultsTtl: number; buildTtl: number; buildTtlUnversioned: number },
) =>
  request.defaults
    ? settings.buildDefaultsTtl
    : Object.keys(request.packages_versions ?? {}).length > 0
      ? settings.buildTtl
      : settings.buildTtlUnversioned

/** What the request statistics keep of a request: no client, no defaults, no repositories. */
const counted = (request: BuildRequest) => ({
  version: request.version,
  target: request.target,
  profile: request.profile,
  packages: requestedPackages(request),
})

export const submitBuild = (body: unknown, options: { readonly retry?: boolean } = {}) =>
  Effect.gen(function* () {
    const settings = yield* AsuSettingsRef
    const decoded = decodeBuildRequest(body, settings)
    if (Either.isLeft(decoded)) return validationReply(decoded.left)
    const request = sanitizeProfile(decoded.right)
    const hash = requestHash(request)
    const records = yield* AsuJobRecords
    // owrt's addition: a failed (or finished) result can be dropped at once with `?retry=1`.
    if (options.retry) yield* records.forget(hash)
    const existing = yield* records.find(hash)
    if (existing) {
      yield* records.recordRequest(counted(request), existing.status === "finished")
      return yield* jobReply(existing)
    }
    const device = yield* validateRequest(request)
    const queued = yield* records.queued()
    if (queued > settings.maxPendingJobs) return yield* new AsuQueueFullError({ queued })
    // The job's files are under the hash of the request as it will be built: the canonical profile.
    const binDir = requestHash({ ...request, profile: device })
    yield* records.enqueue({
      requestHash: hash,
      request: JSON.stringify(request),
      binDir,
      resultTtlSeconds: resultTtl(request, settings),
      failureTtlSeconds: settings.buildFailureTtl,
    })
    yield* records.recordRequest(counted(request), false)
    const row = yield* records.find(hash)
    if (!row) return yield* new AsuRequestRejectedError({ detail: "the job expired as it was enqueued" })
    return yield* jobReply(row)
  })

/** `GET /api/v1/build/<hash>`: the job, or undefined when none (or it expired). */
export const buildStatus = (hash: string) =>
  Effect.gen(function* () {
    const row = yield* AsuJobRecords.find(hash)
    return row ? yield* jobReply(row) : undefined
  })
