import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import { Effect } from "effect"
import type { DiffJson } from "../../operations/diff.js"
import { formatBytes } from "../../progress/terminalProgress.js"
import { cliCaller } from "../cliCaller.js"
import { configOptions, jsonOption } from "../commonOptions.js"
import { emit, table } from "../output.js"
import { runWithApp } from "../runWithApp.js"

// Loaded when the command runs, so that other commands start without its schemas.
const diffModule = Effect.promise(() => import("../../operations/diff.js"))

const sideName = (side: DiffJson["from"]) =>
  `${side.profile}@${side.rev ?? side.revision.slice(0, 12)}${side.buildId === null ? "" : ` (build ${side.buildId})`}`

const signedBytes = (delta: number) =>
  delta === 0 ? "±0 B" : `${delta > 0 ? "+" : "-"}${formatBytes(Math.abs(delta))}`

const indent = (lines: ReadonlyArray<string>) => lines.map((line) => `  ${line}`)

const entryText = (e: NonNullable<DiffJson["files"]>["added"][number]) =>
  e.kind === "symlink"
    ? `${e.path} -> ${e.linkTarget ?? "?"}`
    : e.kind === "dir"
      ? `${e.path}/ (${e.mode})`
      : `${e.path} (${e.mode}, ${formatBytes(e.size)})`

/** `owrt diff` for people: like `nix store diff-closures`, one line per change. */
export const diffLines = (d: DiffJson): ReadonlyArray<string> => {
  const lines = [`${sideName(d.from)} → ${sideName(d.to)}`]
  if (d.identical) return [...lines, `identical: both are artifact set ${d.from.key} (${d.from.storePath})`]

  lines.push("keys:")
  lines.push(
    ...indent(
      table(d.keys.map((k) => [k.node, k.changed ? `${k.from} → ${k.to}` : `${k.from} (unchanged)`])),
    ),
  )
  if (d.inputs.length > 0) {
    lines.push("inputs:")
    lines.push(
      ...indent(table(d.inputs.map((i) => [i.field, `${i.from ?? "(default)"} → ${i.to ?? "(default)"}`]))),
    )
  }

  const p = d.packages
  lines.push(
    `packages: ${p.added.length} added, ${p.removed.length} removed, ${p.changed.length} changed version, ${p.unchanged} unchanged`,
  )
  lines.push(
    ...indent([
      ...p.added.map((x) => `+ ${x.name} ${x.version}`),
      ...p.removed.map((x) => `- ${x.name} ${x.version}`),
      ...p.changed.map((x) => `~ ${x.name} ${x.from} → ${x.to}`),
    ]),
  )

  const f = d.files
  if (f === null)
    lines.push(
      d.keys.some((k) => k.node === "customise-image")
        ? "files: not compared (a Raspberry Pi OS image is customised in place: there is no staged overlay to list)"
        : "files: unknown (the store has no listing of a staged overlay)",
    )
  else {
    lines.push(
      `files: ${f.added.length} added, ${f.removed.length} removed, ${f.changed.length} changed, ${f.unchanged} unchanged`,
    )
    lines.push(
      ...indent([
        ...f.added.map((e) => `+ ${entryText(e)}`),
        ...f.removed.map((e) => `- ${entryText(e)}`),
        ...f.changed.map((c) => {
          const what = c.changes.map((aspect) =>
            aspect === "content" && c.from.size !== c.to.size
              ? `content (${formatBytes(c.from.size)} → ${formatBytes(c.to.size)})`
              : aspect === "mode"
                ? `mode ${c.from.mode} → ${c.to.mode}`
                : aspect === "target"
                  ? `target ${c.from.linkTarget} → ${c.to.linkTarget}`
                  : aspect === "kind"
                    ? `${c.from.kind} → ${c.to.kind}`
                    : aspect,
          )
          return `~ ${c.path}: ${what.join(", ")}`
        }),
      ]),
    )
  }

  lines.push("images:")
  lines.push(
    ...indent(
      table(
        d.images.map((i) => [
          [i.type, i.filesystem].filter((x) => x !== null).join(" "),
          i.status,
          i.from === null ? "-" : formatBytes(i.from.size),
          "→",
          i.to === null ? "-" : formatBytes(i.to.size),
          signedBytes(i.sizeDelta),
        ]),
      ),
    ),
  )
  return lines
}

export const diffCommand = Command.make(
  "diff",
  {
    from: Args.text({ name: "from" }).pipe(
      Args.withDescription("A realization: profile id or id@rev, a build id, or a store path"),
    ),
    to: Args.text({ name: "to" }).pipe(Args.withDescription("The realization to compare it with")),
    json: jsonOption,
    ...configOptions,
  },
  (options) =>
    runWithApp(options, () =>
      Effect.gen(function* () {
        const { diff } = yield* diffModule
        yield* emit(
          options.json,
          yield* diff.run({ from: options.from, to: options.to }, cliCaller),
          diffLines,
        )
      }),
    ),
).pipe(
  Command.withDescription(
    "Compare two realizations: packages, overlay files, image sizes and node keys (from the store; nothing is unpacked)",
  ),
)
