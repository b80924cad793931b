import { Context, type Effect, Layer } from "effect"
import type { OwrtError } from "../errors.js"
import type { NodeBuildContext, NodeBuildEnv, NodeSpec } from "./graph.js"

/*
 * Where a node's build runs. The executor has already taken the node's store lock and made the private
 * output directory; the runner fills it. The local runner builds here; a farm's runner hands the node to a
 * worker and brings its output back.
 */
export interface RunnerService {
  readonly describe: string
  readonly run: (node: NodeSpec, context: NodeBuildContext) => Effect.Effect<void, OwrtError, NodeBuildEnv>
}

export class Runner extends Context.Tag("owrt/Runner")<Runner, RunnerService>() {}

/** Builds every node on this machine (the default). */
/** Builds run here, in this process. */
export const localRunnerService: RunnerService = {
  describe: "local",
  run: (node, context) => node.build(context),
}

export const localRunner = Layer.succeed(Runner, localRunnerService)
