import * as Descriptor from "@effect/cli/CommandDescriptor"
import type * as Usage from "@effect/cli/Usage"
import { Option } from "effect"
import { editDistance } from "../text/closestMatch.js"

/*
 * The command line checked against the command tree before @effect/cli parses it. @effect/cli takes an
 * option it does not know for a positional argument (`owrt realize --bogus home-ap` asked for a profile
 * named `--bogus`) and drops arguments a subcommand does not take (`owrt flash list extra`). Here every
 * option must be one the command declares, and no command gets more arguments than it takes. What the
 * options and arguments are is read from each command's usage, so the check cannot drift from the
 * definitions.
 */

interface CommandShape {
  /** `owrt flash list`: how the command is written. */
  readonly path: string
  /** Option names and aliases (`--store`, `-j`), and whether each takes a value. */
  readonly options: ReadonlyMap<string, { readonly takesValue: boolean }>
  /** The most positional arguments it takes (Infinity for a repeated one). */
  readonly maxArguments: number
  readonly subcommands: ReadonlyMap<string, CommandShape>
}

/** Options @effect/cli adds to every command (`--completions` and `--log-level` take a value). */
const builtIn = new Map([
  ["--help", { takesValue: false }],
  ["-h", { takesValue: false }],
  ["--version", { takesValue: false }],
  ["--wizard", { takesValue: false }],
  ["--completions", { takesValue: true }],
  ["--log-level", { takesValue: true }],
])

/** What @effect/cli reads as the value of a boolean option written after it (`--json true`). */
const booleanWords = new Set(["true", "1", "y", "yes", "on", "false", "0", "n", "no", "off"])

const isOptionName = (name: string) => name.startsWith("-")

/** Options and the positional argument count of one command's own usage (its subcommands excluded). */
const readUsage = (usage: Usage.Usage) => {
  const options = new Map<string, { readonly takesValue: boolean }>()
  let commandName = true
  const count = (node: Usage.Usage, repeated: boolean): number => {
    switch (node._tag) {
      case "Named": {
        if (commandName) {
          // The first name is the command's own.
          commandName = false
          return 0
        }
        if (node.names.some(isOptionName)) {
          for (const name of node.names) options.set(name, { takesValue: Option.isSome(node.acceptedValues) })
          return 0
        }
        return repeated ? Number.POSITIVE_INFINITY : 1
      }
      case "Optional":
        return count(node.usage, repeated)
      case "Repeated":
        return count(node.usage, true)
      case "Concat":
        return count(node.left, repeated) + count(node.right, repeated)
      case "Alternation":
        return Math.max(count(node.left, repeated), count(node.right, repeated))
      case "Mixed":
      case "Empty":
        return 0
    }
  }
  const maxArguments = count(usage, false)
  return { options, maxArguments }
}

/*
 * The descriptor's shape is internal to @effect/cli (0.77): a command is `Standard`, wrapped by `Map` for
 * its handler, and `Subcommands` pairs a parent with its children. Only the walk depends on it; what each
 * command takes comes from the public `getUsage`.
 */
interface DescriptorNode {
  readonly _tag: string
  readonly command?: DescriptorNode
  readonly parent?: DescriptorNode
  readonly children?: ReadonlyArray<DescriptorNode>
}

const shapeOf = (node: DescriptorNode, prefix: string): CommandShape => {
  if (node._tag === "Map" && node.command) return shapeOf(node.command, prefix)
  if (node._tag === "Subcommands" && node.parent && node.children) {
    const parent = shapeOf(node.parent, prefix)
    const subcommands = new Map<string, CommandShape>()
    for (const child of node.children) {
      const name = [...Descriptor.getNames(child as unknown as Descriptor.Command<unknown>)][0]
      if (name !== undefined) subcommands.set(name, shapeOf(child, `${parent.path} ${name}`))
    }
    return { ...parent, subcommands }
  }
  const descriptor = node as unknown as Descriptor.Command<unknown>
  const name = [...Descriptor.getNames(descriptor)][0] ?? ""
  const { options, maxArguments } = readUsage(Descriptor.getUsage(descriptor))
  return {
    path: prefix === "" ? name : prefix,
    options,
    maxArguments,
    subcommands: new Map(),
  }
}

/** The command tree of a command (`Command.descriptor`). */
export const commandShape = (descriptor: Descriptor.Command<unknown>): CommandShape =>
  shapeOf(descriptor as unknown as DescriptorNode, "")

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
  const optionOf = (name: string) => command.options.get(name) ?? builtIn.get(name)
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
