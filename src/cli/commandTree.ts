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

/** Subcommands by name, each read from its descriptor the first time it is asked for. */
class LazyShapes implements ReadonlyMap<string, CommandShape> {
  private readonly made = new Map<string, CommandShape>()
  constructor(private readonly nodes: ReadonlyMap<string, () => CommandShape>) {}
  get size() {
    return this.nodes.size
  }
  has(name: string) {
    return this.nodes.has(name)
  }
  get(name: string) {
    const made = this.made.get(name)
    if (made !== undefined) return made
    const make = this.nodes.get(name)
    if (make === undefined) return undefined
    const shape = make()
    this.made.set(name, shape)
    return shape
  }
  *entries(): MapIterator<[string, CommandShape]> {
    for (const name of this.nodes.keys()) yield [name, this.get(name) as CommandShape]
  }
  keys(): MapIterator<string> {
    return this.nodes.keys()
  }
  *values(): MapIterator<CommandShape> {
    for (const [, shape] of this.entries()) yield shape
  }
  forEach(callback: (value: CommandShape, key: string, map: ReadonlyMap<string, CommandShape>) => void) {
    for (const [name, shape] of this.entries()) callback(shape, name, this)
  }
  [Symbol.iterator]() {
    return this.entries()
  }
}

/*
 * Shapes are read lazily: a command line names one path through the tree, and reading every command's
 * usage up front was a measurable part of each start.
 */
const shapeOf = (node: DescriptorNode, prefix: string): CommandShape => {
  if (node._tag === "Map" && node.command) return shapeOf(node.command, prefix)
  if (node._tag === "Subcommands" && node.parent && node.children) {
    const parent = shapeOf(node.parent, prefix)
    const children = new Map<string, () => CommandShape>()
    for (const child of node.children) {
      const name = [...Descriptor.getNames(child as unknown as Descriptor.Command<unknown>)][0]
      if (name !== undefined) children.set(name, () => shapeOf(child, `${parent.path} ${name}`))
    }
    const subcommands = new LazyShapes(children)
    return {
      path: parent.path,
      get options() {
        return parent.options
      },
      get maxArguments() {
        return parent.maxArguments
      },
      get usage() {
        return parent.usage
      },
      subcommands,
      help: parent.help,
    }
  }
  const descriptor = node as unknown as Descriptor.Command<unknown>
  const name = [...Descriptor.getNames(descriptor)][0] ?? ""
  let usage: Usage.Usage | undefined
  let read: ReturnType<typeof readUsage> | undefined
  const usageOf = () => {
    usage ??= withoutName(Descriptor.getUsage(descriptor))
    return usage
  }
  const readOf = () => {
    read ??= readUsage(usageOf())
    return read
  }
  return {
    path: prefix === "" ? name : prefix,
    get options() {
      return readOf().options
    },
    get maxArguments() {
      return readOf().maxArguments
    },
    get usage() {
      return usageOf()
    },
    subcommands: new Map(),
    help: () => Descriptor.getHelp(descriptor, helpConfig),
  }
}

/** The command tree of a command (`Command.descriptor`). */
export const commandShape = (descriptor: Descriptor.Command<unknown>): CommandShape =>
  shapeOf(descriptor as unknown as DescriptorNode, "")
