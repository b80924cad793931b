import { editDistance } from "../text/closestMatch.js"
import { builtInOptions, type CommandShape } from "./commandTree.js"

/*
 * The command line checked against the command tree before @effect/cli parses it. @effect/cli takes an
 * option it does not know for a positional argument (`owrt realize --bogus home-ap` asked for a profile
 * named `--bogus`) and drops arguments a subcommand does not take (`owrt flash list extra`). Here every
 * option must be one the command declares, and no command gets more arguments than it takes.
 */

/** What @effect/cli reads as the value of a boolean option written after it (`--json true`). */
const booleanWords = new Set(["true", "1", "y", "yes", "on", "false", "0", "n", "no", "off"])

const suggestion = (word: string, known: Iterable<string>): string => {
  let best: { name: string; distance: number } | undefined
  for (const name of known) {
    const distance = editDistance(word, name, 2)
    if (distance <= 2 && (best === undefined || distance < best.distance)) best = { name, distance }
  }
  return best ? ` — did you mean ${best.name}?` : ""
}

/**
 * The first problem with `args` (what follows `owrt`), in words, or undefined when every option is known
 * and no command gets more arguments than it takes. Bad option values are left to @effect/cli.
 */
export const checkArguments = (root: CommandShape, args: ReadonlyArray<string>): string | undefined => {
  // `--help` shows the help of the command named, whatever else was typed.
  if (args.some((a) => a === "--help" || a === "-h")) return undefined
  let command = root
  let positional = 0
  const see = () => ` (see \`${command.path} --help\`)`
  const optionOf = (name: string) => command.options.get(name) ?? builtInOptions.get(name)
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? ""
    // After `--` everything is an argument (@effect/cli passes them on as they are).
    if (arg === "--") break
    if (arg.length > 1 && arg.startsWith("-")) {
      const [name = arg, value] = arg.startsWith("--") ? arg.split(/=(.*)/s, 2) : [arg]
      const option = optionOf(name)
      if (option === undefined) {
        // `-kj`: single-letter options written together.
        const letters = /^-([^-]{2,})$/.exec(arg)?.[1]
        if (letters && [...letters].every((c) => optionOf(`-${c}`)?.takesValue === false)) continue
        return `unknown option ${name} for \`${command.path}\`${suggestion(name, command.options.keys())}${see()}`
      }
      if (option.takesValue && value === undefined) i++
      else if (!option.takesValue && value === undefined && booleanWords.has(args[i + 1] ?? "")) i++
      continue
    }
    const subcommand = positional === 0 ? command.subcommands.get(arg) : undefined
    if (subcommand) {
      command = subcommand
      continue
    }
    positional++
    if (positional > command.maxArguments) {
      const takes =
        command.maxArguments === 0
          ? command.subcommands.size > 0
            ? `is not a command of \`${command.path}\` (one of: ${[...command.subcommands.keys()].join(", ")})`
            : `is not taken by \`${command.path}\`, which has no arguments`
          : `is one argument too many for \`${command.path}\``
      return `\`${arg}\` ${takes}${suggestion(arg, command.subcommands.keys())}${see()}`
    }
  }
  return undefined
}
