import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { Effect, Option } from "effect"
import { toErrorReport } from "../../errors.js"
import { Realizer } from "../../graph/realizer.js"
import { formatBytes } from "../../progress/terminalProgress.js"
import { configOptions, jsonOption } from "../commonOptions.js"
import { emit } from "../output.js"
import { runWithApp } from "../runWithApp.js"

// Loaded when the command runs, so that other commands start without its schemas.
const realizedProfileModule = Effect.promise(() => import("../../operations/realizedProfile.js"))
const distinctSpecsModule = Effect.promise(() => import("../../operations/distinctSpecs.js"))

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
    json: jsonOption,
    ...configOptions,
  },
  (options) =>
    runWithApp(options, () =>
      Effect.gen(function* () {
        const realizer = yield* Realizer
        // `owrt realize a a`, or `a a@3` while they mean the same revision: one build, one build record.
        const { distinctSpecs } = yield* distinctSpecsModule
        const { specs } = yield* distinctSpecs(options.profiles)
        const { results, failures } = yield* realizer.realize({
          specs,
          all: options.all,
          tag: Option.getOrUndefined(options.tag),
          rebuild: options.rebuild,
          keepGoing: options.keepGoing && !options.failFast,
          requestedBy: "cli",
        })
        const { realizedProfileJson } = yield* realizedProfileModule
        yield* emit(
          options.json,
          {
            results: results.map(realizedProfileJson),
            ...(failures.length > 0
              ? {
                  failures: failures.map((f) => ({
                    profile: f.profile,
                    error: toErrorReport(f.error),
                  })),
                }
              : {}),
          },
          () =>
            results.flatMap((r) => [
              `${r.profile}@${r.rev}  ${r.cacheHit ? "cached" : "built"}  ${r.storePath}`,
              ...r.artifacts.map(
                (a) =>
                  `  ${a.type.padEnd(13)} ${formatBytes(a.size).padStart(9)}  ${a.sha256.slice(0, 16)}  ${a.path}`,
              ),
            ]),
        )
        const [first] = failures
        if (first) {
          if (!options.json) {
            for (const f of failures)
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
