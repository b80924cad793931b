import { HttpMiddleware, HttpRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect, Option } from "effect"
import { isOwrtError, type OwrtError } from "../../errors.js"
import {
  type FirmwareSource,
  isRefused,
  isUpToDate,
  parseSemVer,
  recordDeviceReport,
  validDeviceId,
} from "../../operations/ota.js"
import { decideRange, etagMatches } from "../byteRange.js"

/*
 * OtaFlux's device protocol (ota.md §1), answered exactly: `/version` and `/firmware` by `device`, their
 * 400 and 404 texts, `/health`, the Harbor webhook. Beyond it (§8): `Content-Length`, an ETag (the SHA-256),
 * `If-None-Match` → 304, one `Range` → 206/416, `Content-Disposition`, `&current=` → 204 when the device
 * runs the latest already, `&channel=` (pre-releases only on their channel), and honest errors: a registry
 * that fails is 502, not "no firmware".
 */

const text = (body: string, status: number) =>
  HttpServerResponse.text(body, { status, contentType: "text/plain; charset=utf-8" })

const missingDevice = text("Missing required query parameter: 'device'", 400)
const noFirmware = (device: string) => text(`No firmware for device '${device}'`, 404)

interface Query {
  readonly device: string
  readonly channel: string
  readonly current: string | undefined
  readonly address: string | null
}

const query = Effect.map(HttpServerRequest.HttpServerRequest, (request): Query | undefined => {
  const params = new URL(request.url, "http://localhost").searchParams
  const device = params.get("device") ?? ""
  if (device === "") return undefined
  return {
    device,
    channel: params.get("channel") || "stable",
    current: params.get("current") ?? undefined,
    address: Option.getOrNull(request.remoteAddress),
  }
})

/** The source failed (a registry down or refusing, a local image gone): 502 and why, never "no firmware". */
const registryFailure = (error: unknown) =>
  isOwrtError(error)
    ? text(`${error.code.startsWith("cache_registry") ? "registry error" : "error"}: ${error.message}`, 502)
    : text(`error: ${String(error)}`, 502)

/** What the server reports to its metrics (all optional). */
export interface OtaObserver {
  readonly cache?: (device: string, hit: boolean) => void
  /** Firmware bytes sent in a 200 or 206 body. */
  readonly bytes?: (count: number) => void
  readonly request?: (method: string, path: string, status: number, seconds: number) => void
}

export interface OtaHttpOptions {
  readonly observe?: OtaObserver | undefined
  /** Called for a Harbor push of `device` (after its tag list is forgotten); failures are logged, not answered. */
  readonly onPush?: ((device: string) => Effect.Effect<void, OwrtError>) | undefined
}

