import type { Agent, ClientRequest, IncomingMessage } from "node:http"
import { Effect } from "effect"
import { http, https } from "../process/lazyBuiltin.js"

/*
 * owrt's one HTTP GET, on Node's own http client: the download server's metadata is a few kilobytes and a
 * builder archive is streamed, and loading a heavier client costs more than the requests (owrt starts a
 * fresh process per command). It follows redirects, and honours interruption: aborting the signal
 * destroys the request in flight, whichever redirect it is on.
 */

// Made at the first request: a command that asks upstream nothing does not load Node's http client.
let agents: { readonly http: Agent; readonly https: Agent } | undefined
const keepAliveAgents = () => {
  agents ??= {
    http: new (http().Agent)({ keepAlive: true }),
    https: new (https().Agent)({ keepAlive: true }),
  }
  return agents
}

export interface GetOptions {
  /** Destroys the request when the connection carries nothing for this long. */
  readonly idleMs: number
  /** Why the request was destroyed when idle (the error it fails with). */
  readonly idleError: () => Error
  /** Aborting it destroys the request, and the response if one arrived. */
  readonly signal: AbortSignal
  /** Reuse connections (small metadata files from one server); off for one long download. */
  readonly keepAlive?: boolean | undefined
  /** Told each request made (one per redirect), e.g. to destroy it from elsewhere. */
  readonly onRequest?: ((request: ClientRequest) => void) | undefined
}

/** GET `url`, following up to `redirects` redirects; resolves with the final response, whatever its status. */
export const openGet = (url: string, options: GetOptions, redirects = 5): Promise<IncomingMessage> =>
  new Promise((resolve, reject) => {
    const secure = url.startsWith("https:")
    const req = (secure ? https().get : http().get)(
      url,
      {
        headers: { "user-agent": "owrt" },
        signal: options.signal,
        ...(options.keepAlive ? { agent: secure ? keepAliveAgents().https : keepAliveAgents().http } : {}),
      },
      (response) => {
        const status = response.statusCode ?? 0
        const location = response.headers.location
        if (status >= 300 && status < 400 && location && redirects > 0) {
          response.resume()
          openGet(new URL(location, url).toString(), options, redirects - 1).then(resolve, reject)
          return
        }
        resolve(response)
      },
    )
    req.setTimeout(options.idleMs, () => req.destroy(options.idleError()))
    req.on("error", reject)
    options.onRequest?.(req)
  })

export interface HttpResponse {
  readonly status: number
  readonly body: Uint8Array
}

export class HttpTransportError {
  readonly _tag = "HttpTransportError"
  constructor(readonly detail: string) {}
}

const readBody = (response: IncomingMessage): Promise<HttpResponse> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    response.on("data", (chunk: Buffer) => chunks.push(chunk))
    response.on("end", () =>
      response.complete
        ? resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks) })
        : reject(new Error("connection closed early")),
    )
    response.on("error", reject)
  })

/** GET a small file whole (following redirects); transport failures are `HttpTransportError`. */
export const httpGetBytes = (
  url: string,
  timeoutMs: number,
): Effect.Effect<HttpResponse, HttpTransportError> =>
  Effect.tryPromise({
    try: (signal) =>
      openGet(url, {
        idleMs: timeoutMs,
        idleError: () => new Error(`no answer in ${Math.round(timeoutMs / 1000)}s`),
        signal,
        keepAlive: true,
      }).then(readBody),
    catch: (error) => new HttpTransportError(error instanceof Error ? error.message : String(error)),
  })

/** Lets the process exit without waiting for idle keep-alive sockets. */
export const closeIdleConnections = (): void => {
  agents?.http.destroy()
  agents?.https.destroy()
}
