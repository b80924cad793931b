import { HttpMiddleware, HttpRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect, Option } from "effect"
import type { AppServices } from "../../app/appLayer.js"
import { type AsuSettings, AsuSettingsRef } from "../../asu/asuSettings.js"
import type { AsuReply } from "../../asu/jobResponse.js"
import { isOwrtError, type OwrtError } from "../../errors.js"
import {
  asuArchIndex,
  asuBuild,
  asuBuildErrors,
  asuBuildStatus,
  asuBuildsByVersion,
  asuBuildsPerDay,
  asuImage,
  asuLatest,
  asuOverview,
  asuProfileDocument,
  asuRevision,
  asuStats,
  asuStatsSummary,
  asuTargetIndex,
  asuTopPackages,
} from "../../operations/asu.js"
import type { OperationContext } from "../../operations/operation.js"
import { fileResponse } from "../fileResponse.js"
import { artifactFile } from "../storeFiles.js"
import { downloadsPrefix, downloadTreeFile } from "./downloadTree.js"

/*
 * The ASU build API (asu-api.md §1) on @effect/platform's router, in upstream's wire format: its status
 * codes, the X-Imagebuilder-Status / X-Queue-Position headers, its bodies and error texts. `owrt serve`
 * hands it the requests under /api/v1/, /json/v1/ and /store/ (src/web/httpServer.ts). Handlers call the
 * ASU operations only. CORS is answered here, preflights included, which upstream leaves to a proxy.
 */

/** The path prefixes this app answers. */
export const asuPrefixes = ["/api/v1/", "/json/v1/", "/store/", downloadsPrefix] as const

export interface AsuHttpOptions {
  readonly settings: AsuSettings
  /** Origins allowed to call from a browser; `*` (the default) allows any. */
  readonly corsOrigins: ReadonlyArray<string>
  /** Whether the server requires a token (store paths holding secrets are served only then). */
  readonly tokenRequired: boolean
  /** The download tree served under /downloads/ (`--downloads`, a checked real path); none: 404 there. */
  readonly downloads?: string | undefined
}

/** Largest request body: a build request with the longest `defaults` fits many times over. */
const bodyLimit = 256 * 1024

const context: OperationContext = { requestedBy: "api" }

const replyResponse = (reply: AsuReply, head: boolean) =>
  head
    ? HttpServerResponse.empty({ status: reply.status, headers: reply.headers })
    : reply.encoded !== undefined
      ? HttpServerResponse.uint8Array(reply.encoded, {
          status: reply.status,
          headers: reply.headers,
          contentType: "application/json",
        })
      : HttpServerResponse.unsafeJson(reply.body, { status: reply.status, headers: reply.headers })

const json = (body: unknown, status = 200) => HttpServerResponse.unsafeJson(body, { status })

/** An owrt error on an ASU route: upstream's shape (`detail`, `status`), owrt's code alongside. */
const errorResponse = (error: OwrtError) => {
  const status =
    error.code === "database_busy"
      ? 503
      : error.code === "download_failed" || error.code === "offline"
        ? 502
        : 500
  return json({ detail: error.message, status, code: error.code }, status)
}

const isHead = Effect.map(HttpServerRequest.HttpServerRequest, (request) => request.method === "HEAD")

const readBody = Effect.gen(function* () {
  const request = yield* HttpServerRequest.HttpServerRequest
  const length = Number(request.headers["content-length"] ?? 0)
  if (length > bodyLimit) return { tooLarge: true as const }
  const text = yield* request.text.pipe(Effect.orElseSucceed(() => ""))
  if (text.length > bodyLimit) return { tooLarge: true as const }
  if (text.trim() === "") return { body: undefined }
  try {
    return { body: JSON.parse(text) as unknown }
  } catch (error) {
    return { invalid: (error as Error).message }
  }
})

const buildPost = Effect.gen(function* () {
  const request = yield* HttpServerRequest.HttpServerRequest
  const read = yield* readBody
  if ("tooLarge" in read)
    return json({ detail: `request body larger than ${bodyLimit} bytes`, status: 413 }, 413)
  if ("invalid" in read) {
    return json(
      {
        detail: [
          {
            type: "json_invalid",
            loc: ["body", 0],
            msg: "JSON decode error",
            input: {},
            ctx: { error: read.invalid },
          },
        ],
      },
      422,
    )
  }
  const retry = new URL(request.url, "http://localhost").searchParams.get("retry")
  const reply = yield* asuBuild.run(
    { body: read.body, ...(retry === "1" || retry === "true" ? { retry: true } : {}) },
    context,
  )
  return replyResponse(reply, false)
})

