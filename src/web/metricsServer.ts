import { createServer } from "node:http"
import { HttpRouter, HttpServerResponse } from "@effect/platform"
import { Effect, type Scope } from "effect"
import type { Registry } from "prom-client"
import { UsageError } from "../errors.js"
import { nodeHandler } from "./nodeHandler.js"

/*
 * A Prometheus endpoint on its own port (`GET /metrics`, text format 0.0.4), for the long-running commands
 * (`owrt ota serve`, `owrt worker`): each scrape first runs `refresh` (gauges read from a database), then
 * renders the registry. Closed with the scope.
 */

export type NodeServer = ReturnType<typeof createServer>

/** A node:http server listening on host:port for the life of the scope. */
export const listen = (
  port: number,
  host: string,
  handler: Parameters<typeof createServer>[1],
): Effect.Effect<NodeServer, UsageError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<NodeServer, UsageError>((resume) => {
      const s = createServer({ keepAliveTimeout: 5_000 }, handler)
      s.once("error", (error) =>
        resume(Effect.fail(new UsageError({ detail: `cannot listen on ${host}:${port}: ${error.message}` }))),
      )
      s.listen(port, host, () => resume(Effect.succeed(s)))
    }),
    (s) =>
      Effect.async<void>((resume) => {
        s.closeAllConnections()
        s.close(() => resume(Effect.void))
      }),
  )

/** `http://host:port` of a listening server. */
export const urlOf = (server: NodeServer, host: string) => {
  const address = server.address()
  const port = typeof address === "object" && address !== null ? address.port : 0
  return `http://${host.includes(":") ? `[${host}]` : host}:${port}`
}

export const serveMetrics = <R>(options: {
  readonly host: string
  readonly port: number
  readonly registry: Registry
  /** Runs before each scrape; its failures are the caller's to handle (they fail the scrape with 500). */
  readonly refresh?: Effect.Effect<void, never, R> | undefined
}): Effect.Effect<string, UsageError, Scope.Scope | R> =>
  Effect.gen(function* () {
    if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65535)
      return yield* new UsageError({ detail: `--metrics-port ${options.port} is not a port (0 to 65535)` })
    const scrape = Effect.gen(function* () {
      if (options.refresh !== undefined) yield* options.refresh
      const body = yield* Effect.promise(() => options.registry.metrics())
      return HttpServerResponse.text(body, { contentType: options.registry.contentType })
    })
    const handler = yield* nodeHandler(HttpRouter.empty.pipe(HttpRouter.get("/metrics", scrape)))
    const server = yield* listen(options.port, options.host, handler)
    return `${urlOf(server, options.host)}/metrics`
  })
