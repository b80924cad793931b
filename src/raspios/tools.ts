import { closeSync, openSync } from "node:fs"
import { Effect } from "effect"
import { InternalError } from "../errors.js"
import { forgetChildGroup, trackChildGroup } from "../process/childGroups.js"
import { childProcess } from "../process/lazyBuiltin.js"

/*
 * The host tools a Raspberry Pi OS image is handled with (xz, zstd, mtools, debugfs, e2fsck), each run as
 * its own process group: interruption kills it and whatever it started. Times and locale are pinned for
 * every run (TZ=UTC, LC_ALL=C), so a tool's output does not depend on the machine's settings.
 */

export interface ToolResult {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

export interface ToolOptions {
  readonly env?: Readonly<Record<string, string>> | undefined
  /** stdin from this file (decompressors). */
  readonly stdinFile?: string | undefined
  /** stdout into this file instead of collecting it. */
  readonly stdoutFile?: string | undefined
}

export const runTool = (
  command: string,
  args: ReadonlyArray<string>,
  options: ToolOptions = {},
): Effect.Effect<ToolResult, InternalError> =>
  Effect.async<ToolResult, InternalError>((resume) => {
    const fds: Array<number> = []
    const fileFd = (path: string, flags: string) => {
      const fd = openSync(path, flags)
      fds.push(fd)
      return fd
    }
    let child: ReturnType<ReturnType<typeof childProcess>["spawn"]>
    try {
      child = childProcess().spawn(command, [...args], {
        env: {
          PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
          LC_ALL: "C",
          TZ: "UTC",
          ...options.env,
        },
        stdio: [
          options.stdinFile === undefined ? "ignore" : fileFd(options.stdinFile, "r"),
          options.stdoutFile === undefined ? "pipe" : fileFd(options.stdoutFile, "w"),
          "pipe",
        ],
        detached: true,
      })
    } catch (cause) {
      for (const fd of fds) closeSync(fd)
      resume(Effect.fail(new InternalError({ cause })))
      return
    }
    for (const fd of fds) closeSync(fd)
    if (child.pid !== undefined) trackChildGroup(child.pid)
    let stdout = ""
    let stderr = ""
    child.stdout?.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")))
    child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")))
    let finished = false
    child.on("error", (cause) => {
      if (finished) return
      finished = true
      resume(Effect.fail(new InternalError({ cause: `${command}: ${cause.message}` })))
    })
    child.on("close", (code) => {
      if (child.pid !== undefined) forgetChildGroup(child.pid)
      if (finished) return
      finished = true
      resume(Effect.succeed({ code, stdout, stderr }))
    })
    return Effect.sync(() => {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(-child.pid, "SIGKILL")
        } catch {
          // already gone
        }
      }
    })
  })

/** `runTool`, failing (InternalError naming the command and its stderr) unless it exits 0. */
export const runToolOk = (
  command: string,
  args: ReadonlyArray<string>,
  options: ToolOptions = {},
): Effect.Effect<ToolResult, InternalError> =>
  Effect.flatMap(runTool(command, args, options), (result) =>
    result.code === 0
      ? Effect.succeed(result)
      : Effect.fail(
          new InternalError({
            cause: `${command} ${args.join(" ")} exited with ${result.code}: ${result.stderr.trim()}`,
          }),
        ),
  )
