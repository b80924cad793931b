import { Effect, Schema } from "effect"
import { type ErrorReport, type OwrtError, toErrorReport } from "../errors.js"
import { Realizer } from "../graph/realizer.js"
import { makeSubstituteRun, SubstituteRun } from "../graph/substituter.js"
import { distinctSpecs } from "./distinctSpecs.js"
import { ErrorReportSchema } from "./errorReport.js"
import { defineOperation, type OperationContext } from "./operation.js"
import { type RealizedProfile, RealizedProfileSchema, realizedProfileJson } from "./realizedProfile.js"
import { ProfileSpecSchema } from "./revision.js"
import { Integer, RunWarningSchema } from "./schemaTypes.js"
import { SelectionFields } from "./selection.js"

/**
 * The most profile specs one batch may name (MCP `realize_batch`, `POST /api/realize/batch`). A larger
 * request is refused as a usage error before anything is resolved or built. `all` and `tag` select from
 * the project's own profiles and are not counted.
 */
export const maxBatchProfiles = 256

const tooMany = `at most ${maxBatchProfiles} profiles per batch: split larger batches (naming a profile twice builds it once)`

type Outcome =
  | { readonly _tag: "built"; readonly result: RealizedProfile & { readonly buildId: number } }
  | { readonly _tag: "failed"; readonly profile: string; readonly error: ErrorReport }

const BatchParamsSchema = Schema.Struct({
  ...SelectionFields,
  profiles: Schema.optional(
    Schema.Array(ProfileSpecSchema).pipe(
      Schema.maxItems(maxBatchProfiles, {
        message: () => tooMany,
        description: `Profiles: id or id@rev, at most ${maxBatchProfiles}; specs naming the same revision are built once`,
      }),
    ),
  ),
  mode: Schema.optional(Schema.Literal("fail-fast", "best-effort")).annotations({
    description:
      "fail-fast (default): stop the others at the first failure; best-effort: build every profile",
  }),
  rebuild: Schema.optional(
    Schema.Boolean.annotations({
      description: "Build make-image and collect-artifacts again even if stored",
    }),
  ),
  requireSubstitutes: Schema.optional(
    Schema.Boolean.annotations({
      description:
        "Every node not in the store must come from a shared cache: one that would be built here fails the profile with the cache's error code (for CI jobs that must not build)",
    }),
  ),
})
type BatchParams = typeof BatchParamsSchema.Type

/** What `owrt realize --json`, MCP `realize_batch` and `POST /api/realize/batch` report. */
export const BatchReportSchema = Schema.Struct({
  mode: Schema.Literal("fail-fast", "best-effort"),
  results: Schema.Array(Schema.Struct({ ...RealizedProfileSchema.fields, buildId: Integer })),
  failures: Schema.Array(Schema.Struct({ profile: Schema.String, error: ErrorReportSchema })),
  warnings: Schema.Array(RunWarningSchema).annotations({
    description:
      "What went wrong beside the builds, once per code and cause: a shared cache that could not be asked (cache_unavailable), an entry refused (substitute_refused), a push that failed (cache_push_failed)",
  }),
  skipped: Schema.Array(Schema.String).annotations({
    description: "Profiles stopped or never started because another failed first (fail-fast)",
  }),
  totals: Schema.Struct({
    requested: Integer.annotations({ description: "Distinct profile revisions the batch named" }),
    merged: Integer.annotations({
      description: "Specs left out because an earlier one named the same profile revision",
    }),
    succeeded: Integer,
    cacheHits: Integer,
    failed: Integer,
    skipped: Integer,
  }),
})
export type BatchReport = typeof BatchReportSchema.Type

/**
 * Realizes a selection of profiles, each on its own (one build record each), concurrently under the
 * executor's limits. fail-fast stops the others at the first build failure; a profile an `all`/`tag`
 * selection finds broken is a failure of its own in either mode and stops nothing. `firstBuildFailure` is
 * the error that stopped a fail-fast batch (the CLI exits with it).
 */
export const runBatch = (params: BatchParams, context: OperationContext) =>
  Effect.gen(function* () {
    const realizer = yield* Realizer
    const mode = params.mode ?? "fail-fast"
    // `a a`, or `a` and `a@3` while they mean the same revision: one build, one build record.
    const distinct = yield* distinctSpecs(params.profiles ?? [])
    const { targets, broken } = yield* realizer.selectReporting({
      specs: distinct.specs,
      all: params.all,
      tag: params.tag,
    })
    const substitution = makeSubstituteRun(params.requireSubstitutes === true)
    const names = targets.map((t) => (typeof t === "string" ? t : t.revision.profile.id))
    const outcomes: Array<Outcome | undefined> = names.map(() => undefined)
    let firstBuildFailure: OwrtError | undefined
    const realizeOne = (name: string, index: number) =>
      realizer.realize({ specs: [name], rebuild: params.rebuild, requestedBy: context.requestedBy }).pipe(
        Effect.provideService(SubstituteRun, substitution.service),
        Effect.flatMap(({ results: [result] }) =>
          Effect.sync(() => {
            if (result)
              outcomes[index] = {
                _tag: "built",
                result: { ...realizedProfileJson(result), buildId: result.buildId },
              }
          }),
        ),
        Effect.catchAll((error) => {
          outcomes[index] = { _tag: "failed", profile: name, error: toErrorReport(error) }
          firstBuildFailure ??= error
          // In fail-fast mode the failure interrupts the profiles still building; they end up `skipped`.
          return mode === "fail-fast" ? Effect.fail(error) : Effect.void
        }),
      )
    yield* Effect.forEach(names, realizeOne, { concurrency: "unbounded", discard: true }).pipe(Effect.ignore)
    const results = outcomes.flatMap((o) => (o?._tag === "built" ? [o.result] : []))
    const failures = [
      ...broken.map((b) => ({ profile: b.profile, error: toErrorReport(b.error) })),
      ...outcomes.flatMap((o) => (o?._tag === "failed" ? [{ profile: o.profile, error: o.error }] : [])),
    ]
    const skipped = names.filter((_, i) => outcomes[i] === undefined)
    const report: BatchReport = {
      mode,
      results,
      failures,
      warnings: substitution.warnings,
      skipped,
      totals: {
        requested: names.length + broken.length,
        merged: distinct.merged,
        succeeded: results.length,
        cacheHits: results.filter((r) => r.cacheHit).length,
        failed: failures.length,
        skipped: skipped.length,
      },
    }
    return { report, firstBuildFailure: mode === "fail-fast" ? firstBuildFailure : undefined }
  })

export const realizeBatch = defineOperation({
  name: "realizeBatch",
  description:
    "Build several profiles at once (by name, --all or tag), reusing what is stored. fail-fast stops at the first failure; best-effort builds the rest. Reports every profile's outcome and totals",
  readOnly: false,
  idempotent: true,
  params: BatchParamsSchema,
  result: BatchReportSchema,
  run: (params, context) => Effect.map(runBatch(params, context), ({ report }) => report),
})
