import type { Writable } from "node:stream"
import { Server } from "@modelcontextprotocol/sdk/server/index.js"
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js"
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js"
import {
  CallToolRequestSchema,
  ErrorCode,
  isJSONRPCRequest,
  ListToolsRequestSchema,
  McpError,
} from "@modelcontextprotocol/sdk/types.js"
import { Deferred, Effect, Exit, type Fiber, FiberId, FiberSet, Layer } from "effect"
import { type AppServices, appLayer } from "../app/appLayer.js"
import type { ConfigFlags } from "../config/appConfig.js"
import { InternalError, toErrorReport, UsageError } from "../errors.js"
import { reportCause } from "../operations/errorReport.js"
import { operations } from "../operations/index.js"
import type { AnyOperation, OperationContext } from "../operations/operation.js"
import { Progress, silentProgress } from "../progress/progress.js"
import { maxJsonNesting, valueNestsDeeper } from "../text/jsonNesting.js"
import { owrtVersion } from "../version.js"
import { errorResult, successResult, toolName, toolOf } from "./mcpTools.js"
import { boundedMessages, maxMessageBytes, type OversizedMessage } from "./messageLimit.js"
import { toolCallProgress } from "./progressBridge.js"
import { claimStdout } from "./protocolStdout.js"

const mcpCaller: OperationContext = { requestedBy: "mcp" }
const silent = { report: () => undefined }

const instructions = [
  "owrt builds OpenWrt firmware images from declarative device profiles, reusing every result it has built before.",
  "Start with list_profiles; plan shows what is cached; realize builds one profile (asking twice builds once: cacheHit),",
  "realize_batch several. Failures are tool errors whose text is {error: {code, message, exitCode}} with a stable code.",
  "On store_full, collect_garbage and prune_builders free space (dryRun: true shows what they would remove).",
].join(" ")

/** How often the server checks that the process that started it is still its parent. */
const parentCheckMs = 1000

/** Tool calls running now: on shutdown they are interrupted and awaited, so each records how it ended. */
export type RunningCalls = Set<Promise<unknown>>

/** Starts a tool call's effect as a fiber of the server's scope (`FiberSet.makeRuntime`). */
export type RunCall = <A, E>(effect: Effect.Effect<A, E, AppServices>) => Fiber.RuntimeFiber<A, E>

/** How long a tool call's result waits after its last progress notification (see the handler). */
const notificationGapMs = 20

/** An MCP server whose tools are the library's operations, each run as a fiber started by `run`. */
export const makeMcpServer = (
  tools: ReadonlyArray<AnyOperation>,
  run: RunCall,
  running: RunningCalls = new Set(),
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
    // The last notification sent, so that the result goes out after it has been written.
    let lastSent: Promise<unknown> = Promise.resolve()
    // This call's progress, in this call's context: concurrent calls each hear only their own.
    const progress =
      token === undefined
        ? silent
        : toolCallProgress(({ progress: count, message }) => {
            lastSent = extra
              .sendNotification({
                method: "notifications/progress",
                params: { progressToken: token, progress: count, message },
              })
              .catch(() => undefined)
          })
    // A client's cancellation, or the connection closing, aborts the signal, which interrupts the
    // operation (and kills its make).
    const fiber = run(
      operation.invoke(request.params.arguments, mcpCaller).pipe(Effect.provideService(Progress, progress)),
    )
    const interrupt = () => fiber.unsafeInterruptAsFork(FiberId.none)
    if (extra.signal.aborted) interrupt()
    else extra.signal.addEventListener("abort", interrupt, { once: true })
    const call = new Promise<Exit.Exit<unknown, unknown>>((resolve) => fiber.addObserver(resolve))
    running.add(call)
    const exit = await call.finally(() => running.delete(call))
    if (token !== undefined) {
      // The SDK's client handles a response at once but each notification a microtask later, so a
      // final notification read in the same chunk as the response is dropped: let it go out alone.
      await lastSent
      await new Promise((resolve) => setTimeout(resolve, notificationGapMs))
    }
    return Exit.isSuccess(exit) ? successResult(exit.value) : errorResult(reportCause(exit.cause))
  })
  return server
}

const describeValue = (value: unknown) =>
  Array.isArray(value) ? "an array" : value === null ? "null" : `a ${typeof value}`

/**
 * Why a tools/call's `arguments` cannot be given to any tool, as owrt's usage error: they are not an
 * object of named arguments, or nest deeper than anything a tool takes (decoding and describing such a
 * value would walk it recursively).
 */
export const refuseArguments = (args: unknown): UsageError | undefined => {
  if (args === undefined) return undefined
  if (typeof args !== "object" || args === null || Array.isArray(args)) {
    return new UsageError({
      detail: `invalid arguments: arguments: Expected an object of named arguments, actual ${describeValue(args)}`,
    })
  }
  if (valueNestsDeeper(args, maxJsonNesting)) {
    return new UsageError({
      detail: `invalid arguments: they nest arrays and objects more than ${maxJsonNesting} deep`,
    })
  }
  return undefined
}

/**
 * Answers tools/call requests whose arguments no tool could take with a tool error, before the SDK's
 * request validation sees them (it would answer a protocol error holding its validator's dump).
 * Installed after `connect`, which sets the transport's `onmessage`.
 */
