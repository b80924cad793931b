import { createInterface } from "node:readline/promises"
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { Effect, Option } from "effect"
import { ExitCode, UsageError } from "../../errors.js"
import type { FlashReport } from "../../flash/flashOperation.js"
import { formatBytes } from "../../progress/terminalProgress.js"
import { cliCaller } from "../cliCaller.js"
import { configOptions, jsonOption } from "../commonOptions.js"
import { emit, formatTime, table } from "../output.js"
import { runWithApp } from "../runWithApp.js"

// The flash machinery loads when a flash command runs: every other command starts without it.
const flashModules = Effect.promise(async () => ({
  ...(await import("../../flash/flashOperation.js")),
  ...(await import("../../flash/eligibleDevices.js")),
}))
const listFlashesModule = Effect.promise(() => import("../../operations/listFlashes.js"))
const identifyCardModule = Effect.promise(() => import("../../operations/identifyCard.js"))

const allowLoopOption = Options.boolean("allow-loop").pipe(
  Options.withDescription("Accept a loop device as the card (lab and test use)"),
)

const seconds = (ms: number | undefined) => `${((ms ?? 0) / 1000).toFixed(1)}s`

const reportLines = (report: FlashReport): ReadonlyArray<string> => {
  if (report.status === "planned") {
    return [
      "would:",
      ...report.steps.map((s) => `  ${s}`),
      "nothing was written; pass --force to write (or answer the prompt on a terminal)",
    ]
  }
  const done = ["done:", ...report.steps.map((s) => `  ${s}`)]
  if (report.mode === "verify-only") {
    return [
      ...done,
      `compared ${formatBytes(report.image.bytes)} in ${seconds(report.verifyMs)}: the card holds the image (nothing was written; flash #${report.id})`,
    ]
  }
  return [
    ...done,
    `wrote ${formatBytes(report.image.bytes)} in ${seconds(report.writeMs)}` +
      (report.verifyMs !== undefined
        ? `, verified in ${seconds(report.verifyMs)}: the card holds the image`
        : ", not verified"),
    `${report.writtenSha256 !== undefined ? `sha256 ${report.writtenSha256}  ` : ""}(flash #${report.id})`,
  ]
}

/** On a terminal, a person confirms by typing the device path; anything else stops. */
const confirmOnTerminal = (plan: FlashReport): Effect.Effect<boolean> =>
  Effect.promise(async () => {
    process.stderr.write(`${["owrt flash would:", ...plan.steps.map((s) => `  ${s}`)].join("\n")}\n`)
    const prompt = createInterface({ input: process.stdin, output: process.stderr })
    try {
      const answer = await prompt.question(
        `Everything on ${plan.device.path} will be lost. Type ${plan.device.path} to go on: `,
      )
      return answer.trim() === plan.device.path || answer.trim() === plan.device.requested
    } finally {
      prompt.close()
    }
  })

const list = Command.make(
  "list",
  {
    limit: Options.integer("limit").pipe(
      Options.withDefault(50),
      Options.withDescription("Most recent N flashes (default: 50)"),
    ),
    json: jsonOption,
    ...configOptions,
  },
  (options) =>
    runWithApp(options, () =>
      Effect.gen(function* () {
        const { listFlashes } = yield* listFlashesModule
        yield* emit(options.json, yield* listFlashes.run({ limit: options.limit }, cliCaller), (value) => [
          ...(value.flashes.length === 0 ? ["no flashes yet"] : []),
          ...table([
            ["ID", "WHEN", "MODE", "STATUS", "DEVICE", "IMAGE", "BY"],
            ...value.flashes.map((f) => [
              String(f.id),
              formatTime(f.startedAt),
              f.mode,
              f.status,
              f.device.serial ? `${f.device.path} (${f.device.serial})` : f.device.path,
              f.image.artifact?.name ?? f.image.path,
              `${f.requestedUser} via ${f.requestedBy}`,
            ]),
          ]),
          ...(value.suspectCards.length > 0
            ? [
                "",
                "suspect cards:",
                ...value.suspectCards.map(
                  (s) => `  ${s.model ?? "?"} ${s.serial ?? "(no serial)"}: ${s.reason}`,
                ),
              ]
            : []),
        ])
      }),
    ),
).pipe(Command.withDescription("Past flashes (dry runs and refusals included) and cards found suspect"))

