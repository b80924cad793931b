import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as ValidationError from "@effect/cli/ValidationError"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodePath from "@effect/platform-node/NodePath"
import * as NodeTerminal from "@effect/platform-node/NodeTerminal"
import { Cause, type Console, Context, Effect, Exit, Fiber, Layer, Option } from "effect"
import { describeCause, type ErrorReport, ExitCode, isOwrtError, toErrorReport } from "../errors.js"
import { killChildGroups } from "../process/childGroups.js"
import { owrtVersion } from "../version.js"
import { checkArguments } from "./argvCheck.js"
import { auditCommand } from "./commands/auditCommand.js"
import { buildersCommand } from "./commands/buildersCommand.js"
import { buildsCommand } from "./commands/buildsCommand.js"
import { cacheCommand } from "./commands/cacheCommand.js"
import { configCommand } from "./commands/configCommand.js"
import { diffCommand } from "./commands/diffCommand.js"
import { jobsCommand, workerCommand, workersCommand } from "./commands/farmCommands.js"
import { flashCommand } from "./commands/flashCommand.js"
import { mcpCommand } from "./commands/mcpCommand.js"
import { otaCommand, publishCommand } from "./commands/otaCommand.js"
import { planCommand } from "./commands/planCommand.js"
import { profilesCommand } from "./commands/profilesCommand.js"
import { realizeCommand } from "./commands/realizeCommand.js"
import { serveCommand } from "./commands/serveCommand.js"
import { storeCommand } from "./commands/storeCommand.js"
import { commandShape } from "./commandTree.js"
import { helpRequested, renderHelp, stdoutHelpStyle } from "./help.js"

/** The console a command prints with: stdout and stderr, or with `--json` everything on stderr. */
class CommandConsole extends Context.Tag("owrt/cli/CommandConsole")<CommandConsole, Console.Console>() {}

const root = Command.make("owrt").pipe(
  Command.withDescription("Declarative, content-addressed builds of OpenWrt firmware"),
  Command.withSubcommands([
    realizeCommand,
    planCommand,
    auditCommand,
    diffCommand,
    profilesCommand,
    buildersCommand,
    buildsCommand,
    storeCommand,
    cacheCommand,
    publishCommand,
    otaCommand,
    flashCommand,
    configCommand,
    mcpCommand,
    serveCommand,
    workerCommand,
    workersCommand,
    jobsCommand,
  ]),
  // The commands print with the console of the mode (see withCliConsole), not the one that hides
  // @effect/cli's own parse errors.
  Command.transformHandler((handler) =>
    Effect.flatMap(CommandConsole, (console) => Effect.withConsole(handler, console)),
  ),
)

const cli = Command.run(root, { name: "owrt", version: owrtVersion })

/*
 * What @effect/cli needs to run (its `CliApp.Environment`): not NodeContext, whose command executor and
 * worker manager load modules (child_process, workers) no command takes from the context.
 */
const cliEnvironment = Layer.mergeAll(NodePath.layer, NodeTerminal.layer, NodeFileSystem.layer)
const rootShape = commandShape(root.descriptor)

const ansiEscape = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, "g")
const stripAnsi = (text: string) => text.replace(ansiEscape, "")

/**
 * @effect/cli explains its own parse errors on the console's `error`; `finish` reports them instead, in
 * owrt's format (and as the JSON document with `--json`), so outside a command's handler `error` prints
 * nothing. In `--json` mode stdout carries exactly one JSON document, so anything else printed goes to stderr.
 */
const withCliConsole = <A, E, R>(json: boolean, program: Effect.Effect<A, E, R>) =>
  Effect.flatMap(Effect.console, (console) => {
    const commandConsole: Console.Console = json
      ? { ...console, log: console.error, info: console.error, debug: console.error }
      : console
    return Effect.withConsole(Effect.provideService(program, CommandConsole, commandConsole), {
      ...commandConsole,
      error: () => Effect.void,
    })
  })

