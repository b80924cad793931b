import { hostname } from "node:os"
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { SqlClient } from "@effect/sql"
import { Effect, Option } from "effect"
import { cliCaller } from "../cliCaller.js"
import { configOptions, jsonOption } from "../commonOptions.js"
import { emit, formatTime, table } from "../output.js"
import { runWithApp } from "../runWithApp.js"

// Loaded when a command runs, so that other commands start without their schemas.
const buildOperations = Effect.promise(async () => ({
  ...(await import("../../operations/buildLog.js")),
  ...(await import("../../operations/buildSummary.js")),
  ...(await import("../../operations/listBuilds.js")),
}))

const list = Command.make(
  "list",
  {
    profile: Options.text("profile").pipe(
      Options.optional,
      Options.withDescription("Only builds of this profile"),
    ),
    limit: Options.integer("limit").pipe(
      Options.withDefault(50),
      Options.withDescription("How many, newest first (default: 50)"),
    ),
    json: jsonOption,
    ...configOptions,
  },
  (options) =>
    runWithApp(options, () =>
      Effect.gen(function* () {
        const { listBuilds } = yield* buildOperations
        const listed = yield* listBuilds.run(
          { profile: Option.getOrUndefined(options.profile), limit: options.limit },
          cliCaller,
        )
        // Records shared in PostgreSQL hold other machines' builds: then a HOST column says whose.
        const showHost = listed.builds.some((b) => b.host !== null && b.host !== hostname())
        yield* emit(options.json, listed, (value) =>
          value.builds.length === 0
            ? ["no builds yet"]
            : table([
                [
                  "ID",
                  "PROFILE",
                  "STATUS",
                  "CACHE",
                  "BY",
                  ...(showHost ? ["HOST"] : []),
                  "STARTED",
                  "TIME",
                  "ERROR",
                ],
                ...value.builds.map((b) => [
                  String(b.id),
                  `${b.profile}@${b.rev ?? "?"}`,
                  b.status,
                  b.cacheHit ? "hit" : b.substituted ? "substituted" : "-",
                  b.requestedBy,
                  ...(showHost ? [b.host ?? "?"] : []),
                  formatTime(b.startedAt),
                  b.durationMs === null ? "-" : `${(b.durationMs / 1000).toFixed(1)}s`,
                  b.error?.code ?? "",
                ]),
              ]),
        )
      }),
    ),
).pipe(Command.withDescription("List recorded builds, newest first"))

const buildId = Args.integer({ name: "build-id" })

const show = Command.make("show", { id: buildId, json: jsonOption, ...configOptions }, (options) =>
  runWithApp(options, () =>
    Effect.gen(function* () {
      const { buildSummaryJson, requireBuild } = yield* buildOperations
      const build = buildSummaryJson(yield* requireBuild(options.id))
      yield* emit(options.json, build, (b) => [
        `build ${b.id}: ${b.profile}@${b.rev ?? "?"} ${b.status}${b.cacheHit ? " (cache hit)" : b.substitutedFrom !== null ? ` (substituted from ${b.substitutedFrom})` : ""}, asked by ${b.requestedBy}`,
        `  revision           ${b.revision}`,
        `  fetch-builder      ${b.keys.fetchBuilder ?? "-"}`,
        `  stage-overlay      ${b.keys.stageOverlay ?? "-"}`,
        `  make-image         ${b.keys.makeImage ?? "-"}`,
        `  collect-artifacts  ${b.keys.collectArtifacts ?? "-"}`,
        `  started ${formatTime(b.startedAt)}${b.durationMs === null ? "" : `, took ${(b.durationMs / 1000).toFixed(1)}s`}`,
        ...(b.error ? [`  error[${b.error.code}]: ${b.error.message}`] : []),
      ])
    }),
  ),
).pipe(Command.withDescription("Show one build: keys, timings, status, error"))

const log = Command.make("log", { id: buildId, json: jsonOption, ...configOptions }, (options) =>
  runWithApp(options, () =>
    Effect.gen(function* () {
      yield* SqlClient.SqlClient
      const { buildLog, requireBuild } = yield* buildOperations
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
