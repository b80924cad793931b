import { spawn } from "node:child_process"
import { mkdirSync, renameSync, rmSync } from "node:fs"
import { join } from "node:path"
import { Effect, Exit, type Scope } from "effect"
import { InternalError } from "../errors.js"
import { currentProcess } from "./processIdentity.js"

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
        const dir = join(workRoot(storeDir), `${currentProcess.pid}.${currentProcess.start}.${random}.${label}`)
        // Work in progress is private: a staged overlay may hold secret values before it is published.
        mkdirSync(workRoot(storeDir), { recursive: true, mode: 0o700 })
        mkdirSync(dir, { mode: 0o700 })
        return dir
      },
      catch: (cause) => new InternalError({ cause }),
    }),
    (dir, exit) =>
      Effect.sync(() => {
        if (Exit.isSuccess(exit)) {
          // After success nothing waits on the leftovers (a builder instance's build tree): move them
          // aside and let a detached rm delete them, so the command returns at once. `store gc` removes
          // whatever it did not.
          try {
            const trash = join(workRoot(storeDir), `trash.${Math.random().toString(36).slice(2, 10)}`)
            renameSync(dir, trash)
            spawn("rm", ["-rf", trash], { detached: true, stdio: "ignore" }).unref()
            return
          } catch {
            // fall through to removing it here
          }
        }
        rmSync(dir, { recursive: true, force: true })
      }),
  )
