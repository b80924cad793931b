import { Console, Effect, FiberSet } from "effect"
import { appLayer } from "../app/appLayer.js"
import { type AsuSettings, AsuSettingsRef, defaultAsuSettings } from "../asu/asuSettings.js"
import type { ConfigFlags } from "../config/appConfig.js"
import { ServeTokenRequiredError, UsageError } from "../errors.js"
import { silentProgress } from "../progress/progress.js"
import { owrtVersion } from "../version.js"
import { apiRoutes } from "./apiRoutes.js"
import { isLoopbackAddress } from "./bindAddress.js"
import { makeFlashProgressBoard } from "./flashProgress.js"
import { flashRoutes } from "./flashRoutes.js"
import { serveHttp } from "./httpServer.js"
import { makeJobBoard } from "./jobs/jobBoard.js"
import { loadUiAssets } from "./uiAssets.js"

export interface ServeOptions {
  readonly host: string
  readonly port: number
  readonly token: string | undefined
  readonly allowFlash: boolean
  readonly allowLoop: boolean
  readonly maxJobs: number
  /** The ASU build service's settings (`--asu-*`); the rest keep upstream's defaults. */
  readonly asu: Partial<AsuSettings> & {
    readonly corsOrigins: ReadonlyArray<string>
    /** A download tree served under /downloads/ (a same-origin Firmware Selector). */
    readonly downloads?: string | undefined
  }
  readonly config: ConfigFlags
}

/** Largest JSON request body: requests name profiles and flags, never files. */
export const bodyLimit = 64 * 1024

/**
 * `owrt serve`: the library core, a job board feeding on its progress, and the HTTP server over both,
 * until interrupted. Jobs still running then are interrupted and recorded as such before the database
 * closes.
 */
export const serve = (options: ServeOptions) =>
  Effect.gen(function* () {
    if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65535) {
      return yield* new UsageError({
        detail: `--port ${options.port} is not a port (0 to 65535; 0 picks a free one)`,
      })
    }
    if (options.token !== undefined && options.token.trim() === "") {
      // `--token ""` must not turn into "any empty ?token= is authorised": refuse it like no token at all.
      return yield* new UsageError({
        detail:
          "--token is empty: pass a secret (OWRT_SERVE_TOKEN keeps it out of `ps`), or leave it out on 127.0.0.1",
      })
    }
    if (!isLoopbackAddress(options.host) && options.token === undefined) {
      return yield* new ServeTokenRequiredError({ host: options.host })
    }
    const board = yield* makeJobBoard(options.maxJobs)
    const ui = loadUiAssets()
    yield* Effect.gen(function* () {
      yield* Effect.addFinalizer(() => board.shutdown)
      // Card writes started by requests: awaited on shutdown (finalizers run last-added first, so this
      // waits before the set would interrupt them), while the database is still open.
      const tasks = yield* FiberSet.make<unknown, unknown>()
      yield* Effect.addFinalizer(() => FiberSet.awaitEmpty(tasks))
      // The ASU build service: its routes on @effect/platform, its queue's workers in this scope. Loaded
      // here, so that no other command pays for them at startup.
      const { corsOrigins, downloads: downloadsDir, ...asuOptions } = options.asu
      const asuSettings: AsuSettings = { ...defaultAsuSettings, ...asuOptions }
      const [{ makeAsuHttpApp, asuPrefixes }, { runBuildQueue }, { openDownloadTree }] =
        yield* Effect.promise(() =>
          Promise.all([
            import("./asu/asuHttpApp.js"),
            import("../asu/buildQueue.js"),
            import("./asu/downloadTree.js"),
          ]),
        )
      const downloads = downloadsDir === undefined ? undefined : yield* openDownloadTree(downloadsDir)
      const asuApp = makeAsuHttpApp({
        settings: asuSettings,
        corsOrigins,
        tokenRequired: options.token !== undefined,
        downloads,
      })
      yield* Effect.forkScoped(runBuildQueue.pipe(Effect.provideService(AsuSettingsRef, asuSettings)))
      const { url } = yield* serveHttp({
        delegate: { prefixes: asuPrefixes, app: asuApp },
        host: options.host,
        port: options.port,
        token: options.token,
        bodyLimit,
        routes: [...apiRoutes, ...flashRoutes],
        ui,
        info: {
          version: owrtVersion,
          allowFlash: options.allowFlash,
          allowLoop: options.allowLoop,
          tokenRequired: options.token !== undefined,
          maxJobs: options.maxJobs,
          board,
          tasks,
          flashProgress: makeFlashProgressBoard(),
        },
      })
      yield* Console.log(`listening: ${url}`)
      if (options.allowFlash)
        yield* Console.error("flashing is enabled for web clients (flash.allowDevices only)")
      return yield* Effect.never
      // Each job reports to its own Progress (the job board provides it per job); nothing else reports.
    }).pipe(Effect.scoped, Effect.provide(appLayer(options.config, silentProgress)))
  }).pipe(Effect.scoped)
