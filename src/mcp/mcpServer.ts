import { Server } from "@modelcontextprotocol/sdk/server/index.js"
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js"
import {
  CallToolRequestSchema,
  ErrorCode,
  ListToolsRequestSchema,
  McpError,
} from "@modelcontextprotocol/sdk/types.js"
import { Deferred, Effect, Exit, Layer, Runtime } from "effect"
import { type AppServices, appLayer } from "../appLayer.js"
import type { ConfigFlags } from "../config/appConfig.js"
import { reportCause } from "../operations/errorReport.js"
import { operations } from "../operations/index.js"
import type { AnyOperation, OperationContext } from "../operations/operation.js"
import { owrtVersion } from "../version.js"
import { errorResult, successResult, toolName, toolOf } from "./mcpTools.js"
import { makeProgressBridge, type ProgressBridge } from "./progressBridge.js"
import { claimStdout } from "./protocolStdout.js"

const mcpCaller: OperationContext = { requestedBy: "mcp" }

const instructions = [
  "owrt builds OpenWrt firmware images from declarative device profiles, reusing every result it has built before.",
  "Start with list_profiles; plan shows what is cached; realize builds one profile (asking twice builds once: cacheHit),",
  "realize_batch several. Failures are tool errors whose text is {error: {code, message, exitCode}} with a stable code.",
].join(" ")

/** An MCP server whose tools are the library's operations, each run in `runtime`. */
export const makeMcpServer = (
  tools: ReadonlyArray<AnyOperation>,
  runtime: Runtime.Runtime<AppServices>,
  progress: ProgressBridge,
): Server => {
  const server = new Server(
    { name: "owrt", version: owrtVersion },
    { capabilities: { tools: {} }, instructions },
  )
  const byName = new Map(tools.map((operation) => [toolName(operation), operation] as const))
  const listed = tools.map(toolOf)
  server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: listed }))
  server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
    const operation = byName.get(request.params.name)
    if (!operation) {
      throw new McpError(
        ErrorCode.InvalidParams,
        `unknown tool \`${request.params.name}\` (tools: ${[...byName.keys()].join(", ")})`,
      )
    }
    const token = request.params._meta?.progressToken
    const unsubscribe =
      token === undefined
        ? () => undefined
        : progress.subscribe(({ progress: count, message }) => {
            extra
              .sendNotification({
                method: "notifications/progress",
                params: { progressToken: token, progress: count, message },
              })
              .catch(() => undefined)
          })
    try {
      // A client's cancellation aborts the signal, which interrupts the operation (and kills its make).
      const exit = await Runtime.runPromiseExit(runtime)(
        operation.invoke(request.params.arguments, mcpCaller),
        {
          signal: extra.signal,
        },
      )
      return Exit.isSuccess(exit) ? successResult(exit.value) : errorResult(reportCause(exit.cause))
    } finally {
      unsubscribe()
    }
  })
  return server
}

/**
 * `owrt mcp`: serves the operations over stdio until the client closes stdin or the process is told to
 * stop. Only protocol messages reach stdout; everything else goes to stderr.
 */
export const serveMcp = (flags: ConfigFlags, tools: ReadonlyArray<AnyOperation> = operations) =>
  Effect.scoped(
    Effect.gen(function* () {
      const stdout = yield* claimStdout
      const progress = makeProgressBridge()
      const runtime = yield* Layer.toRuntime(appLayer(flags, progress.layer))
      const server = makeMcpServer(tools, runtime, progress)
      const closed = yield* Deferred.make<void>()
      server.onclose = () => Deferred.unsafeDone(closed, Exit.void)
      // The stdio transport does not notice its client going away; a closed stdin means it has.
      const onEnd = () => void server.close()
      process.stdin.once("end", onEnd)
      yield* Effect.addFinalizer(() => Effect.sync(() => process.stdin.off("end", onEnd)))
      yield* Effect.acquireRelease(
        Effect.promise(() => server.connect(new StdioServerTransport(process.stdin, stdout))),
        () => Effect.promise(() => server.close()),
      )
      process.stderr.write(`owrt mcp ${owrtVersion}: serving ${tools.length} tools on stdio\n`)
      yield* Deferred.await(closed)
    }),
  )
