import { randomBytes } from "node:crypto"
import { Cause, Effect, Exit, FiberSet, Stream } from "effect"
import type { AppServices } from "../../app/appLayer.js"
import { NotFoundError, type OwrtError, UsageError } from "../../errors.js"
import { Realizer } from "../../graph/realizer.js"
import { reportCause } from "../../operations/errorReport.js"
import { realize } from "../../operations/index.js"
import type { OperationContext } from "../../operations/operation.js"
import { ProfileRepository } from "../../profile/profileRepository.js"
import { Progress } from "../../progress/progress.js"
import { Job, type JobEvent } from "./job.js"

/** Finished jobs kept for clients that poll late; the oldest go first. */
const keptJobs = 200

export interface JobBoard {
  /**
   * Starts a job for the profile revision `profile` resolves to, or joins the one already running for
   * the same revision (and rebuild flag), or — not for a rebuild — answers with the job that last built
   * it when its result is still what a realize would give (`joined` is true for both). Resolution errors
   * (unknown profile, bad revision) fail here.
   */
  readonly submit: (
    params: { readonly profile: string; readonly rebuild?: boolean | undefined },
    context: OperationContext,
  ) => Effect.Effect<{ readonly job: Job; readonly joined: boolean }, OwrtError, AppServices>
  readonly find: (id: string) => Effect.Effect<Job, NotFoundError>
  readonly list: () => ReadonlyArray<Job>
  /** The job's events from `from` on, live until it ends. */
  readonly follow: (job: Job, from: number) => Stream.Stream<JobEvent>
  /** Interrupts every running job and waits for each to record its end. */
  readonly shutdown: Effect.Effect<void>
}

/**
 * The server's realize jobs. At most `maxJobs` run at once (the rest wait as `queued`); each runs the
 * `realize` operation in the server's runtime, and the Progress layer this board provides to the core
 * feeds each job's log and node states.
 */
export const makeJobBoard = (maxJobs: number) =>
  Effect.gen(function* () {
    const fibers = yield* FiberSet.make()
    const slots = yield* Effect.makeSemaphore(maxJobs)
    // Insertion order is recency: a job asked for again moves to the end.
    const jobs = new Map<string, Job>()
    const running = new Map<string, Job>()
    /** By key: the last job that succeeded (never a rebuild), to answer identical requests with. */
    const succeeded = new Map<string, Job>()

    const forget = () => {
      const finished = [...jobs.values()].filter((j) => j.finished)
      for (const job of finished.slice(0, Math.max(0, finished.length - keptJobs))) {
        jobs.delete(job.id)
        if (succeeded.get(job.key) === job) succeeded.delete(job.key)
      }
    }

    /**
     * Whether a finished job's result is still what realizing its revision would give: the collect-artifacts
     * key a plan computes now (builder resolution, secrets and all) is the job's, and valid in the store.
     */
    const stillCurrent = (job: Job) =>
      Effect.gen(function* () {
        const key = job.result?.key
        if (key === undefined) return false
        const [planned] = yield* (yield* Realizer).plan({ specs: [`${job.profile}@${job.revision}`] })
        const artifacts = planned?.nodes.find((node) => node.kind === "collect-artifacts")
        return artifacts !== undefined && artifacts.key === key && artifacts.status === "cached"
      }).pipe(Effect.orElseSucceed(() => false))

    const join = (job: Job) => {
      job.requests += 1
      jobs.delete(job.id)
      jobs.set(job.id, job)
      return { job, joined: true }
    }

    const run = (job: Job, context: OperationContext) =>
      slots
        .withPermits(1)(
          Effect.suspend(() => {
            job.start()
            // The exact revision resolved at submission, not whatever the working tree holds by now.
            return realize
              .run({ profile: `${job.profile}@${job.revision}`, rebuild: job.rebuild }, context)
              .pipe(Effect.provideService(Progress, { report: (event) => job.progress(event) }))
          }),
        )
        .pipe(
          Effect.onExit((exit) =>
            Effect.sync(() => {
              if (running.get(job.key) === job) running.delete(job.key)
              if (Exit.isSuccess(exit)) {
                job.succeed(exit.value)
                if (!job.rebuild) succeeded.set(job.key, job)
              } else if (Cause.isInterruptedOnly(exit.cause)) job.interrupt()
              else job.fail(reportCause(exit.cause))
              forget()
            }),
          ),
        )

    const submit: JobBoard["submit"] = (params, context) =>
      Effect.gen(function* () {
        const { revision, record } = yield* (yield* ProfileRepository).resolve(params.profile)
        if (revision.profile.abstract) {
          return yield* new UsageError({
            detail: `${revision.profile.id} is abstract (a parent only) and is not built`,
          })
        }
        const rebuild = params.rebuild === true
        const key = `${revision.profile.id}@${revision.hash}${rebuild ? "+rebuild" : ""}`
        const current = running.get(key)
        if (current && !current.finished) return join(current)
        // Asking again for what was just built is answered by that job, not by a new build record.
        const done = rebuild ? undefined : succeeded.get(key)
        if (done) {
          if (yield* stillCurrent(done)) return join(done)
          if (succeeded.get(key) === done) succeeded.delete(key)
        }
        // The check above yielded: an identical request may have started a job meanwhile.
        const started = running.get(key)
        if (started && !started.finished) return join(started)
        const job = new Job(
          randomBytes(6).toString("hex"),
          key,
          revision.profile.id,
          record.seq,
          revision.hash,
          rebuild,
          context.requestedBy,
        )
        jobs.set(job.id, job)
        running.set(key, job)
        yield* FiberSet.run(fibers, run(job, context))
        return { job, joined: false }
      })

    const find = (id: string) => {
      const job = jobs.get(id)
      return job
        ? Effect.succeed(job)
        : Effect.fail(
            new NotFoundError({ what: `job ${id}`, detail: "no such job on this server (see /api/jobs)" }),
          )
    }

    // Unbounded: a replay of hundreds of events must reach the client whole and in order.
    const follow = (job: Job, from: number) =>
      Stream.async<JobEvent>((emit) => {
        const deliver = (event: JobEvent) => {
          void emit.single(event)
          if (event.type === "end") void emit.end()
        }
        const past = job.eventsFrom(from)
        for (const event of past) deliver(event)
        if (job.finished) {
          void emit.end()
          return
        }
        const stop = job.listen(deliver)
        return Effect.sync(stop)
      }, "unbounded")

    return {
      submit,
      find,
      list: () => [...jobs.values()].reverse(),
      follow,
      shutdown: FiberSet.clear(fibers),
    } satisfies JobBoard
  })
