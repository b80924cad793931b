import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import { Effect } from "effect"
import { AppConfig } from "../../config/appConfig.js"
import { AuditMismatchError } from "../../errors.js"
import { Realizer } from "../../graph/realizer.js"
import { treeDifferences, treeDigest } from "../../store/treeDigest.js"
import { makeWorkDirectory } from "../../store/workDirectory.js"
import { configOptions, jsonOption } from "../commonOptions.js"
import { emit } from "../output.js"
import { runWithApp } from "../runWithApp.js"

export const auditCommand = Command.make(
  "audit",
  { profile: Args.text({ name: "profile" }), json: jsonOption, ...configOptions },
  (options) =>
    runWithApp(options, () =>
      Effect.scoped(
        Effect.gen(function* () {
          const config = yield* AppConfig
          const scratch = yield* makeWorkDirectory(config.store, "audit")
          const { stored, rebuilt, profile } = yield* (yield* Realizer).rebuildInto(options.profile, scratch)
          const before = treeDigest(stored)
          const after = treeDigest(rebuilt)
          const differing = treeDifferences(before.entries, after.entries)
          if (differing.length > 0) return yield* new AuditMismatchError({ profile, differing })
          yield* emit(
            options.json,
            { profile, identical: true, digest: before.digest, files: before.files },
            (r) => [
              `${r.profile}: rebuilt from scratch, identical (${r.files} files, digest ${r.digest.slice(0, 16)})`,
            ],
          )
        }),
      ),
    ),
).pipe(
  Command.withDescription(
    "Rebuild a realized profile in a scratch area and compare output digests (exit 6 on any difference)",
  ),
)
