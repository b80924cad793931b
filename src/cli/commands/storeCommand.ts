import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import { Effect } from "effect"
import { AppConfig } from "../../config/appConfig.js"
import { NotFoundError } from "../../errors.js"
import { Realizer } from "../../graph/realizer.js"
import { formatBytes } from "../../progress/terminalProgress.js"
import { collectGarbage, listStore } from "../../store/storeMaintenance.js"
import { cliCaller } from "../cliCaller.js"
import { configOptions, dryRunOption, jsonOption } from "../commonOptions.js"
import { emit, table } from "../output.js"
import { runWithApp } from "../runWithApp.js"

// Loaded when the command runs, so that other commands start without its schemas.
const storeVerifyModule = Effect.promise(() => import("../../operations/storeVerify.js"))

const ls = Command.make("ls", { json: jsonOption, ...configOptions }, (options) =>
  runWithApp(options, () =>
    Effect.gen(function* () {
      const config = yield* AppConfig
      const entries = yield* listStore(config.store)
      yield* emit(options.json, { store: config.store, paths: entries }, (value) =>
        value.paths.length === 0
          ? [`${value.store} is empty`]
          : table([
              ["KEY", "KIND", "FILES", "SIZE", "VALID", "PATH"],
              ...value.paths.map((p) => [
                p.key,
                p.kind,
                String(p.files),
                formatBytes(p.bytes),
                p.valid ? "yes" : "NO",
                p.path,
              ]),
            ]),
      )
    }),
  ),
).pipe(Command.withDescription("List the store's paths"))

const verify = Command.make("verify", { json: jsonOption, ...configOptions }, (options) =>
  runWithApp(options, () =>
    Effect.gen(function* () {
      const { storeVerify } = yield* storeVerifyModule
      yield* emit(options.json, yield* storeVerify.run({}, cliCaller), (r) => [
        `${r.checked} store path(s) verified, no drift`,
      ])
    }),
  ),
).pipe(
  Command.withDescription(
    "Re-hash every store path; drifted ones are invalidated and rebuilt by the next realize (exit 6)",
  ),
)

const gc = Command.make(
  "gc",
  {
    dryRun: dryRunOption,
    json: jsonOption,
    ...configOptions,
  },
  (options) =>
    runWithApp(options, () =>
      Effect.gen(function* () {
        const config = yield* AppConfig
        const report = yield* collectGarbage(config.store, { dryRun: options.dryRun })
        yield* emit(options.json, { ...report, dryRun: options.dryRun }, (r) => [
          ...r.removed.map((p) => `${options.dryRun ? "would remove" : "removed"} ${p}`),
          ...r.skipped.map((s) => `kept ${s.path}: ${s.reason}`),
          ...(r.staleLocks > 0
            ? [`${r.staleLocks} lock(s) of dead processes ${options.dryRun ? "would be " : ""}released`]
            : []),
          `${r.removed.length} path(s), ${formatBytes(r.bytesFreed)}${options.dryRun ? " would be freed" : " freed"}`,
        ])
      }),
    ),
).pipe(Command.withDescription("Remove garbage: leftovers of killed processes and invalid or unknown paths"))

const path = Command.make(
  "path",
  { profile: Args.text({ name: "profile" }), json: jsonOption, ...configOptions },
  (options) =>
    runWithApp(options, () =>
      Effect.gen(function* () {
        const [planned] = yield* (yield* Realizer).plan({ specs: [options.profile] })
        const node = planned?.nodes.find((n) => n.kind === "collect-artifacts")
        if (!planned || !node?.path) {
          return yield* new NotFoundError({
            what: options.profile,
            detail: "not realized in this store (owrt realize it first)",
          })
        }
        yield* emit(
          options.json,
          { profile: planned.profile, rev: planned.rev, key: node.key, path: node.path },
          (v) => [v.path],
        )
      }),
    ),
).pipe(Command.withDescription("Print the store path of a realized profile's artifacts"))

export const storeCommand = Command.make("store").pipe(
  Command.withDescription("Inspect and maintain the store"),
  Command.withSubcommands([ls, verify, gc, path]),
)
