import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { Effect, Option } from "effect"
import { ConfigInvalidError } from "../../errors.js"
import { configOptions, toConfigFlags } from "../commonOptions.js"

/*
 * Some MCP clients (Claude Desktop among them) cannot set the server's working directory, which is where
 * owrt looks for graph.config.ts; `--project` starts it as if from there.
 */
const projectOption = Options.directory("project").pipe(
  Options.optional,
  Options.withDescription("Project directory holding graph.config.ts (default: the working directory)"),
)

const enterProject = (directory: Option.Option<string>) =>
  Option.match(directory, {
    onNone: () => Effect.void,
    onSome: (dir) =>
      Effect.try({
        try: () => process.chdir(dir),
        catch: (cause) => new ConfigInvalidError({ source: "--project", detail: String(cause) }),
      }),
  })

export const mcpCommand = Command.make("mcp", { project: projectOption, ...configOptions }, (options) =>
  Effect.gen(function* () {
    yield* enterProject(options.project)
    // Loaded on demand: the MCP SDK is large, and no other command should pay for it at startup.
    const { serveMcp } = yield* Effect.promise(() => import("../../mcp/mcpServer.js"))
    yield* serveMcp(toConfigFlags(options))
  }),
).pipe(
  Command.withDescription(
    "Serve owrt's operations (profiles, plan, realize, builds, artifacts, audit, store verify, flash) as an MCP server on stdio",
  ),
)
