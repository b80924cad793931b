import { readFileSync } from "node:fs"
import { hostname } from "node:os"

/*
 * Who holds a lock or a work directory: pid + the process's start time (so a recycled pid is not taken
 * for the holder) + host. A holder on this host whose pid is gone, or now belongs to another process, is
 * dead — even after SIGKILL, which runs no cleanup.
 */

/** Start time of a process in clock ticks since boot (field 22 of /proc/<pid>/stat), or undefined. */
export const processStartTime = (pid: number): string | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    // The command name (field 2) may contain spaces and parentheses: fields start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return fields[19]
  } catch {
    return undefined
  }
}

export const currentProcess = {
  pid: process.pid,
  start: processStartTime(process.pid) ?? "unknown",
  host: hostname(),
}

/** True unless the holder is on this host and certainly gone. */
export const holderAlive = (holder: {
  readonly pid: number
  readonly start: string
  readonly host: string
}): boolean => {
  if (holder.host !== currentProcess.host) return true
  const start = processStartTime(holder.pid)
  if (start === undefined) return false
  return holder.start === "unknown" || start === holder.start
}
