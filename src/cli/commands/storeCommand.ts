import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import { Effect } from "effect"
import { formatBytes } from "../../progress/terminalProgress.js"
import { cliCaller } from "../cliCaller.js"
import { configOptions, dryRunOption, jsonOption } from "../commonOptions.js"
import { emit, table } from "../output.js"
import { runWithApp } from "../runWithApp.js"

// Loaded when a command runs, so that other commands start without their schemas.
const listStoreModule = Effect.promise(() => import("../../operations/listStore.js"))
const storeVerifyModule = Effect.promise(() => import("../../operations/storeVerify.js"))
const collectGarbageModule = Effect.promise(() => import("../../operations/collectGarbage.js"))
const storePathModule = Effect.promise(() => import("../../operations/storePath.js"))

const ls = Command.make("ls", { json: jsonOption, ...configOptions }, (options) =>
  runWithApp(options, () =>
    Effect.gen(function* () {
      const { listStore } = yield* listStoreModule
      yield* emit(options.json, yield* listStore.run({}, cliCaller), (value) =>
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
        const { collectGarbage, garbageDescriptions } = yield* collectGarbageModule
        const report = yield* collectGarbage.run({ dryRun: options.dryRun }, cliCaller)
        yield* emit(options.json, report, (r) => [
          ...r.garbage.map(
            (g) =>
              `${options.dryRun ? "would remove" : "removed"} ${g.path} (${garbageDescriptions[g.kind]})`,
          ),
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
        const { storePath } = yield* storePathModule
        yield* emit(options.json, yield* storePath.run({ profile: options.profile }, cliCaller), (v) => [
          v.path,
        ])
      }),
    ),
).pipe(Command.withDescription("Print the store path of a realized profile's artifacts"))

export const storeCommand = Command.make("store").pipe(
  Command.withDescription("Inspect and maintain the store"),
  Command.withSubcommands([ls, verify, gc, path]),
)
