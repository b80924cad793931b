import { createHash } from "node:crypto"
import { createReadStream, createWriteStream } from "node:fs"
import { request as httpRequest, type IncomingMessage } from "node:http"
import { request as httpsRequest } from "node:https"
import { PassThrough, type Readable, type Writable } from "node:stream"
import { Effect, Either, Fiber, Schema } from "effect"
import { CacheEntryError, CacheRegistryError } from "../errors.js"
import type { Descriptor } from "./manifest.js"
import { emptyConfig, emptyConfigDigest, manifestMediaType } from "./manifest.js"
import type { RegistryLocation } from "./registryLocation.js"

export { parseRegistryUrl, type RegistryLocation } from "./registryLocation.js"

/*
 * The few calls of the OCI distribution API (v1.1) the shared cache needs, over node:http(s): blob
 * HEAD/GET/upload (POST then a monolithic PUT, which every registry honours), manifest GET/PUT by tag, and
 * the tag list. Authentication answers the registry's challenge: Basic with the configured credentials,
 * or the token flow (`WWW-Authenticate: Bearer realm=…,service=…,scope=…`: a token from the realm, with
 * the credentials when there are some). Every download is checked against its digest and size as it
 * arrives; a socket that is silent for the configured timeout fails the call.
 */

export interface Credentials {
  readonly username: string
  readonly password: string
}

export interface RegistryClient {
  readonly location: RegistryLocation
  /** Whether the registry holds a manifest under `tag` (HEAD). */
  readonly hasManifest: (tag: string) => Effect.Effect<boolean, CacheRegistryError>
  /** The manifest's bytes under `tag`, or undefined when there is none. */
  readonly getManifest: (tag: string) => Effect.Effect<Uint8Array | undefined, CacheRegistryError>
  readonly putManifest: (tag: string, bytes: Uint8Array) => Effect.Effect<void, CacheRegistryError>
  readonly hasBlob: (digest: string) => Effect.Effect<boolean, CacheRegistryError>
  /** A small blob, in memory, checked against its descriptor. */
  readonly getBlob: (
    descriptor: Descriptor,
  ) => Effect.Effect<Uint8Array, CacheRegistryError | CacheEntryError>
  /** A blob streamed into `file`, its digest and size checked on the way; `onBytes` sees the progress. */
  readonly downloadBlob: (
    descriptor: Descriptor,
    file: string,
    onBytes?: (bytes: number) => void,
  ) => Effect.Effect<void, CacheRegistryError | CacheEntryError>
  /**
   * A blob streamed into `consume` as it arrives, its digest and size checked on the way: what `consume`
   * made of it counts only when the bytes were the descriptor's (a wrong digest or size fails, whatever
   * `consume` answered), so `consume` must write nowhere that outlives a failure (a private directory).
   */
  readonly streamBlob: <A, E>(
    descriptor: Descriptor,
    consume: (input: Readable) => Effect.Effect<A, E>,
    onBytes?: (bytes: number) => void,
    /** Stops the download early (it then fails): `consume` still runs to its end first. */
    stop?: AbortSignal,
  ) => Effect.Effect<A, E | CacheRegistryError | CacheEntryError>
  /**
   * Uploads a blob unless the registry has it already; `source` is bytes or a file holding them (whose
   * upload `onBytes` follows).
   */
  readonly uploadBlob: (
    digest: string,
    size: number,
    source: Uint8Array | { readonly file: string },
    onBytes?: (bytes: number) => void,
  ) => Effect.Effect<void, CacheRegistryError>
  /** The empty config blob `{}` every node manifest names. */
  readonly ensureEmptyConfig: Effect.Effect<void, CacheRegistryError>
  readonly listTags: Effect.Effect<ReadonlyArray<string>, CacheRegistryError>
}

interface Sent {
  readonly status: number
  readonly headers: IncomingMessage["headers"]
  readonly response: IncomingMessage
  /** The socket went silent for the timeout (while the answer was being read, too). */
  readonly timedOut: () => boolean
  /** The Authorization header it was sent with. */
  readonly authorization: string | undefined
}

const TokenResponse = Schema.Struct({
  token: Schema.optional(Schema.String),
  access_token: Schema.optional(Schema.String),
})
const TagList = Schema.Struct({ name: Schema.String, tags: Schema.NullOr(Schema.Array(Schema.String)) })

