import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { Effect, Option } from "effect"
import { Realizer } from "../../graph/realizer.js"
import { ProfileRepository } from "../../profile/profileRepository.js"
import { configOptions, jsonOption } from "../commonOptions.js"
import { emit, table } from "../output.js"
import { runWithApp } from "../runWithApp.js"
import { allOption, profilesArg, tagOption } from "./realizeCommand.js"

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
    json: jsonOption,
    ...configOptions,
  },
  (options) =>
    runWithApp(options, () =>
      Effect.gen(function* () {
        const realizer = yield* Realizer
        const since = Option.getOrUndefined(options.since)
        let specs: ReadonlyArray<string> = options.profiles
        if (since !== undefined) {
          const repository = yield* ProfileRepository
          specs = yield* repository.changedSince(
            since,
            options.profiles.length > 0 ? options.profiles : undefined,
          )
        }
        const planned =
          since !== undefined && specs.length === 0
            ? []
            : yield* realizer.plan({
                specs,
                all: options.all || since !== undefined,
                tag: Option.getOrUndefined(options.tag),
              })
        yield* emit(
          options.json,
          {
            ...(since !== undefined ? { since } : {}),
            profiles: planned,
            summary: {
              profiles: planned.length,
              cached: planned.filter((p) => p.status === "cached").length,
              missing: planned.filter((p) => p.status === "missing").length,
            },
          },
          (value) =>
            value.profiles.length === 0
              ? [since !== undefined ? `no profile changed since ${since}` : "nothing to plan"]
              : [
                  ...table([
                    [
                      "PROFILE",
                      "STATUS",
                      "FETCH-BUILDER",
                      "STAGE-OVERLAY",
                      "MAKE-IMAGE",
                      "COLLECT-ARTIFACTS",
                    ],
                    ...value.profiles.map((p) => [
                      `${p.profile}@${p.rev}`,
                      p.status,
                      ...p.nodes.map((n) => `${n.key ?? "?"} ${n.status === "cached" ? "✓" : "·"}`),
                    ]),
                  ]),
                  "",
                  `${value.summary.cached} cached, ${value.summary.missing} to build (✓ in the store, · to build, ? known once the builder is fetched)`,
                ],
        )
      }),
    ),
).pipe(Command.withDescription("Show the task graph of profiles and what is cached, without building"))
