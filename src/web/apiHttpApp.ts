import { METHODS } from "node:http"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import type { HttpMethod } from "@effect/platform/HttpMethod"
import { toIncomingMessage } from "@effect/platform-node/NodeHttpServerRequest"
import { Effect, Stream } from "effect"
import type { AppServices } from "../app/appLayer.js"
import type { Requester } from "../db/buildRecords.js"
import { jsonTextNestsDeeper, maxJsonNesting } from "../text/jsonNesting.js"
import { fileResponse } from "./fileResponse.js"
import {
  type ApiError,
  BadRequestError,
  BodyTooLargeError,
  httpStatusOf,
  MethodNotAllowedError,
  RangeNotSatisfiableError,
  RouteNotFoundError,
  UnsupportedMediaTypeError,
} from "./httpErrors.js"
import type { Reply, Route, RouteInput, ServerInfo } from "./route.js"

/*
 * owrt's own HTTP API (`/api/…`, described by /openapi.json) on @effect/platform's router. The routes are a
 * table (src/web/apiRoutes.ts, flashRoutes.ts) whose entries say what they decode and answer; this module
 * registers them, reads request bodies, and turns a route's Reply or error into bytes: errors as
 * `{ error: { code, message, exitCode } }` with the status of src/web/httpErrors.ts.
 */

export const securityHeaders: Readonly<Record<string, string>> = {
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
}

const jsonType = "application/json; charset=utf-8"

/** A JSON answer with owrt's headers (never cached: it says how things are now). */
export const jsonResponse = (body: unknown, status = 200, headers: Readonly<Record<string, string>> = {}) =>
  HttpServerResponse.text(`${JSON.stringify(body)}\n`, {
    status,
    contentType: jsonType,
    headers: { ...securityHeaders, "cache-control": "no-store", ...headers },
  })

/** An error document with the status its code maps to, and the headers its status calls for. */
export const errorResponse = (error: ApiError) => {
  const status = httpStatusOf(error)
  const headers: Record<string, string> = {}
  if (error._tag === "UnauthorizedError") headers["www-authenticate"] = 'Bearer realm="owrt"'
  if (error._tag === "MethodNotAllowedError") headers.allow = error.allowed.join(", ")
  if (error._tag === "RangeNotSatisfiableError") headers["content-range"] = `bytes */${error.size}`
  if (status === 503) headers["retry-after"] = "5"
  return jsonResponse(
    { error: { code: error.code, message: error.message, exitCode: error.exitCode } },
    status,
    headers,
  )
}

/** The request's body as JSON: at most `limit` bytes, and only when declared JSON. Empty: undefined. */
const readJsonBody = (limit: number) =>
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    const type = request.headers["content-type"] ?? ""
    // Requiring JSON also keeps other sites' plain form posts out (they cannot send this type).
    if (!/^application\/json\s*(;|$)/i.test(type)) {
      return yield* new UnsupportedMediaTypeError({ contentType: type || "a body without a Content-Type" })
    }
    if (Number(request.headers["content-length"] ?? 0) > limit) return yield* new BodyTooLargeError({ limit })
    // Read up to the limit whatever Content-Length said (or when there was none). Past it the rest is drained,
    // not read, so that the client still gets its 413 (the platform's own reader closes the connection there).
    const source = toIncomingMessage(request)
    const text = yield* Effect.async<string, BodyTooLargeError | BadRequestError>((resume) => {
      const chunks: Array<Buffer> = []
      let size = 0
      const onData = (chunk: Buffer) => {
        size += chunk.length
        if (size <= limit) chunks.push(chunk)
        else {
          source.off("data", onData)
          source.resume()
          resume(Effect.fail(new BodyTooLargeError({ limit })))
        }
      }
      source.on("data", onData)
      source.once("end", () => resume(Effect.succeed(Buffer.concat(chunks).toString("utf8"))))
      source.once("error", (error) =>
        resume(Effect.fail(new BadRequestError({ detail: `reading the body failed: ${error.message}` }))),
      )
    })
    if (text.trim() === "") return undefined
    // Before parsing: everything after (Schema decoding, error messages) walks the value recursively.
    if (jsonTextNestsDeeper(text)) {
      return yield* new BadRequestError({
        detail: `the body nests arrays and objects more than ${maxJsonNesting} deep`,
      })
    }
    return yield* Effect.try({
      try: (): unknown => JSON.parse(text),
      catch: (error) => new BadRequestError({ detail: `the body is not JSON: ${(error as Error).message}` }),
    })
  })

const encoder = new TextEncoder()

/** A route's Reply as a response. */
const replyResponse = (request: HttpServerRequest.HttpServerRequest, reply: Reply) => {
  switch (reply._tag) {
    case "json":
      return jsonResponse(reply.body, reply.status, reply.headers)
    case "text":
      return HttpServerResponse.text(reply.body, {
        status: reply.status,
        contentType: reply.contentType,
        headers: { ...securityHeaders, "cache-control": "no-store" },
      })
    case "file": {
      const { file } = reply
      const text = file.contentType.startsWith("text/") || file.contentType === "application/json"
      const response = fileResponse(request, file, {
        etag: `"${file.sha256}"`,
        contentType: file.contentType,
        headers: {
          ...securityHeaders,
          // The URL names content by its key: it never changes.
          "cache-control": "private, max-age=31536000, immutable",
          "content-disposition": `${text ? "inline" : "attachment"}; filename="${file.name.replace(/["\\\r\n]/g, "_")}"`,
        },
      })
      return response.status === 416
        ? errorResponse(new RangeNotSatisfiableError({ range: request.headers.range ?? "", size: file.size }))
        : response
    }
    case "events": {
      const frames = Stream.map(
        reply.events,
        (e) => `id: ${e.id}\nevent: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`,
      )
      // A comment now and then keeps proxies and idle timers from closing a quiet stream.
      const heartbeat = Stream.map(Stream.tick("15 seconds"), () => ": keep-alive\n\n")
      const body = Stream.concat(
        Stream.make("retry: 2000\n\n"),
        Stream.merge(frames, heartbeat, { haltStrategy: "left" }),
      )
      return HttpServerResponse.stream(
        Stream.map(body, (frame) => encoder.encode(frame)),
        {
          contentType: "text/event-stream; charset=utf-8",
          headers: { ...securityHeaders, "cache-control": "no-store", "x-accel-buffering": "no" },
        },
      )
    }
  }
}

