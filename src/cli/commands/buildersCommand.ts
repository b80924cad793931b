import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { Effect, Option } from "effect"
import { type Builder, BuilderStore } from "../../builder/builderStore.js"
import { Realizer } from "../../graph/realizer.js"
import { formatBytes } from "../../progress/terminalProgress.js"
import { configOptions, dryRunOption, jsonOption } from "../commonOptions.js"
import { emit, table } from "../output.js"
import { runWithApp } from "../runWithApp.js"

const skipSignature = Options.boolean("insecure-skip-signature").pipe(
  Options.withDescription(
    "UNSAFE: accept an Image Builder whose sha256sums signature is missing, unknown or wrong (checksums are still verified against that unsigned file)",
  ),
)

const ensure = Command.make(
  "ensure",
  {
    release: Args.text({ name: "release" }).pipe(
      Args.withDescription('OpenWrt release, e.g. 23.05.5 or "snapshot"'),
    ),
    target: Args.text({ name: "target/subtarget" }).pipe(Args.withDescription("e.g. ath79/generic")),
    skipSignature,
    json: jsonOption,
    ...configOptions,
  },
  (options) =>
    runWithApp(options, () =>
      Effect.gen(function* () {
        const builder = yield* (yield* Realizer).ensureBuilder({
          release: options.release,
          target: options.target,
          skipSignature: options.skipSignature,
        })
        if (options.skipSignature && !options.json) {
          process.stderr.write("owrt: warning: signature check skipped (--insecure-skip-signature)\n")
        }
        yield* emit(
          options.json,
          {
            key: builder.key,
            path: builder.path,
            release: builder.release,
            target: builder.target,
            archiveSha256: builder.archiveSha256,
            signedBy: builder.signedBy,
          },
          (b) => [b.path],
        )
      }),
    ),
).pipe(
  Command.withDescription("Fetch, verify and store the Image Builder of a release and target (or reuse it)"),
)

const builderJson = (b: Builder & { readonly references?: number }) => ({
  key: b.key,
  path: b.path,
  release: b.release,
  target: b.target,
  archiveName: b.archiveName,
  archiveSha256: b.archiveSha256,
  signedBy: b.signedBy,
  upstream: b.upstream,
  files: b.files,
  bytes: b.bytes,
  createdAt: b.createdAt,
  lastUsedAt: b.lastUsedAt,
  ...(b.references === undefined ? {} : { references: b.references }),
})

const list = Command.make("list", { json: jsonOption, ...configOptions }, (options) =>
  runWithApp(options, () =>
    Effect.gen(function* () {
      const builders = yield* (yield* BuilderStore).list()
      yield* emit(options.json, { builders: builders.map(builderJson) }, (value) =>
        value.builders.length === 0
          ? ["no Image Builders in the store (owrt builders ensure <release> <target>)"]
          : table([
              ["KEY", "RELEASE", "TARGET", "SIGNED BY", "ARCHIVE", "BUILDS", "LAST USED"],
              ...value.builders.map((b) => [
                b.key,
                b.release,
                b.target,
                b.signedBy,
                formatBytes(b.bytes),
                String(b.references ?? 0),
                b.lastUsedAt.slice(0, 19).replace("T", " "),
              ]),
            ]),
      )
    }),
  ),
).pipe(Command.withDescription("List the Image Builders in the store"))

const prune = Command.make(
  "prune",
  {
    olderThan: Options.integer("older-than").pipe(
      Options.optional,
      Options.withDescription("Only builders unused for at least this many days"),
    ),
    dryRun: dryRunOption,
    json: jsonOption,
    ...configOptions,
  },
  (options) =>
    runWithApp(options, () =>
      Effect.gen(function* () {
        const report = yield* (yield* BuilderStore).prune({
          olderThanDays: Option.getOrUndefined(options.olderThan),
          dryRun: options.dryRun,
        })
        yield* emit(
          options.json,
          {
            removed: report.removed.map(builderJson),
            skipped: report.skipped.map((s) => ({ ...builderJson(s.builder), reason: s.reason })),
            dryRun: options.dryRun,
          },
          (value) => [
            ...value.removed.map(
              (b) => `${options.dryRun ? "would remove" : "removed"} ${b.key} ${b.release} ${b.target}`,
            ),
            ...value.skipped.map((b) => `kept ${b.key} ${b.release} ${b.target}: ${b.reason}`),
            ...(value.removed.length === 0 ? ["nothing to prune"] : []),
          ],
        )
      }),
    ),
).pipe(
  Command.withDescription(
    "Remove Image Builders no running owrt process uses (optionally only those unused for a while)",
  ),
)

export const buildersCommand = Command.make("builders").pipe(
  Command.withDescription("Fetch and manage official Image Builders in the store"),
  Command.withSubcommands([ensure, list, prune]),
)
