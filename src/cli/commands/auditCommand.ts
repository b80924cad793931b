import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import { Effect } from "effect"
import { cliCaller } from "../cliCaller.js"
import { configOptions, jsonOption } from "../commonOptions.js"
import { emit } from "../output.js"
import { runWithApp } from "../runWithApp.js"

// Loaded when the command runs, so that other commands start without its schemas.
const auditModule = Effect.promise(() => import("../../operations/audit.js"))

export const auditCommand = Command.make(
  "audit",
  { profile: Args.text({ name: "profile" }), json: jsonOption, ...configOptions },
  (options) =>
    runWithApp(options, () =>
      Effect.flatMap(
        Effect.flatMap(auditModule, ({ audit }) => audit.run({ profile: options.profile }, cliCaller)),
        (result) =>
          emit(options.json, result, (r) => [
            `${r.profile}: rebuilt from scratch, identical (${r.files} files, digest ${r.digest.slice(0, 16)})`,
          ]),
      ),
    ),
).pipe(
  Command.withDescription(
    "Rebuild a realized profile in a scratch area and compare output digests (exit 6 on any difference)",
  ),
)