/**
 * A request target's path and query string, raw: the path is not normalised (`..` must reach the checks, not be
 * folded away before them) and the query has no `?`.
 */
export const splitTarget = (url: string): { readonly path: string; readonly query: string } => {
  const cut = url.indexOf("?")
  return cut === -1 ? { path: url, query: "" } : { path: url.slice(0, cut), query: url.slice(cut + 1) }
}

/** `{name}` → `:name`, a trailing `{path+}` → `*` (whose segments the handler decodes itself). */
const routerPath = (path: string) =>
  path.replace(/\{\w+\+\}$/, "*").replace(/\{(\w+)\}/g, ":$1") as HttpRouter.PathInput

/**
 * The router's matching, as the hand-written one it replaced matched: exact case, no slashes folded or trimmed,
 * parameters of any length (image names run past find-my-way's default of 100).
 */
const routerConfig = {
  caseSensitive: true,
  ignoreTrailingSlash: false,
  ignoreDuplicateSlashes: false,
  maxParamLength: Number.MAX_SAFE_INTEGER,
}

/**
 * The segments a trailing `{path+}` matched, each percent-decoded on its own (the raw URL, not one decoded
 * string split at `/`: `%2F` stays inside its segment, where the store's path checks see it).
 */
const restSegments = (url: string, template: string) => {
  const pathname = splitTarget(url).path
  const fixed = template.split("/").length - 2
  return Effect.try({
    try: () => pathname.split("/").slice(1).slice(fixed).map(decodeURIComponent),
    catch: () => new BadRequestError({ detail: `malformed percent-encoding in ${pathname}` }),
  })
}

/**
 * The API routes as an app: each route under its method and path; on a path that exists under other
 * methods, 405 with `Allow`; elsewhere 404. Errors and replies as src/web/route.ts describes them.
 */
export const makeApiHttpApp = (
  routes: ReadonlyArray<Route>,
  server: ServerInfo,
  bodyLimit: number,
): Effect.Effect<
  HttpServerResponse.HttpServerResponse,
  never,
  AppServices | HttpServerRequest.HttpServerRequest
> => {
  const handler = (route: Route) =>
    Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      const { params } = yield* HttpRouter.RouteContext
      const target = splitTarget(request.url)
      // A new copy each time it is read: read once.
      const headers = request.headers
      const input: RouteInput = {
        params: Object.fromEntries(
          Object.entries(params).flatMap(([name, value]) =>
            value === undefined || name === "*" ? [] : [[name, value]],
          ),
        ),
        rest: route.path.endsWith("+}") ? yield* restSegments(request.url, route.path) : [],
        query: new URLSearchParams(target.query),
        body: route.method === "POST" ? yield* readJsonBody(bodyLimit) : undefined,
        headers,
        context: { requestedBy: (headers["x-owrt-client"] === "web" ? "web" : "api") as Requester },
        server,
      }
      return replyResponse(request, yield* route.handle(input))
    }).pipe(Effect.catchAll((error: ApiError) => Effect.succeed(errorResponse(error))))

  // Every path's methods, so that another method on it is a 405 that names them.
  const allowed = new Map<string, Set<string>>()
  for (const route of routes) {
    const set = allowed.get(route.path) ?? new Set<string>()
    set.add(route.method)
    if (route.method === "GET") set.add("HEAD")
    allowed.set(route.path, set)
  }
  let router: HttpRouter.HttpRouter<never, AppServices> = HttpRouter.empty
  for (const route of routes) {
    router = HttpRouter.route(route.method)(routerPath(route.path), handler(route))(router)
  }
  for (const [path, declared] of allowed) {
    // Every method node:http parses (find-my-way takes any name; the platform's type lists the common ones).
    for (const method of METHODS.filter((m) => !declared.has(m)) as ReadonlyArray<HttpMethod>) {
      router = HttpRouter.route(method)(
        routerPath(path),
        Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
          Effect.succeed(
            errorResponse(
              new MethodNotAllowedError({
                method: request.method,
                path: splitTarget(request.url).path,
                allowed: [...declared],
              }),
            ),
          ),
        ),
      )(router)
    }
  }
  const app = HttpRouter.withRouterConfig(router, routerConfig)
  return Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    // find-my-way ends a path at `;` (a matrix parameter); here `;` is part of the segment it is in, as it
    // always was. A request target in absolute form matches no route.
    if (!request.url.startsWith("/")) {
      return errorResponse(new RouteNotFoundError({ method: request.method, path: request.url }))
    }
    const { path, query } = splitTarget(request.url)
    return yield* path.includes(";")
      ? Effect.provideService(
          app,
          HttpServerRequest.HttpServerRequest,
          request.modify({ url: path.replaceAll(";", "%3B") + (query === "" ? "" : `?${query}`) }),
        )
      : app
  }).pipe(
    Effect.catchTag("RouteNotFound", (error) =>
      Effect.succeed(
        errorResponse(
          new RouteNotFoundError({
            method: error.request.method,
            path: splitTarget(error.request.url).path,
          }),
        ),
      ),
    ),
  )
}
