import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { Effect, Option } from "effect"
import { cliCaller } from "../cliCaller.js"
import { configOptions, jsonOption } from "../commonOptions.js"
import { emit, table } from "../output.js"
import { runWithApp } from "../runWithApp.js"
import { reportProfileErrors, revisionName, unrecordedNote } from "./profilesCommand.js"
import { allOption, profilesArg, tagOption } from "./realizeCommand.js"

// Loaded when the command runs, so that other commands start without its schemas.
const planModule = Effect.promise(() => import("../../operations/plan.js"))

/** The node kinds of each column of the human plan table. */
const planColumns: ReadonlyArray<ReadonlyArray<string>> = [
  ["fetch-builder", "fetch-base-image"],
  ["stage-overlay"],
  ["make-image", "customise-image"],
  ["collect-artifacts"],
]

export const planCommand = Command.make(
  "plan",
  {
    profiles: profilesArg,
    all: allOption,
    tag: tagOption,
    since: Options.text("since").pipe(
      Options.optional,
      Options.withDescription(
        "Only profiles whose resolved revision differs from this git ref (what CI builds)",
      ),
    ),
    explain: Options.boolean("explain").pipe(
      Options.withDescription(
        "For every node that is not cached, say which inputs differ from the stored one",
      ),
    ),
    json: jsonOption,
    ...configOptions,
  },
  (options) =>
    runWithApp(options, () =>
      Effect.gen(function* () {
        const since = Option.getOrUndefined(options.since)
        const { plan } = yield* planModule
        const planned = yield* plan.run(
          {
            profiles: options.profiles,
            all: options.all,
            tag: Option.getOrUndefined(options.tag),
            since,
            explain: options.explain,
          },
          cliCaller,
        )
        yield* emit(options.json, planned, (value) =>
          value.profiles.length === 0
            ? value.errors.length > 0
              ? []
              : [since !== undefined ? `no profile changed since ${since}` : "nothing to plan"]
            : [
                ...table([
                  ["PROFILE", "STATUS", "FETCH", "STAGE", "IMAGE", "ARTIFACTS"],
                  ...value.profiles.map((p) => [
                    revisionName(p.profile, p.rev),
                    p.status === "missing" ? "to build" : p.status,
                    // One column per role, whichever kind fills it (Raspberry Pi OS profiles stage nothing).
                    ...planColumns.map((kinds) => {
                      const n = p.nodes.find((node) => kinds.includes(node.kind))
                      return n === undefined
                        ? "-"
                        : `${n.key ?? "?"} ${n.status === "cached" ? "✓" : n.status === "remote" ? "↓" : "·"}`
                    }),
                  ]),
                ]),
                "",
                // The legend names ↓ whenever a node shows it (a profile can be "to build" with some of its
                // nodes in the shared cache: those whose keys need the builder are not known before it).
                `${value.summary.cached} cached, ${value.summary.missing} to build${value.summary.remote > 0 ? `, ${value.summary.remote} in the shared cache` : ""} (✓ in the store, ${value.profiles.some((p) => p.nodes.some((n) => n.status === "remote")) ? "↓ in the shared cache, " : ""}· to build, ? known once the builder is fetched)`,
                ...(value.profiles.some((p) => p.rev === null) ? [`(not recorded): ${unrecordedNote}`] : []),
                ...value.profiles.flatMap((p) => {
                  const why = p.nodes.filter((n) => n.explain !== undefined)
                  return why.length === 0
                    ? []
                    : [
                        "",
                        `${revisionName(p.profile, p.rev)}:`,
                        ...why.map((n) => `  ${n.kind}: ${n.explain?.changes.join("; ") ?? ""}`),
                      ]
                }),
              ],
        )
        yield* reportProfileErrors(options.json, planned.errors)
      }),
    ),
).pipe(Command.withDescription("Show the task graph of profiles and what is cached, without building"))