const devices = Command.make("devices", { allowLoop: allowLoopOption, json: jsonOption }, (options) =>
  Effect.gen(function* () {
    const { listEligibleDevices } = yield* flashModules
    const found = listEligibleDevices({ allowLoop: options.allowLoop })
    yield* emit(options.json, { devices: found }, () =>
      found.length === 0
        ? ["no device could take an image (system disks, mounted, held and read-only devices are not listed)"]
        : table([
            ["DEVICE", "SIZE", "MODEL", "SERIAL", "REMOVABLE"],
            ...found.map((d) => [
              d.path,
              formatBytes(d.sizeBytes),
              d.model ?? "",
              d.serial ?? "",
              d.removable ? "yes" : "no",
            ]),
          ]),
    )
  }),
).pipe(
  Command.withDescription("Devices that could be flashed: whole, unmounted, writable, not the system disk"),
)

export const flashCommand = Command.make(
  "flash",
  {
    source: Args.text({ name: "image | artifact | profile@rev" }).pipe(Args.optional),
    device: Args.text({ name: "device" }).pipe(Args.optional),
    identify: Options.text("identify").pipe(
      Options.optional,
      Options.withDescription("Read the build marker back from a card and name its build and profile"),
    ),
    dryRun: Options.boolean("dry-run").pipe(
      Options.withDescription("Say what would be written; write nothing"),
    ),
    force: Options.boolean("force").pipe(Options.withDescription("Write without asking")),
    wipe: Options.boolean("wipe").pipe(
      Options.withDescription("Zero old partition tables and signatures at both ends of the card first"),
    ),
    verify: Options.choice("verify", ["full", "none"]).pipe(
      Options.optional,
      Options.withDescription("Read the card back bypassing the page cache and compare (default: full)"),
    ),
    verifyOnly: Options.boolean("verify-only").pipe(
      Options.withDescription("Write nothing: compare a card written earlier with the image"),
    ),
    noBmap: Options.boolean("no-bmap").pipe(
      Options.withDescription(
        "Write (and verify) every block, even when a block map (.bmap) lies beside the image",
      ),
    ),
    allowLoop: allowLoopOption,
    json: jsonOption,
    ...configOptions,
  },
  (options) =>
    runWithApp(options, () =>
      Effect.gen(function* () {
        const identify = Option.getOrUndefined(options.identify)
        if (identify !== undefined) {
          const { identifyCard } = yield* identifyCardModule
          const { searched, ...found } = yield* identifyCard.run({ device: identify }, cliCaller)
          yield* emit(options.json, found, () =>
            found.marker
              ? [
                  `${found.device}: profile ${found.marker.profile}, revision ${found.marker.revision.slice(0, 12)}, image key ${found.marker.key}`,
                  `  (marker in the ${found.foundAt?.filesystem} file system at byte ${found.foundAt?.offset})`,
                  ...found.builds.map((b) =>
                    `  made by build #${b.id} ${b.profile}@${b.rev ?? "?"} ${b.finishedAt ? formatTime(b.finishedAt) : ""}`.trimEnd(),
                  ),
                  ...(found.builds.length === 0 ? ["  no recorded build made this image in this store"] : []),
                  ...(found.reuses > 0
                    ? [`  reused by ${found.reuses} build${found.reuses === 1 ? "" : "s"} since (cache hits)`]
                    : []),
                ]
              : [`${found.device}: no owrt build marker found (looked at ${searched.length} file system(s))`],
          )
          if (!found.marker) process.exitCode = ExitCode.notFound
          return
        }
        const source = Option.getOrUndefined(options.source)
        const device = Option.getOrUndefined(options.device)
        if (source === undefined || device === undefined) {
          return yield* new UsageError({
            detail:
              "give an image (file, artifact id or profile@rev) and a device: owrt flash <image> <device>",
          })
        }
        if (options.dryRun && options.force) {
          return yield* new UsageError({ detail: "--dry-run and --force contradict each other" })
        }
        const interactive = !options.dryRun && !options.force && !options.json && process.stdin.isTTY === true
        const { flashImage } = yield* flashModules
        const report = yield* flashImage({
          source,
          device,
          force: options.force && !options.dryRun,
          wipe: options.wipe ? true : undefined,
          verify: Option.getOrUndefined(options.verify) as "full" | "none" | undefined,
          verifyOnly: options.verifyOnly,
          bmap: !options.noBmap,
          allowLoop: options.allowLoop,
          requestedBy: "cli",
          // The person at the command line may name any image file they can read.
          allowFiles: true,
          confirm: interactive ? confirmOnTerminal : undefined,
        })
        yield* emit(options.json, report, reportLines)
      }),
    ),
).pipe(
  Command.withDescription(
    "Write an image to a TF/SD card, flushed and read back past the page cache (dry run unless --force)",
  ),
  Command.withSubcommands([list, devices]),
)
