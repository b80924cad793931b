import { existsSync, readFileSync } from "node:fs"
import { join } from "node:path"
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { SqlClient } from "@effect/sql"
import { Effect, Option } from "effect"
import { AppConfig } from "../../config/appConfig.js"
import { type BuildRow, effectiveStatus, findBuild, listBuilds } from "../../db/buildRecords.js"
import { findStorePath } from "../../db/storePathRecords.js"
import { NotFoundError } from "../../errors.js"
import { configOptions, jsonOption } from "../commonOptions.js"
import { emit, table } from "../output.js"
import { runWithApp } from "../runWithApp.js"

export const buildJson = (row: BuildRow) => ({
  id: row.id,
  profile: row.profile,
  rev: row.revision_seq,
  revision: row.revision_hash,
  status: effectiveStatus(row),
  cacheHit: row.cache_hit === 1,
  requestedBy: row.requested_by,
  keys: {
    fetchBuilder: row.builder_key,
    stageOverlay: row.overlay_key,
    makeImage: row.image_key,
    collectArtifacts: row.artifacts_key,
  },
  startedAt: row.started_at,
  finishedAt: row.finished_at,
  durationMs: row.duration_ms,
  error: row.error_code ? { code: row.error_code, message: row.error_message } : null,
})

const list = Command.make(
  "list",
  {
    profile: Options.text("profile").pipe(
      Options.optional,
      Options.withDescription("Only builds of this profile"),
    ),
    limit: Options.integer("limit").pipe(
      Options.withDefault(50),
      Options.withDescription("How many, newest first"),
    ),
    json: jsonOption,
    ...configOptions,
  },
  (options) =>
    runWithApp(options, () =>
      Effect.gen(function* () {
        const rows = yield* listBuilds({
          profile: Option.getOrUndefined(options.profile),
          limit: options.limit,
        })
        yield* emit(options.json, { builds: rows.map(buildJson) }, (value) =>
          value.builds.length === 0
            ? ["no builds yet"]
            : table([
                ["ID", "PROFILE", "STATUS", "CACHE", "BY", "STARTED", "TIME", "ERROR"],
                ...value.builds.map((b) => [
                  String(b.id),
                  `${b.profile}@${b.rev ?? "?"}`,
                  b.status,
                  b.cacheHit ? "hit" : "-",
                  b.requestedBy,
                  b.startedAt.slice(0, 19).replace("T", " "),
                  b.durationMs === null ? "-" : `${(b.durationMs / 1000).toFixed(1)}s`,
                  b.error?.code ?? "",
                ]),
              ]),
        )
      }),
    ),
).pipe(Command.withDescription("List recorded builds, newest first"))

const buildId = Args.integer({ name: "build-id" })

const requireBuild = (id: number) =>
  Effect.flatMap(findBuild(id), (row) =>
    row
      ? Effect.succeed(row)
      : Effect.fail(
          new NotFoundError({ what: `build ${id}`, detail: "no such build (see owrt builds list)" }),
        ),
  )

const show = Command.make("show", { id: buildId, json: jsonOption, ...configOptions }, (options) =>
  runWithApp(options, () =>
    Effect.gen(function* () {
      const build = buildJson(yield* requireBuild(options.id))
      yield* emit(options.json, build, (b) => [
        `build ${b.id}: ${b.profile}@${b.rev ?? "?"} ${b.status}${b.cacheHit ? " (cache hit)" : ""}, asked by ${b.requestedBy}`,
        `  revision           ${b.revision}`,
        `  fetch-builder      ${b.keys.fetchBuilder ?? "-"}`,
        `  stage-overlay      ${b.keys.stageOverlay ?? "-"}`,
        `  make-image         ${b.keys.makeImage ?? "-"}`,
        `  collect-artifacts  ${b.keys.collectArtifacts ?? "-"}`,
        `  started ${b.startedAt}${b.durationMs === null ? "" : `, took ${(b.durationMs / 1000).toFixed(1)}s`}`,
        ...(b.error ? [`  error[${b.error.code}]: ${b.error.message}`] : []),
      ])
    }),
  ),
).pipe(Command.withDescription("Show one build: keys, timings, status, error"))

/** A build's log: the make-image output in the store, or the copy kept when the build failed. */
export const buildLog = (row: BuildRow) =>
  Effect.gen(function* () {
    const config = yield* AppConfig
    const failed = join(config.store, "logs", `build-${row.id}.log`)
    if (existsSync(failed)) return readFileSync(failed, "utf8")
    if (row.image_key) {
      const stored = yield* findStorePath(row.image_key)
      const path = stored ? join(config.store, `${row.image_key}-${stored.name}`, "build.log") : undefined
      if (path && existsSync(path)) return readFileSync(path, "utf8")
    }
    return yield* new NotFoundError({
      what: `build ${row.id}`,
      detail: "no log (it ran no make, or the log was removed)",
    })
  })

const log = Command.make("log", { id: buildId, json: jsonOption, ...configOptions }, (options) =>
  runWithApp(options, () =>
    Effect.gen(function* () {
      yield* SqlClient.SqlClient
      const text = yield* buildLog(yield* requireBuild(options.id))
      if (options.json) yield* emit(true, { id: options.id, log: text }, () => [])
      else process.stdout.write(text)
    }),
  ),
).pipe(Command.withDescription("Print a build's make log"))

export const buildsCommand = Command.make("builds").pipe(
  Command.withDescription("Query the build records"),
  Command.withSubcommands([list, show, log]),
)