export const makeOtaHttpApp = (source: FirmwareSource, options: OtaHttpOptions = {}) => {
  /** The latest release and its firmware for a request, or the response that says why there is none. */
  const resolve = (q: Query) =>
    Effect.gen(function* () {
      if (!validDeviceId(q.device)) return { _tag: "answer", response: noFirmware(q.device) } as const
      const latest = yield* source.latest(q.device, q.channel)
      const release = isRefused(latest) ? undefined : latest
      // A device that says what it runs is recorded (`owrt ota devices`); a failed write never fails the poll.
      if (q.current !== undefined && parseSemVer(q.current) !== undefined)
        yield* recordDeviceReport({
          device: q.device,
          version: q.current.replace(/^v/, ""),
          channel: q.channel,
          latest: release?.version ?? null,
          address: q.address,
        }).pipe(
          Effect.catchAll((error) => Effect.sync(() => process.stderr.write(`ota: ${error.message}\n`))),
        )
      // Not "no firmware": there is a release, and it may not be served (its signature check failed).
      if (isRefused(latest))
        return {
          _tag: "answer",
          response: text(
            `release ${latest.release.version} of device '${q.device}' is not served: ${latest.error.message}`,
            502,
          ),
        } as const
      if (release === undefined) return { _tag: "answer", response: noFirmware(q.device) } as const
      if (isUpToDate(q.current, release.version))
        return { _tag: "answer", response: HttpServerResponse.empty({ status: 204 }) } as const
      const { firmware, cached } = yield* source.firmware(release)
      options.observe?.cache?.(q.device, cached)
      return { _tag: "found", release, firmware } as const
    }).pipe(
      Effect.catchAll((error) =>
        Effect.succeed({ _tag: "answer", response: registryFailure(error) } as const),
      ),
    )

  const version = Effect.gen(function* () {
    const q = yield* query
    if (q === undefined) return missingDevice
    const found = yield* resolve(q)
    if (found._tag === "answer") return found.response
    return text(`${found.release.version}\n${found.firmware.crc32}\n${found.firmware.bytes.length}`, 200)
  })

  const firmware = Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    const q = yield* query
    if (q === undefined) return missingDevice
    const found = yield* resolve(q)
    if (found._tag === "answer") return found.response
    const { release, firmware: fw } = found
    const etag = `"${fw.sha256}"`
    const name = `${q.device}-${release.version}.bin`
    const headers = {
      etag,
      "accept-ranges": "bytes",
      "content-disposition": `attachment; filename="${name}"`,
      "x-firmware-version": release.version,
    }
    if (etagMatches(request.headers["if-none-match"], etag))
      return HttpServerResponse.empty({ status: 304, headers })
    const ifRange = request.headers["if-range"]
    const range =
      ifRange !== undefined && ifRange !== etag
        ? ({ kind: "full" } as const)
        : decideRange(request.headers.range, fw.bytes.length)
    if (range.kind === "unsatisfiable")
      return HttpServerResponse.empty({
        status: 416,
        headers: { ...headers, "content-range": `bytes */${fw.bytes.length}` },
      })
    {
      const body = range.kind === "partial" ? range.end + 1 - range.start : fw.bytes.length
      options.observe?.bytes?.(body)
    }
    if (range.kind === "partial")
      return HttpServerResponse.uint8Array(fw.bytes.subarray(range.start, range.end + 1), {
        status: 206,
        contentType: "application/octet-stream",
        headers: { ...headers, "content-range": `bytes ${range.start}-${range.end}/${fw.bytes.length}` },
      })
    return HttpServerResponse.uint8Array(fw.bytes, {
      status: 200,
      contentType: "application/octet-stream",
      headers,
    })
  })

  const harbor = Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    const body = yield* request.text.pipe(Effect.orElseSucceed(() => ""))
    let event: unknown
    try {
      event = JSON.parse(body)
    } catch {
      return text("invalid JSON", 400)
    }
    const e = event as { type?: unknown; event_data?: { repository?: { name?: unknown } } }
    const device = e.event_data?.repository?.name
    if (e.type === "PUSH_ARTIFACT" && typeof device === "string") {
      source.forget(device)
      // As OtaFlux: a failed fetch or notice is logged and still answered 200 (the registry must not retry).
      if (options.onPush !== undefined)
        yield* options
          .onPush(device)
          .pipe(
            Effect.catchAll((error) =>
              Effect.sync(() => process.stderr.write(`ota: webhook for ${device}: ${error.message}\n`)),
            ),
          )
    }
    return HttpServerResponse.empty({ status: 200 })
  })

  const knownPaths = new Set(["/health", "/version", "/firmware", "/webhooks/harbor"])
  const measured = HttpMiddleware.make((app) =>
    Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      const started = performance.now()
      const response = yield* app
      const path = new URL(request.url, "http://localhost").pathname
      options.observe?.request?.(
        request.method,
        knownPaths.has(path) ? path : "other",
        response.status,
        (performance.now() - started) / 1000,
      )
      return response
    }),
  )

  return measured(
    HttpRouter.empty.pipe(
      HttpRouter.get("/health", Effect.succeed(HttpServerResponse.empty({ status: 200 }))),
      HttpRouter.get("/version", version),
      HttpRouter.get("/firmware", firmware),
      HttpRouter.post("/webhooks/harbor", harbor),
    ),
  )
}
