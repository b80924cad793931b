import { Effect } from "effect"
import { type AppServices, appLayer } from "../app/appLayer.js"
import { silentProgress } from "../progress/progress.js"
import { terminalProgress } from "../progress/terminalProgress.js"
import { type ConfigOptionValues, toConfigFlags } from "./commonOptions.js"

/**
 * Runs a command's program inside the library core, configured from the command's flags. Progress is
 * drawn on a terminal, and never in `--json` mode.
 */
export const runWithApp = <A, E, R extends AppServices>(
  options: ConfigOptionValues & { readonly json?: boolean },
  program: () => Effect.Effect<A, E, R>,
) =>
  Effect.suspend(program).pipe(
    Effect.provide(appLayer(toConfigFlags(options), options.json ? silentProgress : terminalProgress())),
  )
