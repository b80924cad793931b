import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statfsSync } from "node:fs"
import { join } from "node:path"
import { Effect, type Scope } from "effect"
import { freeBytesAt, InternalError, pathInNoSpaceMessage } from "../errors.js"
import { forgetChildGroup, trackChildGroup } from "../process/childGroups.js"
import { childProcess } from "../process/lazyBuiltin.js"
import { currentProcess } from "../process/processIdentity.js"
import { memoryScratchPrefix, memoryScratchRoot } from "../store/workDirectory.js"

/*
 * The Image Builder writes into its own tree (build_dir/, tmp/, staging_dir/), so each build runs in a
 * private writable instance of the stored builder, which is never modified. As root, the instance is an
 * overlay mount (the store tree as its read-only lower layer) inside a private mount namespace made for
 * the one command: it costs nothing to set up, and vanishes with the process even after SIGKILL. Without
 * the privileges for that, the instance is a copy (reflinked where the file system can).
 */

export type InstanceKind = "overlay" | "copy"

let overlayUsable: boolean | undefined
let setprivUsable: boolean | undefined

/** `setpriv --pdeathsig KILL` makes make die with owrt, even when owrt is killed with SIGKILL. */
const dieWithParent = (
  argv: readonly [string, ReadonlyArray<string>],
): readonly [string, ReadonlyArray<string>] => {
  if (setprivUsable === undefined) {
    try {
      childProcess().execFileSync("setpriv", ["--pdeathsig", "KILL", "--", "true"], { stdio: "ignore" })
      setprivUsable = true
    } catch {
      setprivUsable = false
    }
  }
  return setprivUsable ? ["setpriv", ["--pdeathsig", "KILL", "--", argv[0], ...argv[1]]] : argv
}

/** Process groups of running builds, killed synchronously when owrt must exit at once (a second Ctrl+C). */
const canUseOverlay = (): boolean => {
  if (overlayUsable !== undefined) return overlayUsable
  overlayUsable = false
  try {
    if (process.getuid?.() !== 0) return false
    if (!readFileSync("/proc/filesystems", "utf8").includes("\toverlay")) return false
    childProcess().execFileSync("unshare", ["--mount", "--propagation", "private", "true"], {
      stdio: "ignore",
    })
    overlayUsable = true
  } catch {
    overlayUsable = false
  }
  return overlayUsable
}

export interface BuilderInstance {
  readonly kind: InstanceKind
  /** Where the build writes besides BIN_DIR (the instance's scratch space or copy). */
  readonly writesTo: string
  /**
   * The instance's tree as this process sees what make wrote into it (the overlay's upper layer, or the
   * copy): the staging root and package database a build left, opkg's downloaded package lists.
   */
  readonly written: string
  /** Argument vector that runs `make <args>` inside the instance. */
  readonly makeCommand: (args: ReadonlyArray<string>) => readonly [string, ReadonlyArray<string>]
  /** The environment make runs with (`buildEnvironment`). */
  readonly environment: Readonly<Record<string, string>>
}

/**
 * Where an overlay instance keeps what the build writes: memory (/dev/shm) when it has room, since the
 * build tree is thrown away afterwards; otherwise the work directory. Only BIN_DIR is kept, and it lies
 * outside the instance.
 */

const instanceScratch = (work: string): string => {
  try {
    const stats = statfsSync(memoryScratchRoot)
    if (stats.bavail * stats.bsize > 4 * 1024 ** 3) {
      // Named by owner, like work directories, so `store gc` can remove those of killed processes.
      return mkdtempSync(
        join(memoryScratchRoot, `${memoryScratchPrefix}${currentProcess.pid}.${currentProcess.start}.`),
      )
    }
  } catch {
    // no /dev/shm here
  }
  const dir = join(work, "instance-scratch")
  mkdirSync(dir, { recursive: true })
  return dir
}

const overlayScript =
  'mount -t overlay overlay -o "lowerdir=$1,upperdir=$2,workdir=$3" "$4" && cd "$4" && shift 4 && exec make "$@"'

/**
 * Prepares a private instance of `builder` under `work` (a private directory); removed with the scope.
 * `passEnv` names the caller's environment variables make sees too (the `makeEnv` setting).
 */
export const makeBuilderInstance = (
  builder: string,
  work: string,
  passEnv: ReadonlyArray<string> = [],
): Effect.Effect<BuilderInstance, InternalError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.try({
      try: (): BuilderInstance & { readonly scratch?: string } => {
        const environment = buildEnvironment(passEnv)
        if (process.env["OWRT_BUILDER_INSTANCE"] !== "copy" && canUseOverlay()) {
          const root = instanceScratch(work)
          const upper = join(root, "upper")
          const scratch = join(root, "work")
          const merged = join(root, "merged")
          for (const dir of [upper, scratch, merged]) mkdirSync(dir, { recursive: true, mode: 0o700 })
          return {
            kind: "overlay",
            environment,
            scratch: root,
            writesTo: root,
            written: upper,
            makeCommand: (args) => [
              "unshare",
              [
                "--mount",
                "--propagation",
                "private",
                "--",
                "sh",
                "-c",
                overlayScript,
                "sh",
                builder,
                upper,
                scratch,
                merged,
                ...args,
              ],
            ],
          }
        }
        const copy = join(work, "instance")
        if (!existsSync(copy)) {
          childProcess().execFileSync("cp", ["-a", "--reflink=auto", builder, copy], { stdio: "pipe" })
          // The stored builder is read-only; its copy is the build's to write in.
          childProcess().execFileSync("chmod", ["-R", "u+w", copy], { stdio: "pipe" })
        }
        return {
          kind: "copy",
          environment,
          writesTo: copy,
          written: copy,
          makeCommand: (args) => ["make", ["-C", copy, ...args]],
        }
      },
      catch: (cause) => new InternalError({ cause }),
    }),
    // Best effort: what cannot be removed now (a mount still held by a dying process) `store gc` removes.
    (instance) =>
      Effect.sync(() => {
        if (instance.scratch) rmSync(instance.scratch, { recursive: true, force: true, maxRetries: 3 })
      }).pipe(Effect.catchAllDefect(() => Effect.void)),
  )

