import { createHash, timingSafeEqual } from "node:crypto"
import { createReadStream } from "node:fs"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { Cause, Effect, FiberSet, Stream } from "effect"
import type { AppServices } from "../app/appLayer.js"
import type { Requester } from "../db/buildRecords.js"
import { ExitCode, isOwrtError, UsageError } from "../errors.js"
import { jsonTextNestsDeeper, maxJsonNesting } from "../text/jsonNesting.js"
import { isLoopbackHost } from "./bindAddress.js"
import { decideRange, etagMatches } from "./byteRange.js"
import {
  type ApiError,
  BadRequestError,
  BodyTooLargeError,
  httpStatusOf,
  MethodNotAllowedError,
  RangeNotSatisfiableError,
  RouteNotFoundError,
  UnauthorizedError,
  UnsupportedMediaTypeError,
} from "./httpErrors.js"
import { openApiDocument } from "./openApi.js"
import { json, type Reply, type Route, type RouteInput, type ServerInfo } from "./route.js"
import type { ServedFile } from "./storeFiles.js"
import type { UiAsset } from "./uiAssets.js"

export interface HttpServerOptions {
  readonly host: string
  readonly port: number
  readonly token: string | undefined
  /** Largest request body accepted, in bytes. */
  readonly bodyLimit: number
  readonly routes: ReadonlyArray<Route>
  readonly ui: ReadonlyMap<string, UiAsset>
  readonly info: ServerInfo
  /**
   * Requests under these path prefixes go to another handler (the ASU routes, on @effect/platform) after
   * the Host and token checks; their CORS preflights (which carry no token) before the token check.
   */
  readonly delegate?:
    | {
        readonly prefixes: ReadonlyArray<string>
        readonly handle: (request: IncomingMessage, response: ServerResponse) => void
      }
    | undefined
}

const securityHeaders = {
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
}

const pageHeaders = {
  ...securityHeaders,
  "content-security-policy":
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
}

const digest = (text: string) => createHash("sha256").update(text).digest()

/** A path template as a matcher over decoded segments. */
const compile = (route: Route) => {
  const parts = route.path.split("/").slice(1)
  return (segments: ReadonlyArray<string>) => {
    const params: Record<string, string> = {}
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i] ?? ""
      const rest = /^\{(\w+)\+\}$/.exec(part)
      if (rest) return segments.length > i ? { params, rest: segments.slice(i) } : undefined
      const segment = segments[i]
      if (segment === undefined) return undefined
      const name = /^\{(\w+)\}$/.exec(part)?.[1]
      if (name) params[name] = segment
      else if (part !== segment) return undefined
    }
    return segments.length === parts.length ? { params, rest: [] as ReadonlyArray<string> } : undefined
  }
}

const errorReply = (error: ApiError): Reply => {
  const status = httpStatusOf(error)
  const headers: Record<string, string> = {}
  if (error._tag === "UnauthorizedError") headers["www-authenticate"] = 'Bearer realm="owrt"'
  if (error._tag === "MethodNotAllowedError") headers.allow = error.allowed.join(", ")
  if (error._tag === "RangeNotSatisfiableError") headers["content-range"] = `bytes */${error.size}`
  if (status === 503) headers["retry-after"] = "5"
  return json(
    { error: { code: error.code, message: error.message, exitCode: error.exitCode } },
    status,
    headers,
  )
}