const report = (json: boolean, error: ErrorReport, humanPrinted = false) => {
  if (json) process.stdout.write(`${JSON.stringify({ error })}\n`)
  else if (!humanPrinted) process.stderr.write(`owrt: error[${error.code}]: ${error.message}\n`)
}

/** Turns how the program ended into an exit code, printing the error the way the mode asks. */
const finish = (json: boolean, exit: Exit.Exit<unknown, unknown>): number => {
  // A command that finished but partly failed (realize --keep-going) has set its exit code itself.
  if (Exit.isSuccess(exit)) return typeof process.exitCode === "number" ? process.exitCode : ExitCode.ok
  const failure = Cause.failureOption(exit.cause)
  if (Option.isSome(failure)) {
    const error = failure.value
    if (isOwrtError(error)) {
      report(json, toErrorReport(error))
      return error.exitCode
    }
    if (ValidationError.isValidationError(error)) {
      const text = stripAnsi(HelpDoc.toAnsiText(error.error))
        .trim()
        .replace(/\s*\n\s*/g, " ")
      report(json, {
        code: "usage",
        message: text === "" ? "the command line does not parse (see owrt --help)" : text,
        exitCode: ExitCode.usage,
      })
      return ExitCode.usage
    }
  }
  if (Cause.isInterruptedOnly(exit.cause)) {
    report(json, { code: "interrupted", message: "interrupted", exitCode: ExitCode.interrupted })
    return ExitCode.interrupted
  }
  const defect = Cause.squash(exit.cause)
  report(json, {
    code: "internal",
    message: `internal error: ${describeCause(defect)}`,
    exitCode: ExitCode.internal,
  })
  if (defect instanceof Error && defect.stack) process.stderr.write(`${defect.stack}\n`)
  return ExitCode.internal
}

/**
 * `owrt publish … --version X.Y.Z`: the release's version, which @effect/cli would take for its own
 * `--version` (print owrt's version and stop). It is handed on as `--release-version`.
 */
const publishVersion = (argv: ReadonlyArray<string>): ReadonlyArray<string> =>
  argv[2] !== "publish"
    ? argv
    : argv.map((arg, i) =>
        i <= 2 || argv.slice(0, i).includes("--")
          ? arg
          : arg === "--version"
            ? "--release-version"
            : arg.startsWith("--version=")
              ? `--release-version=${arg.slice("--version=".length)}`
              : arg,
      )

/** Runs the CLI on `argv` (as in `process.argv`) and sets the process exit code. */
export const main = (original: ReadonlyArray<string>): void => {
  const argv = publishVersion(original)
  const end = argv.indexOf("--")
  const json = (end === -1 ? argv : argv.slice(0, end)).includes("--json")
  const helpOf = helpRequested(rootShape, argv.slice(2))
  if (helpOf !== undefined) {
    process.stdout.write(
      renderHelp(helpOf, { version: owrtVersion, isRoot: helpOf === rootShape, style: stdoutHelpStyle() }),
    )
    return
  }
  const problem = checkArguments(rootShape, argv.slice(2))
  if (problem !== undefined) {
    report(json, { code: "usage", message: problem, exitCode: ExitCode.usage })
    process.exitCode = ExitCode.usage
    return
  }
  const program = cli(argv).pipe(Effect.provide(cliEnvironment), (p) => withCliConsole(json, p))
  const fiber = Effect.runFork(program)
  let interrupts = 0
  const onSignal = () => {
    interrupts += 1
    // A second Ctrl+C means "now": do not wait for cleanup.
    if (interrupts > 1) {
      killChildGroups()
      process.exit(ExitCode.interrupted)
    }
    Effect.runFork(Fiber.interrupt(fiber))
  }
  process.on("SIGINT", onSignal)
  process.on("SIGTERM", onSignal)
  fiber.addObserver((exit) => {
    process.off("SIGINT", onSignal)
    process.off("SIGTERM", onSignal)
    process.exitCode = finish(json, exit)
    // The command is over and its scopes are closed: exit once what it wrote has been flushed, instead of
    // letting the event loop wind down (a last full garbage collection, timers of libraries) first.
    process.stdout.write("", () => process.stderr.write("", () => process.exit()))
  })
}
