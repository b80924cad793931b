import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber } from "effect"
import { httpGetBytes } from "../../src/builder/httpGet.js"

/** A server that answers `/moved` with a redirect to `/hang`, and never answers `/hang`. */
const hangingServer = Effect.acquireRelease(
  Effect.gen(function* () {
    const asked = yield* Deferred.make<void>()
    const closed = yield* Deferred.make<void>()
    const server: Server = createServer((req, res) => {
      if (req.url === "/moved") {
        res.writeHead(302, { location: "/hang" }).end()
        return
      }
      req.socket.once("close", () => Deferred.unsafeDone(closed, Effect.void))
      Deferred.unsafeDone(asked, Effect.void)
    })
    yield* Effect.async<void>((resume) => {
      server.listen(0, "127.0.0.1", () => resume(Effect.void))
    })
    const port = (server.address() as AddressInfo).port
    return { server, url: `http://127.0.0.1:${port}`, asked, closed }
  }),
  ({ server }) =>
    Effect.sync(() => {
      server.closeAllConnections()
      server.close()
    }),
)

describe("httpGetBytes", () => {
  it.scopedLive("follows a redirect, and an interruption closes the request it is waiting on", () =>
    Effect.gen(function* () {
      const server = yield* hangingServer
      // Ten minutes: only the interruption can end the request within this test.
      const get = yield* Effect.fork(httpGetBytes(`${server.url}/moved`, 600_000))
      yield* Deferred.await(server.asked)
      yield* Fiber.interrupt(get)
      const closed = yield* Deferred.await(server.closed).pipe(Effect.timeout("20 seconds"), Effect.option)
      expect(closed._tag).toBe("Some")
    }),
  )

  it.scopedLive("reads a small file whole", () =>
    Effect.gen(function* () {
      const server = yield* Effect.acquireRelease(
        Effect.async<Server>((resume) => {
          const s = createServer((_, res) => res.end("hello"))
          s.listen(0, "127.0.0.1", () => resume(Effect.succeed(s)))
        }),
        (s) => Effect.sync(() => s.close()),
      )
      const port = (server.address() as AddressInfo).port
      const response = yield* httpGetBytes(`http://127.0.0.1:${port}/x`, 10_000)
      expect(response.status).toBe(200)
      expect(Buffer.from(response.body).toString()).toBe("hello")
    }),
  )
})
