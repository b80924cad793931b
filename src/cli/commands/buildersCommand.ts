import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { Effect, Option } from "effect"
import { formatBytes } from "../../progress/terminalProgress.js"
import { cliCaller } from "../cliCaller.js"
import { configOptions, dryRunOption, jsonOption } from "../commonOptions.js"
import { emit, table } from "../output.js"
import { runWithApp } from "../runWithApp.js"

// Loaded when a command runs, so that other commands start without their schemas.
const ensureModule = Effect.promise(() => import("../../operations/ensureBuilder.js"))
const listModule = Effect.promise(() => import("../../operations/listBuilders.js"))
const pruneModule = Effect.promise(() => import("../../operations/pruneBuilders.js"))
const devicesModule = Effect.promise(() => import("../../operations/builderDevices.js"))
const packagesModule = Effect.promise(() => import("../../operations/builderPackages.js"))

const releaseArg = Args.text({ name: "release" }).pipe(
  Args.withDescription('OpenWrt release, e.g. 23.05.5 or "snapshot"'),
)
const targetArg = Args.text({ name: "target/subtarget" }).pipe(Args.withDescription("e.g. ath79/generic"))

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
        const { ensureBuilder } = yield* ensureModule
        const builder = yield* ensureBuilder.run(
          { release: options.release, target: options.target, skipSignature: options.skipSignature },
          cliCaller,
        )
        if (options.skipSignature && !options.json) {
          process.stderr.write("owrt: warning: signature check skipped (--insecure-skip-signature)\n")
        }
        yield* emit(options.json, builder, (b) => [b.path])
      }),
    ),
).pipe(
  Command.withDescription("Fetch, verify and store the Image Builder of a release and target (or reuse it)"),
)

const list = Command.make("list", { json: jsonOption, ...configOptions }, (options) =>
  runWithApp(options, () =>
    Effect.gen(function* () {
      const { listBuilders } = yield* listModule
      yield* emit(options.json, yield* listBuilders.run({}, cliCaller), (value) =>
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
        const { pruneBuilders } = yield* pruneModule
        const report = yield* pruneBuilders.run(
          { olderThanDays: Option.getOrUndefined(options.olderThan), dryRun: options.dryRun },
          cliCaller,
        )
        yield* emit(options.json, report, (value) => [
          ...value.removed.map(
            (b) => `${options.dryRun ? "would remove" : "removed"} ${b.key} ${b.release} ${b.target}`,
          ),
          ...value.skipped.map((b) => `kept ${b.key} ${b.release} ${b.target}: ${b.reason}`),
          ...(value.removed.length === 0 ? ["nothing to prune"] : []),
        ])
      }),
    ),
).pipe(
  Command.withDescription(
    "Remove Image Builders no running owrt process uses (optionally only those unused for a while)",
  ),
)

const devices = Command.make(
  "devices",
  { release: releaseArg, target: targetArg, json: jsonOption, ...configOptions },
  (options) =>
    runWithApp(options, () =>
      Effect.gen(function* () {
        const { builderDevices } = yield* devicesModule
        const value = yield* builderDevices.run(
          { release: options.release, target: options.target },
          cliCaller,
        )
        yield* emit(options.json, value, (v) =>
          v.devices.length === 0
            ? [`the Image Builder of ${v.release} ${v.target} lists no device profiles`]
            : table([
                ["DEVICE", "TITLE", "ALSO ACCEPTED"],
                ...v.devices.map((d) => [d.id, d.title ?? "-", d.supportedDevices.join(" ")]),
              ]),
        )
      }),
    ),
).pipe(
  Command.withDescription(
    "List the device profiles of a release and target (a profile's `device`), from the Image Builder's `make info`",
  ),
)

const packages = Command.make(
  "packages",
  {
    release: releaseArg,
    target: targetArg,
    search: Options.text("search").pipe(
      Options.optional,
      Options.withDescription("Only packages whose name or description contains this text"),
    ),
    json: jsonOption,
    ...configOptions,
  },
  (options) =>
    runWithApp(options, () =>
      Effect.gen(function* () {
        const { builderPackages } = yield* packagesModule
        const search = Option.getOrUndefined(options.search)
        const value = yield* builderPackages.run(
          { release: options.release, target: options.target, ...(search === undefined ? {} : { search }) },
          cliCaller,
        )
        const remote = value.feeds.listed - value.feeds.read
        yield* emit(options.json, value, (v) => [
          ...(v.packages.length === 0
            ? [
                search === undefined
                  ? `the Image Builder of ${v.release} ${v.target} has no package index`
                  : `no package of ${v.release} ${v.target} matches "${search}"`,
              ]
            : table([
                ["PACKAGE", "VERSION", "DESCRIPTION"],
                ...v.packages.map((p) => [p.name, p.version, p.description ?? ""]),
              ])),
          ...(remote > 0
            ? [
                `(${remote} of ${v.feeds.listed} package feeds are remote: make downloads them when it builds, and their packages are not listed here)`,
              ]
            : []),
        ])
      }),
    ),
).pipe(
  Command.withDescription(
    "List the packages a release and target can install (a profile's `packages`), from the Image Builder's package index",
  ),
)

export const buildersCommand = Command.make("builders").pipe(
  Command.withDescription("Fetch and manage official Image Builders in the store"),
  Command.withSubcommands([ensure, list, devices, packages, prune]),
)
