import type * as HelpDoc from "@effect/cli/HelpDoc"
import type * as Span from "@effect/cli/HelpDoc/Span"
import type * as Usage from "@effect/cli/Usage"
import { Option } from "effect"
import type { CommandShape } from "./commandTree.js"

/*
 * `--help`, written by owrt instead of @effect/cli: the full command in the usage line (`owrt flash list`,
 * not `$ list`), each option with what it does and its default but not @effect/cli's "A true or false
 * value." / "This setting is optional." on every one, lines wrapped to the terminal (80 columns when
 * there is none), and bold headings only on a terminal that does not ask for NO_COLOR.
 */

export interface HelpStyle {
  readonly width: number
  readonly color: boolean
}

/** How help is printed on this process's stdout. */
export const stdoutHelpStyle = (): HelpStyle => {
  const columns = process.stdout.isTTY ? process.stdout.columns : Number(process.env.COLUMNS)
  const width = Number.isInteger(columns) && columns > 0 ? columns : 80
  const noColor = process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== ""
  return { width: Math.max(40, width), color: process.stdout.isTTY === true && !noColor }
}

/**
 * The command `args` (what follows `owrt`) name, following subcommand names from the root, and whether
 * the arguments are nothing but those names.
 */
export const namedCommand = (
  root: CommandShape,
  args: ReadonlyArray<string>,
): { readonly command: CommandShape; readonly onlyNames: boolean } => {
  let command = root
  let names = 0
  for (const arg of args) {
    if (arg === "--") break
    const next = command.subcommands.get(arg)
    if (next) {
      command = next
      names++
    }
  }
  return { command, onlyNames: names === args.length }
}

/** Whether `args` ask for help: `--help` or `-h` (before `--`), or a bare group of commands. */
export const helpRequested = (root: CommandShape, args: ReadonlyArray<string>): CommandShape | undefined => {
  const end = args.indexOf("--")
  const before = end === -1 ? args : args.slice(0, end)
  const { command, onlyNames } = namedCommand(root, before)
  return before.includes("--help") || before.includes("-h") || (onlyNames && isBareGroup(command))
    ? command
    : undefined
}

/** A group of commands that does nothing itself (`owrt profiles`): run bare, it shows its help. */
export const isBareGroup = (command: CommandShape): boolean =>
  command.subcommands.size > 0 && command.options.size === 0 && command.maxArguments === 0

const spanText = (span: Span.Span): string => {
  switch (span._tag) {
    case "Text":
    case "URI":
      return span.value
    case "Sequence":
      return spanText(span.left) + spanText(span.right)
    default:
      return "value" in span && typeof span.value === "object" ? spanText(span.value) : ""
  }
}

/** What @effect/cli says about every option or argument of a kind, instead of about this one. */
const boilerplate =
  /^(A true or false value\.|A user-defined piece of text\.|An integer\.|A floating point number\.|One of the following: .*|This setting is optional\.|This argument may be repeated .*|This option may be repeated .*)$/

/** A description's paragraphs, boilerplate dropped, a default kept as `(default: …)`. */
const describe = (doc: HelpDoc.HelpDoc): string => {
  const parts: Array<string> = []
  const walk = (node: HelpDoc.HelpDoc): void => {
    if (node._tag === "Sequence") {
      walk(node.left)
      walk(node.right)
    } else if (node._tag === "Paragraph") {
      const text = spanText(node.value).trim()
      const fallback = /^This setting is optional\. Defaults to: (.*)$/.exec(text)
      if (fallback) parts.push(`(default: ${fallback[1]})`)
      else if (text !== "" && !boilerplate.test(text)) parts.push(text)
    }
  }
  walk(doc)
  return parts.join(" ")
}

interface Sections {
  description: string
  arguments: Array<readonly [string, string]>
  options: Array<readonly [string, string]>
}

const sectionsOf = (command: CommandShape): Sections => {
  const sections: Sections = { description: "", arguments: [], options: [] }
  let current = ""
  const walk = (node: HelpDoc.HelpDoc): void => {
    switch (node._tag) {
      case "Sequence":
        walk(node.left)
        walk(node.right)
        return
      case "Header":
        current = spanText(node.value).trim().toUpperCase()
        return
      case "Paragraph":
        if (current === "DESCRIPTION") {
          sections.description = [sections.description, spanText(node.value).trim()].filter(Boolean).join(" ")
        }
        return
      case "DescriptionList":
        for (const [term, doc] of node.definitions) {
          // `(-j, --jobs integer)` reads as `-j, --jobs integer`.
          const label = spanText(term)
            .trim()
            .replace(/^\((.*)\)$/, "$1")
          const entry = [label, describe(doc)] as const
          if (current === "ARGUMENTS") sections.arguments.push(entry)
          else if (current === "OPTIONS") sections.options.push(entry)
        }
        return
      default:
        return
    }
  }
  walk(command.help())
  return sections
}

