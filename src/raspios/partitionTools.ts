import { utimesSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { Effect } from "effect"
import { InternalError } from "../errors.js"
import { runTool, runToolOk } from "./tools.js"

/*
 * The two file systems of a Raspberry Pi OS image, edited in place inside the image file, without root and
 * without loop devices (reference/raspberry-pi.md §6, §7): the FAT boot partition through mtools at its byte
 * offset (`-i image@@offset`), the ext4 root through debugfs (`image?offset=…`). Every time either tool
 * writes is pinned to `epoch`, so the same edits give the same bytes.
 */

/** The fixed time of every file a customisation writes (2023-11-14T22:13:20Z), as in the stand-in base. */
export const imageEpoch = 1700000000

const mtoolsEnv = { MTOOLS_SKIP_CHECK: "1", SOURCE_DATE_EPOCH: String(imageEpoch) }
const e2fsEnv = { E2FSPROGS_FAKE_TIME: String(imageEpoch), SOURCE_DATE_EPOCH: String(imageEpoch) }

export interface FatPartition {
  readonly image: string
  readonly offset: number
}

const fatTarget = (fat: FatPartition) => `${fat.image}@@${fat.offset}`

/** A file of the FAT root, or undefined when it does not exist. */
export const fatRead = (fat: FatPartition, name: string): Effect.Effect<string | undefined, InternalError> =>
  Effect.map(runTool("mtype", ["-i", fatTarget(fat), `::${name}`], { env: mtoolsEnv }), (result) =>
    result.code === 0 ? result.stdout : undefined,
  )

/**
 * Writes files into the FAT root, replacing any of the same name (`-o`: without it mcopy with no TTY
 * refuses to overwrite and exits 1). Sources are staged in `work` with the epoch as mtime (`-m` keeps it).
 */
export const fatWrite = (
  fat: FatPartition,
  files: ReadonlyArray<{ readonly name: string; readonly content: string }>,
  work: string,
): Effect.Effect<void, InternalError> =>
  Effect.gen(function* () {
    if (files.length === 0) return
    const sources = yield* Effect.try({
      try: () =>
        files.map(({ name, content }) => {
          const source = join(work, name)
          writeFileSync(source, content)
          utimesSync(source, imageEpoch, imageEpoch)
          return source
        }),
      catch: (cause) => new InternalError({ cause }),
    })
    yield* runToolOk("mcopy", ["-o", "-m", "-Q", "-i", fatTarget(fat), ...sources, "::"], { env: mtoolsEnv })
  })

export interface Ext4Partition {
  readonly image: string
  readonly offset: number
}

const ext4Target = (ext4: Ext4Partition) => `${ext4.image}?offset=${ext4.offset}`

/**
 * Runs debugfs commands in one session. debugfs exits 0 even when a command fails and says so only on
 * stderr: any stderr line but its version banner is a failure.
 */
export const debugfs = (
  ext4: Ext4Partition,
  commands: ReadonlyArray<string>,
  options: { readonly write: boolean; readonly work: string },
): Effect.Effect<{ readonly stdout: string; readonly stderr: ReadonlyArray<string> }, InternalError> =>
  Effect.gen(function* () {
    const script = join(options.work, options.write ? "debugfs-write.cmds" : "debugfs-read.cmds")
    yield* Effect.try({
      try: () => writeFileSync(script, `${commands.join("\n")}\n`),
      catch: (cause) => new InternalError({ cause }),
    })
    const result = yield* runTool(
      "debugfs",
      [...(options.write ? ["-w"] : []), "-f", script, ext4Target(ext4)],
      {
        env: e2fsEnv,
      },
    )
    const stderr = result.stderr.split("\n").filter((line) => line.trim() !== "" && !/^debugfs \d/.test(line))
    if (result.code !== 0 || (options.write && stderr.length > 0)) {
      return yield* new InternalError({
        cause: `debugfs ${options.write ? "-w " : ""}on the root file system failed: ${stderr.slice(0, 5).join("; ") || `exit ${result.code}`}`,
      })
    }
    return { stdout: result.stdout, stderr }
  })

/** What a read session answered per command: debugfs -f echoes each command as `debugfs: <command>`. */
export const sessionOutputs = (stdout: string): ReadonlyArray<string> => {
  const outputs: Array<string> = []
  let current: Array<string> | undefined
  for (const line of stdout.split("\n")) {
    if (line.startsWith("debugfs: ")) {
      if (current) outputs.push(current.join("\n"))
      current = []
    } else current?.push(line)
  }
  if (current) outputs.push(current.join("\n"))
  return outputs
}

/** e2fsck -fn on the root file system: the customised image is checked before it is kept. */
export const ext4Check = (ext4: Ext4Partition): Effect.Effect<void, InternalError> =>
  Effect.asVoid(runToolOk("e2fsck", ["-fn", ext4Target(ext4)], { env: e2fsEnv }))

/** A debugfs argument: paths with spaces are quoted. */
export const quotePath = (path: string): string =>
  /[\s"]/.test(path) ? `"${path.replace(/"/g, '\\"')}"` : path
