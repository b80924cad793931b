import { Duration, Effect, Either, FiberSet, Schedule } from "effect"
import { AsuJobRecords, type AsuJobRow } from "../db/asuJobRecords.js"
import { AsuSettingsRef } from "./asuSettings.js"
import { AsuBuildFailure, decodeStoredRequest, runBuild } from "./runBuild.js"

/*
 * The ASU build queue's workers: jobs are rows of `asu_jobs` (src/db/asuJobRecords.ts), taken oldest
 * first, at most `concurrency` at once (a semaphore), each within `job_timeout`. On start, a job that was
 * running when the server died is queued again once (a second crash fails it); a clean shutdown puts the
 * jobs it interrupts back in the queue without counting the attempt. Runs until its scope closes.
 */

/** How often an idle worker looks for new jobs (another process may have queued them). */
const idlePoll = Duration.millis(250)

const runJob = (row: AsuJobRow) =>
  Effect.gen(function* () {
    const records = yield* AsuJobRecords
    const settings = yield* AsuSettingsRef
    const hash = row.request_hash
    const outcome = yield* decodeStoredRequest(row.request).pipe(
      Effect.mapError(
        (error) => new AsuBuildFailure("Error: the stored request does not decode", error.message),
      ),
      Effect.flatMap((request) =>
        runBuild(request, row.bin_dir, (stage) => records.stage(hash, stage).pipe(Effect.ignore)),
      ),
      Effect.timeoutFail({
        duration: Duration.seconds(settings.jobTimeout),
        onTimeout: () =>
          new AsuBuildFailure(
            `Error: Task exceeded maximum timeout value (${settings.jobTimeout} seconds)`,
            "",
          ),
      }),
      Effect.either,
    )
    if (Either.isRight(outcome)) {
      yield* records.finish(hash, {
        body: JSON.stringify(outcome.right.body),
        stdout: outcome.right.stdout,
        stderr: "",
      })
    } else {
      yield* records.fail(hash, { detail: outcome.left.detail, stdout: "", stderr: outcome.left.stderr })
    }
  }).pipe(Effect.onInterrupt(() => AsuJobRecords.requeue(row.request_hash).pipe(Effect.ignore)))

export const runBuildQueue = Effect.gen(function* () {
  const settings = yield* AsuSettingsRef
  const records = yield* AsuJobRecords
  yield* records.recover()
  const semaphore = yield* Effect.makeSemaphore(Math.max(1, settings.concurrency))
  const running = yield* FiberSet.make<void, never>()
  const next = Effect.gen(function* () {
    yield* semaphore.take(1)
    const row = yield* records.claimNext().pipe(Effect.onError(() => semaphore.release(1)))
    if (!row) {
      yield* semaphore.release(1)
      yield* Effect.sleep(idlePoll)
      return
    }
    yield* FiberSet.run(
      running,
      runJob(row).pipe(
        Effect.catchAllCause((cause) => Effect.logError("ASU job failed unexpectedly", cause)),
        Effect.ensuring(semaphore.release(1)),
      ),
    )
  }).pipe(
    // A busy database or a full disk: try again shortly; the queue must outlive one bad moment.
    Effect.catchAll((error) =>
      Effect.logWarning(`ASU queue: ${error.message}`).pipe(
        Effect.zipRight(Effect.sleep(Duration.seconds(1))),
      ),
    ),
  )
  yield* Effect.forkScoped(
    records.purgeExpired().pipe(Effect.ignore, Effect.repeat(Schedule.spaced(Duration.minutes(1)))),
  )
  return yield* Effect.forever(next)
})
