import { existsSync, mkdirSync, readdirSync } from "node:fs"
import { join } from "node:path"
import { Effect, type Scope } from "effect"
import { InternalError } from "../errors.js"
import { currentProcess } from "../process/processIdentity.js"
import { removeTree } from "./readOnly.js"

/** Where builder instances keep their writable layer when memory allows: gone with the machine's power. */
export const memoryScratchRoot = "/dev/shm"
/** Instances are named `<prefix><pid>.<start>.…`, so `store gc` can tell a dead process's leftovers. */
export const memoryScratchPrefix = "owrt-instance."

/** Where unfinished work lives: inside the store (same file system, so publishing is a rename). */
export const workRoot = (storeDir: string): string => join(storeDir, ".work")

/**
 * A private, empty directory for one piece of work, removed when the scope closes — unless its contents
 * were published (renamed away) first. Its name carries the owner's pid and start time, so `store gc`
 * can tell the leftovers of a killed process from work in progress.
 */
export const makeWorkDirectory = (
  storeDir: string,
  label: string,
): Effect.Effect<string, InternalError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.try({
      try: () => {
        const random = Math.random().toString(36).slice(2, 10)
        const dir = join(
          workRoot(storeDir),
          `${currentProcess.pid}.${currentProcess.start}.${random}.${label}`,
        )
        // Work in progress is private: a staged overlay may hold secret values before it is published.
        mkdirSync(workRoot(storeDir), { recursive: true, mode: 0o700 })
        mkdirSync(dir, { mode: 0o700 })
        return dir
      },
      catch: (cause) => new InternalError({ cause }),
    }),
    // Best effort: a leftover is garbage that `store gc` removes, never a reason to fail finished work.
    (dir) => Effect.sync(() => removeTree(dir)).pipe(Effect.catchAllDefect(() => Effect.void)),
  )

/**
 * The scratch space a process left behind: its work directories in the store and its builder instances in
 * memory (both named `<pid>.<start>.…`). Only for a process known to be dead.
 */
export const scratchOf = (
  storeDir: string | undefined,
  holder: { readonly pid: number; readonly start: string },
) => {
  const prefix = `${holder.pid}.${holder.start}.`
  const inDir = (dir: string, namePrefix: string) => {
    try {
      return existsSync(dir)
        ? readdirSync(dir)
            .filter((name) => name.startsWith(namePrefix))
            .map((name) => join(dir, name))
        : []
    } catch {
      return []
    }
  }
  return [
    ...(storeDir === undefined ? [] : inDir(workRoot(storeDir), prefix)),
    ...inDir(memoryScratchRoot, `${memoryScratchPrefix}${prefix}`),
  ]
}

/**
 * Removes a dead process's scratch space (it may hold secret values: staged overlays, builder instances).
 * Best effort; returns what was removed.
 */
export const removeScratchOf = (
  storeDir: string | undefined,
  holder: { readonly pid: number; readonly start: string },
): ReadonlyArray<string> =>
  scratchOf(storeDir, holder).filter((path) => {
    try {
      removeTree(path)
      return true
    } catch {
      return false
    }
  })