const buildGet = Effect.gen(function* () {
  const params = yield* HttpRouter.params
  const reply = yield* asuBuildStatus.run({ requestHash: params.hash ?? "" }, context)
  return replyResponse(reply, yield* isHead)
})

const methodNotAllowed = Effect.succeed(
  HttpServerResponse.unsafeJson(
    { detail: "Method Not Allowed" },
    { status: 405, headers: { allow: "GET, HEAD" } },
  ),
)

const revision = Effect.gen(function* () {
  const params = yield* HttpRouter.params
  const reply = yield* asuRevision.run(
    { version: params.version ?? "", target: params.target ?? "", subtarget: params.subtarget ?? "" },
    context,
  )
  return replyResponse(reply, false)
})

const storeFile = (tokenRequired: boolean) =>
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    const params = yield* HttpRouter.params
    const { key } = yield* asuImage.run({ binDir: params.binDir ?? "" }, context)
    if (key === null) return notFound()
    const file = yield* artifactFile(key, params.file ?? "", { tokenRequired }).pipe(
      Effect.map(Option.some),
      Effect.catchAll(() => Effect.succeed(Option.none())),
    )
    if (Option.isNone(file)) return notFound()
    const served = file.value
    return fileResponse(request, served, {
      etag: `"${served.sha256}"`,
      contentType: "application/octet-stream",
      headers: {
        "cache-control": "public, max-age=3600",
        "x-content-type-options": "nosniff",
        "content-disposition": `attachment; filename="${served.name.replace(/["\\\r\n]/g, "_")}"`,
      },
    })
  })

/** `releases/<version>` or `snapshots`, from a route's parameters. */
const versionPathOf = (params: Readonly<Record<string, string | undefined>>) =>
  params.version === undefined ? "snapshots" : `releases/${params.version}`

const notFound = () => json({ detail: "Not Found" }, 404)

/** `/json/v1/<path>/targets/<t>/<st>/index.json`, or `<profile>.json` beside it. */
const targetJson = Effect.gen(function* () {
  const params = yield* HttpRouter.params
  const path = versionPathOf(params)
  const target = params.target ?? ""
  const subtarget = params.subtarget ?? ""
  const file = params.file ?? ""
  if (file === "index.json") return json(yield* asuTargetIndex.run({ path, target, subtarget }, context))
  if (!file.endsWith(".json")) return notFound()
  const profile = file.slice(0, -".json".length)
  return json(yield* asuProfileDocument.run({ path, target, subtarget, profile }, context))
})

/** `/json/v1/<path>/packages/<arch>-index.json`. */
const archJson = Effect.gen(function* () {
  const params = yield* HttpRouter.params
  const file = params.file ?? ""
  if (!file.endsWith("-index.json")) return notFound()
  const arch = file.slice(0, -"-index.json".length)
  return json(yield* asuArchIndex.run({ path: versionPathOf(params), arch }, context))
})

/** A query parameter; `undefined` when absent or empty. */
const queryParam = (name: string) =>
  Effect.map(HttpServerRequest.HttpServerRequest, (request) => {
    const value = new URL(request.url, "http://localhost").searchParams.get(name)
    return value === null || value === "" ? undefined : value
  })

/** A whole-number query parameter within bounds, or FastAPI's 422 for one that is not. */
const countParam = (names: ReadonlyArray<string>, max: number) =>
  Effect.gen(function* () {
    for (const name of names) {
      const value = yield* queryParam(name)
      if (value === undefined) continue
      if (!/^[0-9]{1,9}$/.test(value) || Number(value) < 1 || Number(value) > max) {
        return {
          _tag: "invalid" as const,
          response: json(
            {
              detail: [
                {
                  type: "int_parsing",
                  loc: ["query", name],
                  msg: `Input should be a whole number from 1 to ${max}`,
                  input: value,
                },
              ],
            },
            422,
          ),
        }
      }
      return { _tag: "valid" as const, value: Number(value) }
    }
    return { _tag: "valid" as const, value: undefined }
  })

const topPackagesRoute = Effect.gen(function* () {
  const n = yield* countParam(["n"], 1000)
  if (n._tag === "invalid") return n.response
  const branch = yield* queryParam("branch")
  return json(
    yield* asuTopPackages.run({ ...(branch ? { branch } : {}), ...(n.value ? { n: n.value } : {}) }, context),
  )
})

const buildErrorsRoute = Effect.gen(function* () {
  const n = yield* countParam(["n", "n_entries"], 10_000)
  if (n._tag === "invalid") return n.response
  const { text } = yield* asuBuildErrors.run(n.value ? { n: n.value } : {}, context)
  return HttpServerResponse.text(text)
})

