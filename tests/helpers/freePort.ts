import { createServer } from "node:net"

/**
 * A TCP port on 127.0.0.1 that was free a moment ago, for a server started as a separate process (the
 * registry, PostgreSQL, mosquitto), which must be told its port rather than pick one.
 */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address ? address.port : 0
      server.close(() => resolve(port))
    })
  })