const guardToolCalls = (transport: Transport) => {
  const deliver = transport.onmessage
  transport.onmessage = (message, extra) => {
    if (isJSONRPCRequest(message) && message.method === "tools/call") {
      const refusal = refuseArguments(message.params?.arguments)
      if (refusal !== undefined) {
        void transport
          .send({ jsonrpc: "2.0", id: message.id, result: errorResult(toErrorReport(refusal)) })
          .catch(() => undefined)
        return
      }
    }
    deliver?.(message, extra)
  }
}

const log = (line: string) => process.stderr.write(`owrt mcp: ${line}\n`)

/** The first line of an error's message, short enough for a log line (validator dumps are long). */
const firstLine = (error: Error) => {
  const [line = ""] = error.message.trim().split("\n")
  return line.length > 300 ? `${line.slice(0, 300)}…` : line
}

/**
 * Watches for the client going away, however it goes: stdin ends or fails (the client closed it or
 * died), stdout fails (nobody reads the answers), or the parent process exits (the process is
 * re-parented, so `process.ppid` changes) while something else still holds stdin open.
 */
const watchClient = (stdout: Writable, gone: (reason: string) => void) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const onEnd = () => gone("the client closed stdin")
      const onStdinError = (error: Error) => gone(`stdin failed (${error.message})`)
      const onStdoutError = (error: Error) => gone(`stdout failed (${error.message})`)
      process.stdin.once("end", onEnd)
      process.stdin.once("close", onEnd)
      process.stdin.on("error", onStdinError)
      stdout.on("error", onStdoutError)
      process.stdout.on("error", onStdoutError)
      const parent = process.ppid
      const timer = setInterval(() => {
        if (process.ppid !== parent) gone(`the parent process (pid ${parent}) exited`)
      }, parentCheckMs)
      timer.unref()
      return () => {
        clearInterval(timer)
        process.stdin.off("end", onEnd)
        process.stdin.off("close", onEnd)
        process.stdin.off("error", onStdinError)
        stdout.off("error", onStdoutError)
        process.stdout.off("error", onStdoutError)
      }
    }),
    (stop) => Effect.sync(stop),
  )

/**
 * `owrt mcp`: serves the operations over stdio until the client goes away (it closes stdin, or it or the
 * parent process dies) or the process is told to stop. Either way the running tool calls are interrupted
 * and awaited, so their builds are recorded as interrupted and their `make` is killed, before it returns.
 * Only protocol messages reach stdout; everything else goes to stderr.
 */
export const serveMcp = (flags: ConfigFlags, tools: ReadonlyArray<AnyOperation> = operations) =>
  Effect.scoped(
    Effect.gen(function* () {
      const stdout = yield* claimStdout
      const runtime = yield* Layer.toRuntime(appLayer(flags, silentProgress))
      // Tool calls are fibers of this scope: whatever the transport's close leaves running is interrupted.
      const run = yield* FiberSet.makeRuntime<AppServices>().pipe(Effect.provide(runtime))
      const running: RunningCalls = new Set()
      const server = makeMcpServer(tools, run, running)
      const ended = yield* Deferred.make<void, InternalError>()
      let leaving = false
      const gone = (reason: string) => {
        if (leaving) return
        leaving = true
        log(`${reason}: stopping${running.size > 0 ? ` (interrupting ${running.size} running calls)` : ""}`)
        Deferred.unsafeDone(ended, Exit.void)
      }
      server.onerror = (error) => log(firstLine(error))
      // The transport closes itself only on a failure it cannot recover from; owrt closes it otherwise.
      server.onclose = () => {
        if (!leaving) {
          leaving = true
          Deferred.unsafeDone(
            ended,
            Exit.fail(
              new InternalError({ cause: "the MCP transport closed on its own (see the log above)" }),
            ),
          )
        }
      }

      let transport: StdioServerTransport | undefined
      const oversized = ({ bytes, id }: OversizedMessage) => {
        log(
          `dropped a message of ${bytes} bytes: messages are at most ${maxMessageBytes} bytes${id === undefined ? "" : ` (answered request ${JSON.stringify(id)} with an error)`}`,
        )
        if (id === undefined) return
        void transport
          ?.send({
            jsonrpc: "2.0",
            id,
            error: {
              code: ErrorCode.InvalidRequest,
              message: `message too large: ${bytes} bytes, owrt mcp accepts at most ${maxMessageBytes} bytes per message`,
            },
          })
          .catch(() => undefined)
      }
      const input = yield* Effect.acquireRelease(
        Effect.sync(() => process.stdin.pipe(boundedMessages(maxMessageBytes, oversized))),
        (filter) =>
          Effect.sync(() => {
            process.stdin.unpipe(filter)
            filter.destroy()
            // A paused stdin no longer keeps the process alive.
            process.stdin.pause()
          }),
      )
      yield* watchClient(stdout, gone)
      yield* Effect.acquireRelease(
        Effect.promise(async () => {
          // Whole messages only reach the SDK's reader, so its own limit is never the one that applies.
          transport = new StdioServerTransport(input, stdout, { maxBufferSize: 2 * maxMessageBytes })
          await server.connect(transport)
          guardToolCalls(transport)
        }),
        () =>
          Effect.promise(async () => {
            leaving = true
            // Closing aborts every running call's signal; each then records how it ended.
            await server.close()
            await Promise.allSettled([...running])
          }),
      )
      process.stderr.write(`owrt mcp ${owrtVersion}: serving ${tools.length} tools on stdio\n`)
      yield* Deferred.await(ended)
    }),
  )
