import { Effect, type Layer } from "effect"
import { appLayer } from "../appLayer.js"
import { type ConfigOptionValues, toConfigFlags } from "./commonOptions.js"

type AppServices = Layer.Layer.Success<ReturnType<typeof appLayer>>

/** Runs a command's program inside the library core, configured from the command's flags. */
export const runWithApp = <A, E, R extends AppServices>(
  options: ConfigOptionValues,
  program: () => Effect.Effect<A, E, R>,
) => Effect.suspend(program).pipe(Effect.provide(appLayer(toConfigFlags(options))))
