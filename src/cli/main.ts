import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as ValidationError from "@effect/cli/ValidationError"
import * as Terminal from "@effect/platform/Terminal"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodePath from "@effect/platform-node/NodePath"
import { Cause, type Console, Context, Effect, Exit, Fiber, Layer, Option, Scope } from "effect"
import { describeCause, type ErrorReport, ExitCode, isOwrtError, toErrorReport } from "../errors.js"
import { killChildGroups } from "../process/childGroups.js"
import { owrtVersion } from "../version.js"
import { checkArguments } from "./argvCheck.js"
import { type CommandName, commandNames, isCommandName } from "./commandNames.js"
import type { auditCommand } from "./commands/auditCommand.js"
import type { buildersCommand } from "./commands/buildersCommand.js"
import type { buildsCommand } from "./commands/buildsCommand.js"
import type { cacheCommand } from "./commands/cacheCommand.js"
import type { configCommand } from "./commands/configCommand.js"
import type { diffCommand } from "./commands/diffCommand.js"
import type { jobsCommand, workerCommand, workersCommand } from "./commands/farmCommands.js"
import type { flashCommand } from "./commands/flashCommand.js"
import type { mcpCommand } from "./commands/mcpCommand.js"
import type { otaCommand, publishCommand } from "./commands/otaCommand.js"
import type { planCommand } from "./commands/planCommand.js"
import type { profilesCommand } from "./commands/profilesCommand.js"
import type { realizeCommand } from "./commands/realizeCommand.js"
import type { serveCommand } from "./commands/serveCommand.js"
import type { storeCommand } from "./commands/storeCommand.js"
import { commandShape } from "./commandTree.js"
import { helpRequested, renderHelp, stdoutHelpStyle } from "./help.js"

/** The console a command prints with: stdout and stderr, or with `--json` everything on stderr. */
class CommandConsole extends Context.Tag("owrt/cli/CommandConsole")<CommandConsole, Console.Console>() {}

/** One of owrt's commands (their types only: the modules load when a command runs). */
type AnyCommand =
  | typeof realizeCommand
  | typeof planCommand
  | typeof auditCommand
  | typeof diffCommand
  | typeof profilesCommand
  | typeof buildersCommand
  | typeof buildsCommand
  | typeof storeCommand
  | typeof cacheCommand
  | typeof publishCommand
  | typeof otaCommand
  | typeof flashCommand
  | typeof configCommand
  | typeof mcpCommand
  | typeof serveCommand
  | typeof workerCommand
  | typeof workersCommand
  | typeof jobsCommand

/*
 * Each command's module is loaded when it runs: its options, its handler and what they import (the library
 * core, the web server, the flash machinery, …) are built for that command only, and @effect/cli parses the
 * command line against that command alone. Help without a command, and a name that is not a command, load
 * them all.
 */
export const loadCommand: { readonly [Name in CommandName]: () => Promise<AnyCommand> } = {
  realize: () => import("./commands/realizeCommand.js").then((m) => m.realizeCommand),
  plan: () => import("./commands/planCommand.js").then((m) => m.planCommand),
  audit: () => import("./commands/auditCommand.js").then((m) => m.auditCommand),
  diff: () => import("./commands/diffCommand.js").then((m) => m.diffCommand),
  profiles: () => import("./commands/profilesCommand.js").then((m) => m.profilesCommand),
  builders: () => import("./commands/buildersCommand.js").then((m) => m.buildersCommand),
  builds: () => import("./commands/buildsCommand.js").then((m) => m.buildsCommand),
  store: () => import("./commands/storeCommand.js").then((m) => m.storeCommand),
  cache: () => import("./commands/cacheCommand.js").then((m) => m.cacheCommand),
  publish: () => import("./commands/otaCommand.js").then((m) => m.publishCommand),
  ota: () => import("./commands/otaCommand.js").then((m) => m.otaCommand),
  flash: () => import("./commands/flashCommand.js").then((m) => m.flashCommand),
  config: () => import("./commands/configCommand.js").then((m) => m.configCommand),
  mcp: () => import("./commands/mcpCommand.js").then((m) => m.mcpCommand),
  serve: () => import("./commands/serveCommand.js").then((m) => m.serveCommand),
  worker: () => import("./commands/farmCommands.js").then((m) => m.workerCommand),
  workers: () => import("./commands/farmCommands.js").then((m) => m.workersCommand),
  jobs: () => import("./commands/farmCommands.js").then((m) => m.jobsCommand),
}

/** The `owrt` command over the given subcommands (all of them, or the one that runs). */
const rootOf = (subcommands: readonly [AnyCommand, ...Array<AnyCommand>]) =>
  Command.make("owrt").pipe(
    Command.withDescription("Declarative, content-addressed builds of OpenWrt firmware"),
    Command.withSubcommands(subcommands),
    // The commands print with the console of the mode (see withCliConsole), not the one that hides
    // @effect/cli's own parse errors.
    Command.transformHandler((handler) =>
      Effect.flatMap(CommandConsole, (console) => Effect.withConsole(handler, console)),
    ),
  )

/*
 * What @effect/cli needs to run (its `CliApp.Environment`): not NodeContext, whose command executor and
 * worker manager load modules (child_process, workers) no command takes from the context.
 */
/*
 * Node's terminal, made on first use: only @effect/cli's prompts (`--wizard`) read from it, and making it
 * loads Node's readline (a few milliseconds) that no command otherwise needs.
 */
const lazyTerminal = Layer.scoped(
  Terminal.Terminal,
  Effect.gen(function* () {
    const scope = yield* Effect.scope
    const node = yield* Effect.cached(
      Effect.promise(() => import("@effect/platform-node/NodeTerminal")).pipe(
        Effect.flatMap((module) => Scope.extend(module.make(), scope)),
      ),
    )
    return Terminal.Terminal.of({
      columns: Effect.sync(() => process.stdout.columns ?? 0),
      rows: Effect.sync(() => process.stdout.rows ?? 0),
      isTTY: Effect.sync(() => process.stdout.isTTY === true),
      readInput: Effect.flatMap(node, (terminal) => terminal.readInput),
      readLine: Effect.flatMap(node, (terminal) => terminal.readLine),
      display: (text) => Effect.flatMap(node, (terminal) => terminal.display(text)),
    })
  }),
)

const cliEnvironment = Layer.mergeAll(NodePath.layer, lazyTerminal, NodeFileSystem.layer)

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
  // `owrt --version` alone needs none of the commands, which a name that is not a command would load.
  if (original.length === 3 && original[2] === "--version") {
    process.stdout.write(`${owrtVersion}\n`)
    return
  }
  const argv = publishVersion(original)
  const end = argv.indexOf("--")
  const json = (end === -1 ? argv : argv.slice(0, end)).includes("--json")
  const name = argv[2]
  const names: ReadonlyArray<CommandName> = isCommandName(name) ? [name] : commandNames
  Promise.all(names.map((n) => loadCommand[n]())).then(
    ([first, ...rest]) => {
      if (first === undefined) throw new Error("owrt has no commands")
      run(argv, json, rootOf([first, ...rest]))
    },
    (cause: unknown) => {
      report(json, {
        code: "internal",
        message: `internal error: ${describeCause(cause)}`,
        exitCode: ExitCode.internal,
      })
      process.exitCode = ExitCode.internal
    },
  )
}

const run = (argv: ReadonlyArray<string>, json: boolean, root: ReturnType<typeof rootOf>): void => {
  const rootShape = commandShape(root.descriptor)
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
  const cli = Command.run(root, { name: "owrt", version: owrtVersion })
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
