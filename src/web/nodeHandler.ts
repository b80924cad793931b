import { type HttpApp, HttpMiddleware } from "@effect/platform"
import { makeHandler } from "@effect/platform-node/NodeHttpServer"
import { Effect } from "effect"

/**
 * A node:http request listener for an @effect/platform app, without the platform's per-request tracing span:
 * owrt installs no tracer, and the span (the URL parsed, every header copied and redacted into attributes)
 * costs a good part of a small answer's time. Each request runs in a fiber of the calling scope's runtime.
 */
export const nodeHandler = <E, R>(app: HttpApp.Default<E, R>) =>
  Effect.locally(makeHandler(app), HttpMiddleware.currentTracerDisabledWhen, () => true)