/** The usage of a command's options and arguments, as words (`[--limit integer]`, `[<profile>...]`). */
const usageWords = (usage: Usage.Usage): Array<string> => {
  const named = (node: Usage.Named) =>
    `${node.names.join(", ")}${Option.match(node.acceptedValues, { onNone: () => "", onSome: (v) => ` ${v}` })}`
  const single = (node: Usage.Usage): string | undefined => {
    if (node._tag === "Named") return named(node)
    if (node._tag === "Optional") {
      const inner = single(node.usage)
      return inner === undefined ? undefined : `[${inner}]`
    }
    if (node._tag === "Repeated") {
      const inner = single(node.usage)
      return inner === undefined ? undefined : `${inner}...`
    }
    return undefined
  }
  switch (usage._tag) {
    case "Concat":
      return [...usageWords(usage.left), ...usageWords(usage.right)]
    case "Alternation":
      return [[...usageWords(usage.left), "|", ...usageWords(usage.right)].join(" ")]
    case "Empty":
    case "Mixed":
      return []
    default: {
      const word = single(usage)
      return word === undefined ? [] : [word]
    }
  }
}

/** Words filled into lines of `width`, the first starting with `first`, the others with `indent`. */
const fill = (words: ReadonlyArray<string>, width: number, first: string, indent: string): Array<string> => {
  const lines: Array<string> = []
  let line = first
  let empty = true
  for (const word of words) {
    if (!empty && line.length + 1 + word.length > width) {
      lines.push(line)
      line = indent + word
    } else {
      line = empty ? line + word : `${line} ${word}`
    }
    empty = false
  }
  lines.push(line)
  return lines
}

const wrap = (text: string, width: number, first: string, indent: string) =>
  fill(text.split(/\s+/).filter(Boolean), width, first, indent)

/** Two columns: the term, and its description wrapped beside it (or under it when the term is long). */
const definitionList = (
  entries: ReadonlyArray<readonly [string, string]>,
  style: HelpStyle,
  strong: (text: string) => string,
): Array<string> => {
  const column = Math.min(Math.max(...entries.map(([term]) => term.length)) + 4, 30)
  const lines: Array<string> = []
  for (const [term, description] of entries) {
    const head = `  ${term}`
    if (description === "") {
      lines.push(`  ${strong(term)}`)
    } else if (head.length + 2 <= column) {
      const wrapped = wrap(description, style.width, " ".repeat(column), " ".repeat(column))
      const [firstLine = "", ...rest] = wrapped
      lines.push(`  ${strong(term)}${firstLine.slice(head.length)}`, ...rest)
    } else {
      lines.push(
        `  ${strong(term)}`,
        ...wrap(description, style.width, " ".repeat(column), " ".repeat(column)),
      )
    }
  }
  return lines
}

/** The help of `command`, as the lines to print. */
export const renderHelp = (
  command: CommandShape,
  options: { readonly version: string; readonly isRoot: boolean; readonly style: HelpStyle },
): string => {
  const { style } = options
  const bold = (text: string) => (style.color ? `\u001b[1m${text}\u001b[0m` : text)
  const sections = sectionsOf(command)
  const title = options.isRoot ? `${command.path} ${options.version}` : command.path
  const lines: Array<string> = [
    ...wrap(sections.description === "" ? title : `${title} — ${sections.description}`, style.width, "", ""),
    "",
    bold("USAGE"),
  ]
  const own = usageWords(command.usage)
  if (!isBareGroup(command) || own.length > 0) {
    lines.push(...fill(own, style.width, `  ${command.path}${own.length > 0 ? " " : ""}`, "      "))
  }
  if (command.subcommands.size > 0) lines.push(`  ${command.path} <command> [options]`)
  const described = sections.arguments.filter(([, description]) => description !== "")
  if (described.length > 0) lines.push("", bold("ARGUMENTS"), ...definitionList(described, style, bold))
  const commandEntries = [...command.subcommands.entries()].map(
    ([name, sub]) => [name, sectionsOf(sub).description] as const,
  )
  if (commandEntries.length > 0) {
    lines.push("", bold("COMMANDS"), ...definitionList(commandEntries, style, bold))
  }
  const optionEntries = [
    ...sections.options,
    ...(options.isRoot ? ([["--version", "Print owrt's version"]] as const) : []),
    ["-h, --help", "Show this help"] as const,
  ]
  lines.push("", bold("OPTIONS"), ...definitionList(optionEntries, style, bold))
  if (command.subcommands.size > 0) {
    lines.push(
      "",
      ...wrap(`Run \`${command.path} <command> --help\` for a command's options.`, style.width, "", ""),
    )
  }
  return `${lines.join("\n")}\n`
}