/** The request's body, parsed as JSON: at most `limit` bytes, and only when declared JSON. */
const readJsonBody = (request: IncomingMessage, limit: number) =>
  Effect.gen(function* () {
    const type = request.headers["content-type"] ?? ""
    // Requiring JSON also keeps other sites' plain form posts out (they cannot send this type).
    if (!/^application\/json\s*(;|$)/i.test(type)) {
      return yield* new UnsupportedMediaTypeError({ contentType: type || "a body without a Content-Type" })
    }
    if (Number(request.headers["content-length"] ?? 0) > limit) return yield* new BodyTooLargeError({ limit })
    const text = yield* Effect.async<string, BodyTooLargeError | BadRequestError>((resume) => {
      const chunks: Array<Buffer> = []
      let size = 0
      const onData = (chunk: Buffer) => {
        size += chunk.length
        if (size > limit) {
          request.off("data", onData)
          resume(Effect.fail(new BodyTooLargeError({ limit })))
        } else chunks.push(chunk)
      }
      request.on("data", onData)
      request.once("end", () => resume(Effect.succeed(Buffer.concat(chunks).toString("utf8"))))
      request.once("error", (error) =>
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

/** Writes a store file: ETag/If-None-Match, one byte range, HEAD. */
const writeFile = (
  request: IncomingMessage,
  response: ServerResponse,
  file: ServedFile,
): Effect.Effect<void, RangeNotSatisfiableError> =>
  Effect.gen(function* () {
    const etag = `"${file.sha256}"`
    const text = file.contentType.startsWith("text/") || file.contentType === "application/json"
    const headers = {
      ...securityHeaders,
      etag,
      "accept-ranges": "bytes",
      // The URL names content by its key: it never changes.
      "cache-control": "private, max-age=31536000, immutable",
      "content-type": file.contentType,
      "content-disposition": `${text ? "inline" : "attachment"}; filename="${file.name.replace(/["\\\r\n]/g, "_")}"`,
    }
    if (etagMatches(request.headers["if-none-match"], etag)) {
      response.writeHead(304, headers).end()
      return
    }
    const ifRange = request.headers["if-range"]
    const range =
      ifRange !== undefined && ifRange !== etag
        ? { kind: "full" as const }
        : decideRange(request.headers.range, file.size)
    if (range.kind === "unsatisfiable") {
      return yield* new RangeNotSatisfiableError({ range: request.headers.range ?? "", size: file.size })
    }
    const [start, end] = range.kind === "partial" ? [range.start, range.end] : [0, file.size - 1]
    response.writeHead(range.kind === "partial" ? 206 : 200, {
      ...headers,
      "content-length": String(end - start + 1),
      ...(range.kind === "partial" ? { "content-range": `bytes ${start}-${end}/${file.size}` } : {}),
    })
    if (request.method === "HEAD" || file.size === 0) {
      response.end()
      return
    }
    yield* Effect.async<void>((resume) => {
      const stream = createReadStream(file.path, { start, end })
      stream.once("error", () => {
        response.destroy()
        resume(Effect.void)
      })
      response.once("close", () => resume(Effect.void))
      stream.pipe(response)
      return Effect.sync(() => stream.destroy())
    })
  })

const writeEvents = (response: ServerResponse, events: Reply & { _tag: "events" }): Effect.Effect<void> =>
  Effect.gen(function* () {
    response.writeHead(200, {
      ...securityHeaders,
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      "x-accel-buffering": "no",
    })
    response.write("retry: 2000\n\n")
    const frames = Stream.map(
      events.events,
      (e) => `id: ${e.id}\nevent: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`,
    )
    // A comment now and then keeps proxies and idle timers from closing a quiet stream.
    const heartbeat = Stream.map(Stream.tick("15 seconds"), () => ": keep-alive\n\n")
    yield* Stream.runForEach(Stream.merge(frames, heartbeat, { haltStrategy: "left" }), (frame) =>
      Effect.sync(() => response.write(frame)),
    )
    response.end()
  })

const writeReply = (
  request: IncomingMessage,
  response: ServerResponse,
  reply: Reply,
): Effect.Effect<void, RangeNotSatisfiableError> => {
  switch (reply._tag) {
    case "json":
    case "text": {
      const body = reply._tag === "json" ? `${JSON.stringify(reply.body)}\n` : reply.body
      response.writeHead(reply.status, {
        ...securityHeaders,
        "content-type": reply._tag === "json" ? "application/json; charset=utf-8" : reply.contentType,
        "content-length": String(Buffer.byteLength(body)),
        "cache-control": "no-store",
        ...(reply._tag === "json" ? reply.headers : {}),
      })
      response.end(request.method === "HEAD" ? undefined : body)
      return Effect.void
    }
    case "file":
      return writeFile(request, response, reply.file)
    case "events":
      return writeEvents(response, reply)
  }
}

const uiReply = (request: IncomingMessage, response: ServerResponse, asset: UiAsset) => {
  const headers = {
    ...pageHeaders,
    etag: asset.etag,
    "cache-control": "no-cache",
    "content-type": asset.contentType,
  }
  if (etagMatches(request.headers["if-none-match"], asset.etag)) response.writeHead(304, headers).end()
  else {
    response.writeHead(200, { ...headers, "content-length": String(asset.body.length) })
    response.end(request.method === "HEAD" ? undefined : asset.body)
  }
}

/**
 * Serves the API, the UI and /openapi.json on `host:port` until the scope closes; then it stops
 * accepting, ends every open request (event streams included) and closes the sockets.
 */
export const serveHttp = (options: HttpServerOptions) =>
  Effect.gen(function* () {
    const matchers = options.routes.map((route) => ({ route, match: compile(route) }))
    const openApi = JSON.stringify(
      openApiDocument(options.routes, options.info.version, options.token !== undefined),
    )
    const token = options.token === undefined ? undefined : digest(options.token)
    const loopbackOnly = options.token === undefined

    const authorized = (request: IncomingMessage, query: URLSearchParams) => {
      if (token === undefined) return true
      const bearer = /^Bearer\s+(.+)$/i.exec(request.headers.authorization ?? "")?.[1]?.trim()
      // EventSource and download links cannot send headers: GETs may carry the token in the query.
      const given =
        bearer ?? (request.method === "GET" || request.method === "HEAD" ? query.get("token") : null)
      // An empty presented token never matches, whatever the server was given.
      return given !== null && given !== undefined && given !== "" && timingSafeEqual(digest(given), token)
    }

    const dispatch = (request: IncomingMessage, pathname: string, query: URLSearchParams) =>
      Effect.gen(function* () {
        // Before routing: without the token nothing, not even which routes exist, is revealed.
        if (!authorized(request, query)) {
          return yield* new UnauthorizedError({ detail: "this server needs `Authorization: Bearer <token>`" })
        }
        const segments = yield* Effect.try({
          try: () => pathname.split("/").slice(1).map(decodeURIComponent),
          catch: () => new BadRequestError({ detail: `malformed percent-encoding in ${pathname}` }),
        })
        const method = request.method === "HEAD" ? "GET" : (request.method ?? "GET")
        const matching = matchers.flatMap(({ route, match }) => {
          const found = match(segments)
          return found ? [{ route, ...found }] : []
        })
        if (matching.length === 0) return yield* new RouteNotFoundError({ method, path: pathname })
        const chosen = matching.find(({ route }) => route.method === method)
        if (!chosen) {
          return yield* new MethodNotAllowedError({
            method,
            path: pathname,
            allowed: [
              ...new Set(
                matching.flatMap(({ route }) => (route.method === "GET" ? ["GET", "HEAD"] : [route.method])),
              ),
            ],
          })
        }
        const body =
          chosen.route.method === "POST" ? yield* readJsonBody(request, options.bodyLimit) : undefined
        const requestedBy: Requester = request.headers["x-owrt-client"] === "web" ? "web" : "api"
        const input: RouteInput = {
          params: chosen.params,
          rest: chosen.rest,
          query,
          body,
          headers: request.headers,
          context: { requestedBy },
          server: options.info,
        }
        return yield* chosen.route.handle(input)
      })

    const respond = (
      request: IncomingMessage,
      response: ServerResponse,
    ): Effect.Effect<void, never, AppServices> =>
      Effect.gen(function* () {
        const raw = request.url ?? "/"
        const cut = raw.indexOf("?")
        // The raw path, not a normalised URL: `..` must reach the checks, not be folded away before them.
        const pathname = cut === -1 ? raw : raw.slice(0, cut)
        const query = new URLSearchParams(cut === -1 ? "" : raw.slice(cut + 1))
        if (loopbackOnly && !isLoopbackHost(request.headers.host, options.host)) {
          // Without a token only local clients are expected; another Host is a DNS-rebinding page.
          response.writeHead(421, securityHeaders).end()
          return
        }
        const delegate = options.delegate
        if (delegate?.prefixes.some((prefix) => pathname.startsWith(prefix))) {
          if (request.method !== "OPTIONS" && !authorized(request, query)) {
            yield* writeReply(
              request,
              response,
              errorReply(
                new UnauthorizedError({ detail: "this server needs `Authorization: Bearer <token>`" }),
              ),
            ).pipe(Effect.orDie)
            return
          }
          delegate.handle(request, response)
          return
        }
        const asset =
          pathname === "/"
            ? options.ui.get("index.html")
            : pathname.startsWith("/ui/")
              ? options.ui.get(pathname.slice(4))
              : undefined
        if (asset && (request.method === "GET" || request.method === "HEAD")) {
          uiReply(request, response, asset)
          return
        }
        if (pathname === "/openapi.json" && (request.method === "GET" || request.method === "HEAD")) {
          yield* writeReply(request, response, json(JSON.parse(openApi)))
          return
        }
        const reply = yield* dispatch(request, pathname, query).pipe(
          Effect.catchAll((error) => Effect.succeed(errorReply(error))),
        )
        yield* writeReply(request, response, reply).pipe(
          // An error reply is JSON, which cannot fail to write.
          Effect.catchAll((error) => Effect.orDie(writeReply(request, response, errorReply(error)))),
        )
      }).pipe(
        Effect.catchAllCause((cause) =>
          Effect.sync(() => {
            if (Cause.isInterruptedOnly(cause)) return
            const defect = Cause.squash(cause)
            process.stderr.write(
              `owrt serve: ${request.method} ${(request.url ?? "").replace(/([?&]token=)[^&]*/, "$1…")}: ${defect instanceof Error ? defect.stack : String(defect)}\n`,
            )
            if (response.headersSent) response.destroy()
            else {
              const message = isOwrtError(defect) ? defect.message : "internal error (see the server's log)"
              response.writeHead(500, { "content-type": "application/json; charset=utf-8" })
              response.end(
                `${JSON.stringify({ error: { code: "internal", message, exitCode: ExitCode.internal } })}\n`,
              )
            }
          }),
        ),
      )

    const server = createServer({ keepAliveTimeout: 5_000 })
    yield* Effect.acquireRelease(
      Effect.async<void, UsageError>((resume) => {
        server.once("error", (error) =>
          resume(
            Effect.fail(
              new UsageError({
                detail: `cannot listen on ${options.host}:${options.port}: ${error.message}`,
              }),
            ),
          ),
        )
        server.listen(options.port, options.host, () => resume(Effect.void))
      }),
      () =>
        Effect.async<void>((resume) => {
          server.close(() => resume(Effect.void))
          server.closeAllConnections()
        }),
    )
    // Request fibers live in this scope: closing it ends every open request, event streams included.
    const run = yield* FiberSet.makeRuntime<AppServices>()
    server.on("request", (request: IncomingMessage, response: ServerResponse) => {
      const fiber = run(respond(request, response))
      response.once("close", () => {
        if (!response.writableFinished) fiber.unsafeInterruptAsFork(fiber.id())
      })
    })
    const address = server.address() as AddressInfo
    const host = address.family === "IPv6" ? `[${address.address}]` : address.address
    return { url: `http://${host}:${address.port}`, port: address.port }
  })