export interface MakeResult {
  readonly exit: number | null
  /** stdout and stderr as they came, interleaved. */
  readonly output: string
  /** stdout alone (what `make manifest` prints is the manifest; its progress goes to stderr). */
  readonly stdout: string
  readonly timedOut: boolean
}

/**
 * What a build sees of the environment: nothing of the caller's locale, time zone or build dates — only the
 * variables `passEnv` names (a name, or a prefix ending in `*`), from the `makeEnv` setting.
 */
export const buildEnvironment = (passEnv: ReadonlyArray<string>): Record<string, string> => {
  const passed = (name: string) =>
    passEnv.some((pattern) =>
      pattern.endsWith("*") ? name.startsWith(pattern.slice(0, -1)) : name === pattern,
    )
  const env: Record<string, string> = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && passed(name)) env[name] = value
  }
  return {
    ...env,
    PATH: process.env["PATH"] ?? "/usr/local/bin:/usr/bin:/bin",
    HOME: process.env["HOME"] ?? "/root",
    LC_ALL: "C",
    LANG: "C",
    TZ: "UTC",
  }
}

/**
 * A make that failed because a disk filled up ("No space left on device" from the Image Builder or a tool
 * it ran) is no build failure but `store_full`: an `InternalError` whose cause is ENOSPC (see errors.ts),
 * naming the path the tool named, or else whichever of BIN_DIR and the instance has the least room left.
 */
const outOfSpace = (
  instance: BuilderInstance,
  args: ReadonlyArray<string>,
  output: string,
): InternalError | undefined => {
  const line = output.split("\n").find((l) => /No space left on device|Disk quota exceeded/i.test(l))
  if (line === undefined) return undefined
  const binDir = args.find((a) => a.startsWith("BIN_DIR="))?.slice("BIN_DIR=".length)
  const candidates = [binDir, instance.writesTo].filter((p): p is string => p !== undefined)
  const named = pathInNoSpaceMessage(line)
  const leastRoom = candidates
    .map((p) => ({ p, free: freeBytesAt(p) ?? Number.POSITIVE_INFINITY }))
    .sort((a, b) => a.free - b.free)[0]?.p
  const path = named ?? leastRoom ?? instance.writesTo
  const cause = Object.assign(new Error(`make ${args[0] ?? ""}: ${line.trim()}`), { code: "ENOSPC", path })
  return new InternalError({ cause })
}

/**
 * Runs `make` in the instance as its own process group, collecting stdout and stderr interleaved.
 * Interruption or the timeout kills the whole group (make and everything it started).
 */
export const runMake = (
  instance: BuilderInstance,
  args: ReadonlyArray<string>,
  options: { readonly timeoutSeconds: number; readonly onOutput?: (text: string) => void },
): Effect.Effect<MakeResult, InternalError> =>
  Effect.async<MakeResult, InternalError>((resume) => {
    const [command, argv] = dieWithParent(instance.makeCommand(args))
    const child = childProcess().spawn(command, argv as Array<string>, {
      env: { ...instance.environment },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    })
    if (child.pid !== undefined) trackChildGroup(child.pid)
    const chunks: Array<string> = []
    const outChunks: Array<string> = []
    let timedOut = false
    let finished = false
    const killGroup = () => {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(-child.pid, "SIGKILL")
        } catch {
          // already gone
        }
      }
    }
    const collect = (chunk: Buffer) => {
      const text = chunk.toString("utf8")
      chunks.push(text)
      options.onOutput?.(text)
      return text
    }
    child.stdout?.on("data", (chunk: Buffer) => outChunks.push(collect(chunk)))
    child.stderr?.on("data", collect)
    const timer = setTimeout(() => {
      timedOut = true
      killGroup()
    }, options.timeoutSeconds * 1000)
    child.on("error", (error) => {
      if (finished) return
      finished = true
      clearTimeout(timer)
      resume(Effect.fail(new InternalError({ cause: error })))
    })
    child.on("close", (code) => {
      if (child.pid !== undefined) forgetChildGroup(child.pid)
      if (finished) return
      finished = true
      clearTimeout(timer)
      const output = chunks.join("")
      const full = code !== 0 && !timedOut ? outOfSpace(instance, args, output) : undefined
      resume(
        full
          ? Effect.fail(full)
          : Effect.succeed({ exit: code, output, stdout: outChunks.join(""), timedOut }),
      )
    })
    return Effect.sync(() => {
      clearTimeout(timer)
      killGroup()
    })
  })