/** The parameters of a `WWW-Authenticate` challenge: `Bearer realm="…",service="…",scope="…"`. */
export const parseChallenge = (
  header: string,
): { readonly scheme: string; readonly params: Record<string, string> } => {
  const space = header.indexOf(" ")
  const scheme = (space === -1 ? header : header.slice(0, space)).toLowerCase()
  const params: Record<string, string> = {}
  for (const m of header.slice(space + 1).matchAll(/([a-zA-Z_]+)="([^"]*)"/g))
    if (m[1] !== undefined) params[m[1].toLowerCase()] = m[2] ?? ""
  return { scheme, params }
}

const readAll = (response: IncomingMessage, limit: number): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    let size = 0
    response.on("data", (chunk: Buffer) => {
      size += chunk.length
      if (size > limit) {
        response.destroy(new Error(`answer larger than ${limit} bytes`))
        return
      }
      chunks.push(chunk)
    })
    response.on("end", () => resolve(Buffer.concat(chunks)))
    response.on("error", reject)
    response.on("aborted", () => reject(new Error("connection closed mid-answer")))
  })

const maxSmall = 16 * 1024 * 1024

export const makeRegistryClient = (options: {
  readonly location: RegistryLocation
  readonly credentials?: Credentials | undefined
  readonly timeoutSeconds: number
}): RegistryClient => {
  const { location } = options
  const timeoutMs = Math.max(1, options.timeoutSeconds) * 1000
  // One authorization per scope: the first 401 tells which scheme; later calls send it straight away.
  let authorization: string | undefined
  const fail = (kind: CacheRegistryError["kind"], detail: string) =>
    new CacheRegistryError({ kind, registry: location.url, detail })

  const sendOnce = (
    method: string,
    url: URL,
    headers: Record<string, string>,
    body: (() => Readable | Uint8Array) | undefined,
    stop?: AbortSignal,
  ): Promise<Sent> =>
    new Promise((resolve, reject) => {
      const sentWith = authorization
      const request = (url.protocol === "https:" ? httpsRequest : httpRequest)(url, {
        method,
        headers: { ...headers, ...(sentWith ? { authorization: sentWith } : {}) },
        ...(stop ? { signal: stop } : {}),
      })
      let timedOut = false
      request.setTimeout(timeoutMs, () => {
        timedOut = true
        request.destroy(fail("timeout", `${method} ${url.pathname}: no data for ${timeoutMs / 1000}s`))
      })
      request.on("error", (error) => reject(error))
      request.on("response", (response) => {
        // The socket timeout covers the answer too: a registry that stops sending mid-blob fails.
        resolve({
          status: response.statusCode ?? 0,
          headers: response.headers,
          response,
          timedOut: () => timedOut,
          authorization: sentWith,
        })
      })
      const data = body?.()
      if (data === undefined) request.end()
      else if (data instanceof Uint8Array) request.end(data)
      else {
        data.on("error", (error) => request.destroy(error))
        data.pipe(request)
      }
    })

  const toRegistryError = (method: string, path: string) => (cause: unknown) => {
    if (cause instanceof CacheRegistryError) return cause
    const error = cause as { code?: string; message?: string }
    return fail("unavailable", `${method} ${path}: ${error.code ?? error.message ?? String(cause)}`)
  }

  const authenticate = async (challengeHeader: string | undefined): Promise<boolean> => {
    if (challengeHeader === undefined) return false
    const { scheme, params } = parseChallenge(challengeHeader)
    const basic = options.credentials
      ? `Basic ${Buffer.from(`${options.credentials.username}:${options.credentials.password}`).toString("base64")}`
      : undefined
    if (scheme === "basic") {
      if (basic === undefined || authorization === basic) return false
      authorization = basic
      return true
    }
    if (scheme !== "bearer" || params["realm"] === undefined) return false
    const realm = new URL(params["realm"])
    if (params["service"] !== undefined) realm.searchParams.set("service", params["service"])
    realm.searchParams.set("scope", params["scope"] ?? `repository:${location.repository}:pull,push`)
    const saved = authorization
    authorization = basic
    try {
      const sent = await sendOnce("GET", realm, { accept: "application/json" }, undefined)
      const text = (await readAll(sent.response, 1024 * 1024)).toString("utf8")
      if (sent.status !== 200) throw fail("auth", `token request to ${realm.origin} answered ${sent.status}`)
      const decoded = Schema.decodeUnknownEither(Schema.parseJson(TokenResponse))(text)
      const token = decoded._tag === "Right" ? (decoded.right.token ?? decoded.right.access_token) : undefined
      if (token === undefined) throw fail("protocol", `token answer from ${realm.origin} holds no token`)
      if (saved === `Bearer ${token}`) return false
      authorization = `Bearer ${token}`
      return true
    } catch (error) {
      authorization = saved
      throw error
    }
  }

  /** One call, answering at most two auth challenges; 401/403 after that is `cache_registry_auth`. */
  const send = (
    method: string,
    path: string,
    headers: Record<string, string> = {},
    body?: () => Readable | Uint8Array,
    /** Aborts the call, also while it connects or waits for the answer's headers. */
    stop?: AbortSignal,
  ): Effect.Effect<Sent, CacheRegistryError> =>
    Effect.tryPromise({
      try: async (signal) => {
        const url = new URL(path, location.base)
        for (let attempt = 0; ; attempt++) {
          signal.throwIfAborted()
          const sent = await sendOnce(method, url, headers, body, stop)
          if (sent.status === 401 && attempt < 2) {
            sent.response.resume()
            // Another call (running at the same time) answered the challenge meanwhile: use its answer.
            if (sent.authorization !== authorization) continue
            if (await authenticate(sent.headers["www-authenticate"])) continue
          }
          if (sent.status === 401 || sent.status === 403) {
            sent.response.resume()
            throw fail("auth", `${method} ${url.pathname} answered ${sent.status}`)
          }
          if (sent.status >= 500) {
            sent.response.resume()
            throw fail("unavailable", `${method} ${url.pathname} answered ${sent.status}`)
          }
          return sent
        }
      },
      catch: toRegistryError(method, path),
    })

  const unexpected = (sent: Sent, what: string) =>
    Effect.promise(() => readAll(sent.response, 64 * 1024).catch(() => Buffer.alloc(0))).pipe(
      Effect.flatMap((body) =>
        Effect.fail(
          fail(
            "protocol",
            `${what} answered ${sent.status}${body.length > 0 ? `: ${body.toString("utf8").slice(0, 300)}` : ""}`,
          ),
        ),
      ),
    )

  const repo = `/v2/${location.repository}`

  const exists = (path: string, accept?: string) =>
    Effect.flatMap(send("HEAD", path, accept ? { accept } : {}), (sent) => {
      sent.response.resume()
      return sent.status === 200
        ? Effect.succeed(true)
        : sent.status === 404
          ? Effect.succeed(false)
          : unexpected(sent, `HEAD ${path}`)
    })

  const hasManifest = (tag: string) => exists(`${repo}/manifests/${tag}`, manifestMediaType)
  const hasBlob = (digest: string) => exists(`${repo}/blobs/${digest}`)

  const getManifest = (tag: string) =>
    Effect.gen(function* () {
      const path = `${repo}/manifests/${tag}`
      const sent = yield* send("GET", path, { accept: manifestMediaType })
      if (sent.status === 404) {
        sent.response.resume()
        return undefined
      }
      if (sent.status !== 200) return yield* unexpected(sent, `GET ${path}`)
      return new Uint8Array(
        yield* Effect.tryPromise({
          try: () => readAll(sent.response, 4 * 1024 * 1024),
          catch: toRegistryError("GET", path),
        }),
      )
    })

  const putManifest = (tag: string, bytes: Uint8Array) =>
    Effect.gen(function* () {
      const path = `${repo}/manifests/${tag}`
      const sent = yield* send("PUT", path, { "content-type": manifestMediaType }, () => bytes)
      sent.response.resume()
      if (sent.status !== 201 && sent.status !== 200) return yield* unexpected(sent, `PUT ${path}`)
    })

  /** Streams a blob through SHA-256, into `sink` (or memory), refusing a wrong digest or size. */
  /** GETs a blob into memory (`sink` undefined), a file, or a writable stream, checking digest and size. */
  const fetchBlob = (
    descriptor: Descriptor,
    sink: string | Writable | undefined,
    onBytes?: (bytes: number) => void,
    stop?: AbortSignal,
  ) =>
    Effect.gen(function* () {
      const path = `${repo}/blobs/${descriptor.digest}`
      const subject = `${location.url}@${descriptor.digest}`
      const stopped = () => fail("unavailable", `GET ${path}: stopped`)
      if (stop?.aborted) return yield* stopped()
      const sent = yield* send("GET", path, {}, undefined, stop)
      if (stop?.aborted) {
        sent.response.destroy()
        return yield* stopped()
      }
      if (sent.status === 404) {
        sent.response.resume()
        return yield* new CacheEntryError({
          kind: "truncated",
          subject,
          detail: "the registry lost this blob",
        })
      }
      if (sent.status !== 200) return yield* unexpected(sent, `GET ${path}`)
      const result = yield* Effect.tryPromise({
        try: () =>
          new Promise<{ digest: string; size: number; bytes: Buffer | undefined }>((resolve, reject) => {
            const hash = createHash("sha256")
            const chunks: Array<Buffer> = []
            let size = 0
            const out =
              sink === undefined || typeof sink !== "string" ? sink : createWriteStream(sink, { mode: 0o600 })
            const response = sent.response
            const onStop = () => response.destroy(stopped())
            stop?.addEventListener("abort", onStop, { once: true })
            response.once("close", () => stop?.removeEventListener("abort", onStop))
            if (stop?.aborted) onStop()
            response.on("data", (chunk: Buffer) => {
              size += chunk.length
              if (size > descriptor.size) {
                response.destroy(
                  new CacheEntryError({
                    kind: "digest_mismatch",
                    subject,
                    detail: `more than ${descriptor.size} bytes`,
                  }),
                )
                return
              }
              hash.update(chunk)
              onBytes?.(size)
              if (out === undefined) chunks.push(chunk)
              else if (!out.write(chunk)) {
                response.pause()
                out.once("drain", () => response.resume())
              }
            })
            response.on("error", reject)
            response.on("aborted", () => reject(new Error("connection closed mid-blob")))
            response.on("end", () => {
              const done = () =>
                resolve({
                  digest: `sha256:${hash.digest("hex")}`,
                  size,
                  bytes: out === undefined ? Buffer.concat(chunks) : undefined,
                })
              if (out === undefined) done()
              else out.end((error?: Error | null) => (error ? reject(error) : done()))
            })
          }),
        catch: (cause) =>
          cause instanceof CacheEntryError
            ? cause
            : sent.timedOut()
              ? fail("timeout", `GET ${path}: no data for ${timeoutMs / 1000}s mid-blob`)
              : toRegistryError("GET", path)(cause),
      })
      if (result.size !== descriptor.size)
        return yield* new CacheEntryError({
          kind: "truncated",
          subject,
          detail: `${result.size} of ${descriptor.size} bytes`,
        })
      if (result.digest !== descriptor.digest)
        return yield* new CacheEntryError({
          kind: "digest_mismatch",
          subject,
          detail: `its bytes have digest ${result.digest}`,
        })
      return result.bytes ?? Buffer.alloc(0)
    })

  const getBlob = (descriptor: Descriptor) =>
    descriptor.size > maxSmall
      ? Effect.fail(
          new CacheEntryError({
            kind: "malformed",
            subject: `${location.url}@${descriptor.digest}`,
            detail: `${descriptor.size} bytes is too large for a metadata blob`,
          }),
        )
      : Effect.map(fetchBlob(descriptor, undefined), (bytes) => new Uint8Array(bytes))

  const downloadBlob = (descriptor: Descriptor, file: string, onBytes?: (bytes: number) => void) =>
    Effect.asVoid(fetchBlob(descriptor, file, onBytes))

  const streamBlob = <A, E>(
    descriptor: Descriptor,
    consume: (input: Readable) => Effect.Effect<A, E>,
    onBytes?: (bytes: number) => void,
    stop?: AbortSignal,
  ) =>
    Effect.uninterruptibleMask((restore) =>
      Effect.gen(function* () {
        const pipe = new PassThrough({ highWaterMark: 1024 * 1024 })
        // Stopped by the caller's signal, or when this is interrupted.
        const halt = new AbortController()
        const onStop = () => halt.abort()
        if (stop?.aborted) halt.abort()
        else stop?.addEventListener("abort", onStop, { once: true })
        // Both run to their end: the consumer drains what it refuses, and a download that fails ends the
        // stream with its error (so the consumer stops). The download's verdict on the bytes comes first.
        const work = yield* Effect.fork(
          Effect.all(
            [
              fetchBlob(descriptor, pipe, onBytes, halt.signal).pipe(
                Effect.tapError((error) => Effect.sync(() => pipe.destroy(error))),
                Effect.either,
              ),
              // Whatever the consumer left unread is drained, so the download is never held up by it.
              consume(pipe).pipe(Effect.ensuring(Effect.sync(() => pipe.resume())), Effect.either),
            ],
            { concurrency: 2 },
          ),
        )
        // Interrupted, it stops the download and waits for both to end: a consumer writing into a
        // directory its caller removes on interruption has stopped writing by then.
        const [fetched, consumed] = yield* restore(Fiber.join(work)).pipe(
          Effect.onInterrupt(() => Effect.sync(() => halt.abort()).pipe(Effect.zipRight(Fiber.await(work)))),
          Effect.ensuring(Effect.sync(() => stop?.removeEventListener("abort", onStop))),
        )
        if (Either.isLeft(fetched)) return yield* Effect.fail(fetched.left)
        if (Either.isLeft(consumed)) return yield* Effect.fail(consumed.left)
        return consumed.right
      }),
    )

  const uploadBlob = (
    digest: string,
    size: number,
    source: Uint8Array | { readonly file: string },
    onBytes?: (bytes: number) => void,
  ) =>
    Effect.gen(function* () {
      if (yield* hasBlob(digest)) return
      const start = yield* send(
        "POST",
        `${repo}/blobs/uploads/`,
        { "content-length": "0" },
        () => new Uint8Array(0),
      )
      start.response.resume()
      const location_ = start.headers.location
      if (start.status !== 202 || location_ === undefined)
        return yield* unexpected(start, `POST ${repo}/blobs/uploads/`)
      const target = new URL(location_, location.base)
      target.searchParams.set("digest", digest)
      const put = yield* send(
        "PUT",
        `${target.pathname}${target.search}`,
        { "content-type": "application/octet-stream", "content-length": String(size) },
        () => {
          if (source instanceof Uint8Array) return source
          const stream = createReadStream(source.file, { highWaterMark: 1024 * 1024 })
          let sent = 0
          if (onBytes)
            stream.on("data", (chunk) => {
              sent += chunk.length
              onBytes(sent)
            })
          return stream
        },
      )
      put.response.resume()
      if (put.status !== 201) return yield* unexpected(put, `PUT ${target.pathname}`)
    })

  const listTags = Effect.gen(function* () {
    const tags: Array<string> = []
    let path: string | undefined = `${repo}/tags/list?n=1000`
    while (path !== undefined) {
      const sent: Sent = yield* send("GET", path, { accept: "application/json" })
      if (sent.status === 404) {
        sent.response.resume()
        return tags
      }
      if (sent.status !== 200) return yield* unexpected(sent, `GET ${path}`)
      const response = sent.response
      const text = yield* Effect.tryPromise({
        try: () => readAll(response, maxSmall),
        catch: toRegistryError("GET", path),
      })
      const decoded = Schema.decodeUnknownEither(Schema.parseJson(TagList))(text.toString("utf8"))
      if (decoded._tag === "Left") return yield* Effect.fail(fail("protocol", "tag list does not decode"))
      tags.push(...(decoded.right.tags ?? []))
      // Pagination: `Link: </v2/…/tags/list?n=1000&last=x>; rel="next"`.
      const link = sent.headers.link
      const next = typeof link === "string" ? /<([^>]+)>;\s*rel="?next"?/.exec(link)?.[1] : undefined
      path = next
    }
    return tags
  })

  return {
    location,
    hasManifest,
    getManifest,
    putManifest,
    hasBlob,
    getBlob,
    downloadBlob,
    streamBlob,
    uploadBlob,
    ensureEmptyConfig: uploadBlob(emptyConfigDigest, emptyConfig.length, emptyConfig),
    listTags,
  }
}
