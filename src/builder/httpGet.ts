import { Agent as HttpAgent, get as httpGet, type IncomingMessage } from "node:http"
import { Agent as HttpsAgent, get as httpsGet } from "node:https"
import { Effect } from "effect"

/*
 * Plain GETs of small upstream files on Node's own http client, with keep-alive and redirects. The
 * download server's metadata is a few kilobytes; loading a heavier client costs more than the requests
 * (owrt starts a fresh process per command), so this stays minimal.
 */

const agents = { http: new HttpAgent({ keepAlive: true }), https: new HttpsAgent({ keepAlive: true }) }

export interface HttpResponse {
  readonly status: number
  readonly body: Uint8Array
}

export class HttpTransportError {
  readonly _tag = "HttpTransportError"
  constructor(readonly detail: string) {}
}

const once = (url: string, timeoutMs: number, redirects: number): Promise<HttpResponse> =>
  new Promise((resolve, reject) => {
    const secure = url.startsWith("https:")
    const get = secure ? httpsGet : httpGet
    const req = get(
      url,
      { agent: secure ? agents.https : agents.http, headers: { "user-agent": "owrt" } },
      (response: IncomingMessage) => {
        const status = response.statusCode ?? 0
        const location = response.headers.location
        if (status >= 300 && status < 400 && location && redirects > 0) {
          response.resume()
          once(new URL(location, url).toString(), timeoutMs, redirects - 1).then(resolve, reject)
          return
        }
        const chunks: Array<Buffer> = []
        response.on("data", (chunk: Buffer) => chunks.push(chunk))
        response.on("end", () =>
          response.complete
            ? resolve({ status, body: Buffer.concat(chunks) })
            : reject(new Error("connection closed early")),
        )
        response.on("error", reject)
      },
    )
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer in ${Math.round(timeoutMs / 1000)}s`)))
    req.on("error", reject)
  })

/** GET `url` (following up to 5 redirects); transport failures are `HttpTransportError`. */
export const httpGetBytes = (
  url: string,
  timeoutMs: number,
): Effect.Effect<HttpResponse, HttpTransportError> =>
  Effect.tryPromise({
    try: () => once(url, timeoutMs, 5),
    catch: (error) => new HttpTransportError(error instanceof Error ? error.message : String(error)),
  })

/** Lets the process exit without waiting for idle keep-alive sockets. */
export const closeIdleConnections = (): void => {
  agents.http.destroy()
  agents.https.destroy()
}