const redirect = (location: string) => Effect.succeed(HttpServerResponse.redirect(location, { status: 301 }))

export const makeAsuHttpApp = (options: AsuHttpOptions) => {
  const router = HttpRouter.empty
    .pipe(
      HttpRouter.post("/api/v1/build", buildPost),
      HttpRouter.get("/api/v1/build/:hash", buildGet),
      HttpRouter.head("/api/v1/build/:hash", buildGet),
      HttpRouter.post("/api/v1/build/:hash", methodNotAllowed),
      HttpRouter.put("/api/v1/build/:hash", methodNotAllowed),
      HttpRouter.del("/api/v1/build/:hash", methodNotAllowed),
      HttpRouter.get(
        "/api/v1/stats",
        Effect.map(asuStats.run({}, context), (stats) => json(stats)),
      ),
      HttpRouter.get(
        "/api/v1/stats/summary",
        Effect.map(asuStatsSummary.run({}, context), (s) => json(s)),
      ),
      HttpRouter.get(
        "/api/v1/builds-per-day",
        Effect.map(asuBuildsPerDay.run({}, context), (chart) => json(chart)),
      ),
      HttpRouter.get(
        "/api/v1/builds-by-version",
        Effect.flatMap(queryParam("branch"), (branch) =>
          Effect.map(asuBuildsByVersion.run(branch ? { branch } : {}, context), (chart) => json(chart)),
        ),
      ),
      HttpRouter.get("/api/v1/top-packages", topPackagesRoute),
      HttpRouter.get("/api/v1/build-errors", buildErrorsRoute),
    )
    .pipe(
      HttpRouter.get("/api/v1/revision/:version/:target/:subtarget", revision),
      HttpRouter.get("/api/v1/latest", redirect("/json/v1/latest.json")),
      HttpRouter.get("/api/v1/overview", redirect("/json/v1/overview.json")),
      HttpRouter.get(
        "/json/v1/overview.json",
        Effect.map(asuOverview.run({}, context), (o) => json(o)),
      ),
      HttpRouter.get(
        "/json/v1/latest.json",
        Effect.map(asuLatest.run({}, context), (l) => json(l)),
      ),
      HttpRouter.get(
        "/json/v1/branches.json",
        Effect.map(asuOverview.run({}, context), (o) => json(Object.values((o.branches ?? {}) as object))),
      ),
      HttpRouter.get("/json/v1/releases/:version/targets/:target/:subtarget/:file", targetJson),
      HttpRouter.get("/json/v1/snapshots/targets/:target/:subtarget/:file", targetJson),
      HttpRouter.get("/json/v1/releases/:version/packages/:file", archJson),
      HttpRouter.get("/json/v1/snapshots/packages/:file", archJson),
      HttpRouter.get("/store/:binDir/:file", storeFile(options.tokenRequired)),
      HttpRouter.head("/store/:binDir/:file", storeFile(options.tokenRequired)),
      HttpRouter.get("/downloads/", downloadTreeFile(options.downloads)),
      HttpRouter.get("/downloads/*", downloadTreeFile(options.downloads)),
      HttpRouter.head("/downloads/*", downloadTreeFile(options.downloads)),
    )
  // Image names run past find-my-way's default parameter length of 100 (a long device name and the
  // manifest hash in EXTRA_IMAGE_NAME), which would make their /store/ URLs 404.
  const app = HttpRouter.withRouterConfig(router, { maxParamLength: Number.MAX_SAFE_INTEGER }).pipe(
    Effect.catchIf(isOwrtError, (error) => Effect.succeed(errorResponse(error))),
    Effect.catchTags({
      RouteNotFound: () => Effect.succeed(json({ detail: "Not Found" }, 404)),
    }),
    Effect.provideService(AsuSettingsRef, options.settings),
  )
  const wildcard = options.corsOrigins.length === 0 || options.corsOrigins.includes("*")
  return HttpMiddleware.cors({
    allowedOrigins: wildcard ? [] : options.corsOrigins,
    allowedMethods: ["GET", "HEAD", "POST", "OPTIONS"],
    allowedHeaders: ["Content-Type", "Authorization"],
    exposedHeaders: ["X-Imagebuilder-Status", "X-Queue-Position", "Content-Disposition"],
    maxAge: 86400,
  })(app) as typeof app
}

export type AsuHttpApp = ReturnType<typeof makeAsuHttpApp>
export type AsuHttpServices = AppServices
