import * as CliConfig from "@effect/cli/CliConfig"
import * as Descriptor from "@effect/cli/CommandDescriptor"
import type * as HelpDoc from "@effect/cli/HelpDoc"
import type * as Usage from "@effect/cli/Usage"
import { Option } from "effect"

/*
 * The command tree as data: each command's path, options, arguments and subcommands, read from the
 * @effect/cli definitions (their public usage and help), for checking a command line and for `--help`.
 */

export interface CommandShape {
  /** `owrt flash list`: how the command is written. */
  readonly path: string
  /** Option names and aliases (`--store`, `-j`), and whether each takes a value. */
  readonly options: ReadonlyMap<string, { readonly takesValue: boolean }>
  /** The most positional arguments it takes (Infinity for a repeated one). */
  readonly maxArguments: number
  readonly subcommands: ReadonlyMap<string, CommandShape>
  /** Its options and arguments, in order (the command's own name left out). */
  readonly usage: Usage.Usage
  /** Description, arguments and options, as @effect/cli documents them (no built-in options). */
  readonly help: () => HelpDoc.HelpDoc
}

/** Options @effect/cli adds to every command (`--completions` and `--log-level` take a value). */
export const builtInOptions: ReadonlyMap<string, { readonly takesValue: boolean }> = new Map([
  ["--help", { takesValue: false }],
  ["-h", { takesValue: false }],
  ["--version", { takesValue: false }],
  ["--wizard", { takesValue: false }],
  ["--completions", { takesValue: true }],
  ["--log-level", { takesValue: true }],
])

const isOptionName = (name: string) => name.startsWith("-")

/** Options and the positional argument count of one command's own usage (its subcommands excluded). */
const readUsage = (usage: Usage.Usage) => {
  const options = new Map<string, { readonly takesValue: boolean }>()
  const count = (node: Usage.Usage, repeated: boolean): number => {
    switch (node._tag) {
      case "Named": {
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

/** A command's usage is its name followed by what it takes: the name is dropped here. */
const withoutName = (usage: Usage.Usage): Usage.Usage =>
  usage._tag === "Concat" && usage.left._tag === "Named" && !usage.left.names.some(isOptionName)
    ? usage.right
    : usage

/*
 * The descriptor's shape is internal to @effect/cli (0.77): a command is `Standard`, wrapped by `Map` for
 * its handler, and `Subcommands` pairs a parent with its children. Only the walk depends on it; what each
 * command takes comes from the public `getUsage` and `getHelp`.
 */
interface DescriptorNode {
  readonly _tag: string
  readonly command?: DescriptorNode
  readonly parent?: DescriptorNode
  readonly children?: ReadonlyArray<DescriptorNode>
}

const helpConfig = CliConfig.make({ showBuiltIns: false })

const shapeOf = (node: DescriptorNode, prefix: string): CommandShape => {
  if (node._tag === "Map" && node.command) return shapeOf(node.command, prefix)
  const descriptor = node as unknown as Descriptor.Command<unknown>
  if (node._tag === "Subcommands" && node.parent && node.children) {
    const parent = shapeOf(node.parent, prefix)
    const subcommands = new Map<string, CommandShape>()
    for (const child of node.children) {
      const name = [...Descriptor.getNames(child as unknown as Descriptor.Command<unknown>)][0]
      if (name !== undefined) subcommands.set(name, shapeOf(child, `${parent.path} ${name}`))
    }
    return { ...parent, subcommands }
  }
  const name = [...Descriptor.getNames(descriptor)][0] ?? ""
  const usage = withoutName(Descriptor.getUsage(descriptor))
  const { options, maxArguments } = readUsage(usage)
  return {
    path: prefix === "" ? name : prefix,
    options,
    maxArguments,
    subcommands: new Map(),
    usage,
    help: () => Descriptor.getHelp(descriptor, helpConfig),
  }
}

/** The command tree of a command (`Command.descriptor`). */
export const commandShape = (descriptor: Descriptor.Command<unknown>): CommandShape =>
  shapeOf(descriptor as unknown as DescriptorNode, "")
