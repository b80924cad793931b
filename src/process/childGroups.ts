/*
 * Process groups of the children this process started (make and its descendants): when the process is
 * about to exit abruptly (a second Ctrl+C), they are killed at once rather than left running.
 */

const groups = new Set<number>()

/** Tracks a child that leads its own process group; `forget` once it has exited. */
export const trackChildGroup = (pid: number): void => {
  groups.add(pid)
}

export const forgetChildGroup = (pid: number): void => {
  groups.delete(pid)
}

/** SIGKILLs every tracked child group. */
export const killChildGroups = (): void => {
  for (const pid of groups) {
    try {
      process.kill(-pid, "SIGKILL")
    } catch {
      // already gone
    }
  }
  groups.clear()
}
