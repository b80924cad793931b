import { createHash, timingSafeEqual } from "node:crypto"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { type HttpApp, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import type { Headers } from "@effect/platform/Headers"
import { toServerResponse } from "@effect/platform-node/NodeHttpServerRequest"
import { Cause, Effect } from "effect"
import type { AppServices } from "../app/appLayer.js"
import { ExitCode, isOwrtError, UsageError } from "../errors.js"
import { errorResponse, jsonResponse, makeApiHttpApp, securityHeaders, splitTarget } from "./apiHttpApp.js"
import { isLoopbackHost } from "./bindAddress.js"
import { etagMatches } from "./byteRange.js"
import { BadRequestError, UnauthorizedError } from "./httpErrors.js"
import { nodeHandler } from "./nodeHandler.js"
import { openApiDocument } from "./openApi.js"
import type { Route, ServerInfo } from "./route.js"
import type { UiAsset } from "./uiAssets.js"

/** An app answering the requests of one path family (the ASU routes), behind the server's checks. */
export type ServedApp = HttpApp.Default<never, AppServices | HttpServerRequest.HttpServerRequest>

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
   * Requests under these path prefixes go to another app (the ASU routes, in upstream's wire format) after
   * the Host and token checks; their CORS preflights (which carry no token) before the token check.
   */
  readonly delegate?: { readonly prefixes: ReadonlyArray<string>; readonly app: ServedApp } | undefined
}

const pageHeaders = {
  ...securityHeaders,
  "content-security-policy":
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
}

const digest = (text: string) => createHash("sha256").update(text).digest()

const uiResponse = (request: HttpServerRequest.HttpServerRequest, asset: UiAsset) => {
  const headers = { ...pageHeaders, etag: asset.etag, "cache-control": "no-cache" }
  return etagMatches(request.headers["if-none-match"], asset.etag)
    ? HttpServerResponse.empty({ status: 304, headers })
    : HttpServerResponse.uint8Array(asset.body, { contentType: asset.contentType, headers })
}

/**
 * The whole of `owrt serve`'s HTTP side as one @effect/platform app: the Host rule (without a token only
 * loopback names), the token (before routing: without it nothing, not even which routes exist, is
 * revealed), then the ASU app, the UI, /openapi.json and the API routes.
 */
export const makeServeHttpApp = (options: HttpServerOptions): ServedApp => {
  const api = makeApiHttpApp(options.routes, options.info, options.bodyLimit)
  const openApi = `${JSON.stringify(openApiDocument(options.routes, options.info.version, options.token !== undefined))}\n`
  const token = options.token === undefined ? undefined : digest(options.token)
  const loopbackOnly = options.token === undefined

  const authorized = (
    request: HttpServerRequest.HttpServerRequest,
    headers: Headers,
    query: URLSearchParams,
  ) => {
    if (token === undefined) return true
    const bearer = /^Bearer\s+(.+)$/i.exec(headers.authorization ?? "")?.[1]?.trim()
    // EventSource and download links cannot send headers: GETs may carry the token in the query.
    const given =
      bearer ?? (request.method === "GET" || request.method === "HEAD" ? query.get("token") : null)
    // An empty presented token never matches, whatever the server was given.
    return given !== null && given !== undefined && given !== "" && timingSafeEqual(digest(given), token)
  }
  const unauthorized = errorResponse(
    new UnauthorizedError({ detail: "this server needs `Authorization: Bearer <token>`" }),
  )

  return Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    const target = splitTarget(request.url)
    const pathname = target.path
    const query = new URLSearchParams(target.query)
    // A new copy each time it is read: read once.
    const headers = request.headers
    if (loopbackOnly && !isLoopbackHost(headers.host, options.host)) {
      // Without a token only local clients are expected; another Host is a DNS-rebinding page.
      return HttpServerResponse.empty({ status: 421, headers: securityHeaders })
    }
    const delegate = options.delegate
    if (delegate?.prefixes.some((prefix) => pathname.startsWith(prefix))) {
      if (request.method !== "OPTIONS" && !authorized(request, headers, query)) return unauthorized
      return yield* delegate.app
    }
    const read = request.method === "GET" || request.method === "HEAD"
    const asset =
      pathname === "/"
        ? options.ui.get("index.html")
        : pathname.startsWith("/ui/")
          ? options.ui.get(pathname.slice(4))
          : undefined
    if (asset && read) return uiResponse(request, asset)
    if (pathname === "/openapi.json" && read) {
      return HttpServerResponse.text(openApi, {
        contentType: "application/json; charset=utf-8",
        headers: { ...securityHeaders, "cache-control": "no-store" },
      })
    }
    if (!authorized(request, headers, query)) return unauthorized
    try {
      decodeURI(pathname)
    } catch {
      return errorResponse(new BadRequestError({ detail: `malformed percent-encoding in ${pathname}` }))
    }
    return yield* api
  })
}

/** A defect in a handler: logged (a token in the URL left out), answered 500 when nothing was sent yet. */
const internalError = (request: HttpServerRequest.HttpServerRequest, cause: Cause.Cause<unknown>) =>
  Effect.sync(() => {
    const defect = Cause.squash(cause)
    process.stderr.write(
      `owrt serve: ${request.method} ${request.url.replace(/([?&]token=)[^&]*/, "$1…")}: ${defect instanceof Error ? defect.stack : String(defect)}\n`,
    )
    const message = isOwrtError(defect) ? defect.message : "internal error (see the server's log)"
    return jsonResponse({ error: { code: "internal", message, exitCode: ExitCode.internal } }, 500)
  })

/**
 * Serves `app` on `host:port` until the scope closes; then it stops accepting, closes every connection (which
 * interrupts the requests still answering, event streams included) and waits for their handlers to end.
 */
export const listenHttp = (options: { readonly host: string; readonly port: number }, app: ServedApp) =>
  Effect.gen(function* () {
    // Closing the scope closes the sockets, which interrupts every request still answering (event streams
    // included); then it waits until their handlers have ended and their responses are closed, while the
    // services they use are still open (this finalizer, added before the server's, runs after it).
    let inFlight = 0
    const idle = yield* Effect.makeLatch(true)
    yield* Effect.addFinalizer(() => idle.await)
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
    // A request counts until its handler has ended and its response is closed (sent, or its connection gone):
    // the body (an event stream, a file) is written after the handler has answered.
    const done = () => {
      if (--inFlight === 0) idle.unsafeOpen()
    }
    const counted = Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
      inFlight += 2
      idle.unsafeClose()
      toServerResponse(request).once("close", done)
      return app.pipe(
        Effect.catchAllCause((cause) =>
          Cause.isInterruptedOnly(cause) ? Effect.failCause(cause) : internalError(request, cause),
        ),
        Effect.ensuring(Effect.sync(done)),
      )
    })
    server.on("request", yield* nodeHandler(counted))
    const address = server.address() as AddressInfo
    const host = address.family === "IPv6" ? `[${address.address}]` : address.address
    return { url: `http://${host}:${address.port}`, port: address.port }
  })

/** Serves the API, the UI, /openapi.json and the delegated app on `host:port` until the scope closes. */
export const serveHttp = (options: HttpServerOptions) =>
  listenHttp({ host: options.host, port: options.port }, makeServeHttpApp(options))
