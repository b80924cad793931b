import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { Effect, Option } from "effect"
import { formatBytes } from "../../progress/terminalProgress.js"
import { cliCaller } from "../cliCaller.js"
import { configOptions, jsonOption } from "../commonOptions.js"
import { emit } from "../output.js"
import { runWithApp } from "../runWithApp.js"

// Loaded when the command runs, so that other commands start without its schemas.
const realizeBatchModule = Effect.promise(() => import("../../operations/realizeBatch.js"))

export const profilesArg = Args.text({ name: "profile" }).pipe(
  Args.repeated,
  Args.withDescription("Profiles to build: id or id@rev (a revision number, hash prefix or git commit)"),
)
export const allOption = Options.boolean("all").pipe(
  Options.withDescription("Every concrete (non-abstract) profile"),
)
export const tagOption = Options.text("tag").pipe(
  Options.optional,
  Options.withDescription("Profiles with this tag"),
)

export const realizeCommand = Command.make(
  "realize",
  {
    profiles: profilesArg,
    all: allOption,
    tag: tagOption,
    keepGoing: Options.boolean("keep-going").pipe(
      Options.withAlias("k"),
      Options.withDescription("Build every profile even when one fails (default: stop at the first failure)"),
    ),
    failFast: Options.boolean("fail-fast").pipe(
      Options.withDescription("Stop at the first failure (the default)"),
    ),
    rebuild: Options.boolean("rebuild").pipe(
      Options.withDescription("Build make-image and collect-artifacts again even if stored"),
    ),
    requireSubstitutes: Options.boolean("require-substitutes").pipe(
      Options.withDescription(
        "Fail instead of building: every node not in the store must come from the shared cache (cache.substituters)",
      ),
    ),
    json: jsonOption,
    ...configOptions,
  },
  (options) =>
    runWithApp(options, () =>
      Effect.gen(function* () {
        // The batch operation MCP and the HTTP API run: one path, one `--json` shape.
        const { runBatch } = yield* realizeBatchModule
        const { report, firstBuildFailure } = yield* runBatch(
          {
            profiles: options.profiles,
            all: options.all,
            tag: Option.getOrUndefined(options.tag),
            rebuild: options.rebuild,
            requireSubstitutes: options.requireSubstitutes,
            mode: options.keepGoing && !options.failFast ? "best-effort" : "fail-fast",
          },
          cliCaller,
        )
        if (!options.json)
          for (const w of report.warnings) process.stderr.write(`owrt: warning[${w.code}]: ${w.message}\n`)
        // Fail-fast: the build failure that stopped the others is the command's error, as for one profile.
        if (firstBuildFailure) return yield* Effect.fail(firstBuildFailure)
        if (!options.json) {
          for (const r of report.results)
            for (const w of r.warnings)
              process.stderr.write(`owrt: ${r.profile}: warning[${w.code}]: ${w.message}\n`)
        }
        yield* emit(options.json, report, () =>
          report.results.flatMap((r) => [
            `${r.profile}@${r.rev}  ${r.cacheHit ? "cached" : r.substituted ? "substituted" : "built"}  ${r.storePath}`,
            ...r.artifacts.map(
              (a) =>
                `  ${a.type.padEnd(13)} ${(a.filesystem ?? "-").padEnd(9)} ${formatBytes(a.size).padStart(9)}  ${a.sha256.slice(0, 16)}  ${a.path}`,
            ),
          ]),
        )
        const [first] = report.failures
        if (first) {
          if (!options.json) {
            for (const f of report.failures)
              process.stderr.write(`owrt: ${f.profile}: error[${f.error.code}]: ${f.error.message}\n`)
          }
          process.exitCode = first.error.exitCode
        }
      }),
    ),
).pipe(
  Command.withDescription(
    "Build profiles into verified images in the store, reusing everything already built",
  ),
)
